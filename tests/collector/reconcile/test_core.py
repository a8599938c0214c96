"""The pure classification: a device's claim against stored counts."""

from __future__ import annotations

import pytest

from collector.errors import ReconcileError
from collector.reconcile.core import claim_from_status, reconcile_device
from collector.reconcile.model import DeviceClaim, DeviceFacts

CLAIM = DeviceClaim(taken=100, taken_by_meter=(("a", 60), ("b", 40)), first_seq=10,
                    last_seq_sealed=19, dropped=0, depth=0, lost_at_edge=0)


def facts(**kw: object) -> DeviceFacts:
    base: dict[str, object] = dict(
        device_id="d", claim=CLAIM, claim_error=None, batches=10, readings=100,
        readings_in_claim=100, confirmed_seq=19, gaps_confirmed=0, gaps_open=0,
        skipped_batches=0, dead_letters=0, duplicate_readings=0, conflicting_readings=0,
        estimated_buckets=0, underived_ranges=0, double_billed_lines=0)
    base.update(kw)
    return DeviceFacts(**base)  # type: ignore[arg-type]


def test_everything_stored_is_ok() -> None:
    r = reconcile_device(facts())
    assert r.ok
    assert r.lost == 0
    assert r.taken == 100
    assert r.stored == 100


def test_a_missing_confirmed_batch_is_lost() -> None:
    r = reconcile_device(facts(readings_in_claim=90, gaps_confirmed=1))
    assert not r.ok
    assert r.lost == 10
    assert r.lost_batches == 1


def test_readings_still_in_the_buffer_are_late_not_lost() -> None:
    claim = DeviceClaim(taken=100, taken_by_meter=(("a", 100),), first_seq=10,
                        last_seq_sealed=19, dropped=0, depth=20, lost_at_edge=0)
    r = reconcile_device(facts(claim=claim, readings_in_claim=80, confirmed_seq=17,
                               gaps_open=2))
    assert r.ok
    assert r.late == 22
    assert r.lost == 0


def test_unconfirmed_gap_of_a_settled_device_is_lost() -> None:
    r = reconcile_device(facts(confirmed_seq=17, gaps_open=2, readings_in_claim=80))
    assert not r.ok
    assert r.lost_batches == 2
    assert r.lost == 20


def test_dropped_by_policy_is_skipped_not_lost() -> None:
    claim = DeviceClaim(taken=100, taken_by_meter=(("a", 100),), first_seq=10,
                        last_seq_sealed=19, dropped=30, depth=0, lost_at_edge=0)
    r = reconcile_device(facts(claim=claim, readings_in_claim=70, skipped_batches=3))
    assert r.ok
    assert r.skipped == 30


def test_copies_and_double_billing_fail() -> None:
    r = reconcile_device(facts(duplicate_readings=2, double_billed_lines=1))
    assert not r.ok
    assert r.duplicated == 3
    r = reconcile_device(facts(conflicting_readings=1))
    assert not r.ok
    assert r.conflicting == 1


def test_dead_letters_are_rejected_not_lost() -> None:
    r = reconcile_device(facts(readings_in_claim=90, gaps_confirmed=1, dead_letters=1))
    assert r.ok
    assert r.rejected == 1


def test_readings_lost_on_a_full_disk_count_as_lost() -> None:
    claim = DeviceClaim(taken=100, taken_by_meter=(("a", 100),), first_seq=10,
                        last_seq_sealed=19, dropped=0, depth=0, lost_at_edge=5)
    assert reconcile_device(facts(claim=claim)).lost == 5


def test_without_counters_only_seqs_are_checked() -> None:
    r = reconcile_device(facts(claim=None, gaps_confirmed=1))
    assert r.taken is None
    assert r.lost_batches == 1
    assert not r.ok


def test_claim_from_status() -> None:
    doc = {"buffer": {"depth": 3}, "reconciliation": {
        "taken": {"m1": 5, "m2": 7}, "first_seq": 1, "last_seq_sealed": 4, "dropped": 0,
        "lost": 0}}
    c = claim_from_status(doc)
    assert c is not None
    assert c.taken == 12
    assert c.depth == 3
    assert c.last_seq_sealed == 4
    assert claim_from_status({"state": "offline"}) is None
    with pytest.raises(ReconcileError):
        claim_from_status({"reconciliation": {"taken": {"m": -1}}})
    with pytest.raises(ReconcileError):
        claim_from_status({"reconciliation": []})
