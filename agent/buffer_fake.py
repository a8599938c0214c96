"""In-memory ``ReadingBuffer`` for tests of code that uses the buffer (same semantics, no file)."""

from __future__ import annotations

from collections.abc import Sequence

from agent.batching import series_from_rows
from agent.buffer_port import BufferLimits, BufferStats, FullPolicy, SealedBatch, initial_seq
from agent.errors import BufferError_, BufferFullError
from agent.protocol import Reading


class MemoryBuffer:
    """A ``ReadingBuffer`` that keeps everything in dicts and lists."""

    def __init__(self, *, now_ms: int = 0, limits: BufferLimits | None = None) -> None:
        self._limits = limits or BufferLimits()
        self._unbatched_rows: list[Reading] = []
        self._ids: list[int] = []  # id of each unbatched row (ever larger, never reused)
        self._last_id = 0
        self._batches: dict[int, SealedBatch] = {}
        self._next_seq = initial_seq(now_ms)
        self._state: dict[str, str] = {}
        self._sent: dict[int, int] = {}
        self._skipped: list[int] = []
        self.taken: dict[str, int] = {}
        self._first_seq = self._next_seq
        self.dropped = 0
        self.refused = 0
        self.closed = False

    @property
    def unbatched(self) -> int:
        return len(self._unbatched_rows)

    @property
    def last_id(self) -> int:
        return self._last_id

    def pending(self) -> list[int]:
        return sorted(self._batches)

    def _depth(self) -> int:
        return len(self._unbatched_rows) + sum(b.reading_count for b in self._batches.values())

    async def append(self, readings: Sequence[Reading]) -> None:
        limit = self._limits.max_readings
        excess = 0 if limit is None else self._depth() + len(readings) - limit
        if excess > 0 and self._limits.policy is FullPolicy.DROP_OLDEST:
            for seq in sorted(self._batches):
                if excess <= 0:
                    break
                batch = self._batches.pop(seq)
                self._sent.pop(seq, None)
                self._skipped.append(seq)
                self.dropped += batch.reading_count
                excess -= batch.reading_count
            drop = min(max(excess, 0), len(self._unbatched_rows))
            del self._unbatched_rows[:drop]
            del self._ids[:drop]
            self.dropped += drop
            excess -= drop
        if excess > 0:
            self.refused += len(readings)
            raise BufferFullError(f"buffer full; {len(readings)} reading(s) refused")
        self._unbatched_rows.extend(readings)
        self._ids.extend(range(self._last_id + 1, self._last_id + 1 + len(readings)))
        self._last_id += len(readings)
        for r in readings:
            self.taken[r.meter] = self.taken.get(r.meter, 0) + 1

    async def seal(
        self, max_readings: int, now_ms: int, *, max_batches: int = 1,
        lane: tuple[int, int] | None = None,
    ) -> list[SealedBatch]:
        after, upto = lane if lane is not None else (0, self._last_id)
        sealed: list[SealedBatch] = []
        for _ in range(max_batches):
            picked = [i for i, rid in enumerate(self._ids) if after < rid <= upto][:max_readings]
            if not picked:
                break
            take = [self._unbatched_rows[i] for i in picked]
            for i in reversed(picked):
                del self._unbatched_rows[i]
                del self._ids[i]
            keys = {k: i for i, k in enumerate(dict.fromkeys(
                (r.meter, r.metric, r.unit, r.kind.value) for r in take))}
            rows = [(i, keys[(r.meter, r.metric, r.unit, r.kind.value)], r.ts_ms, r.value)
                    for i, r in enumerate(take)]
            seq = self._next_seq
            self._batches[seq] = SealedBatch(
                seq, now_ms, series_from_rows(rows, {i: k for k, i in keys.items()}))
            self._next_seq += 1
            sealed.append(self._batches[seq])
        return sealed

    async def load(self, seq: int) -> SealedBatch:
        try:
            return self._batches[seq]
        except KeyError:
            raise BufferError_(f"batch {seq} is not in the buffer") from None

    async def mark_sent(self, seqs: Sequence[int], now_ms: int) -> None:
        for seq in seqs:
            if seq in self._batches:
                self._sent.setdefault(seq, now_ms)

    def sent(self) -> dict[int, int]:
        return dict(self._sent)

    def skipped(self) -> list[int]:
        return list(self._skipped)

    async def forget_skipped(self, seqs: Sequence[int]) -> None:
        self._skipped = [s for s in self._skipped if s not in set(seqs)]

    async def ack(self, seqs: Sequence[int]) -> None:
        for seq in seqs:
            self._batches.pop(seq, None)
            self._sent.pop(seq, None)

    async def stats(self) -> BufferStats:
        oldest = [r.ts_ms for r in self._unbatched_rows[:1]] + [
            min(s.ts_ms) for b in self._batches.values() for s in b.series
        ]
        return BufferStats(
            depth=self._depth(),
            unbatched=len(self._unbatched_rows),
            pending_batches=len(self._batches),
            oldest_ts_ms=min(oldest) if oldest else None,
            dropped=self.dropped,
            refused=self.refused,
            used_bytes=0,
            next_seq=self._next_seq,
            unconfirmed_batches=len(self._sent),
            oldest_sent_ms=min(self._sent.values(), default=None),
            taken_by_meter=tuple(sorted(self.taken.items())),
            first_seq=self._first_seq,
        )

    async def load_state(self, key: str) -> str | None:
        return self._state.get(key)

    async def save_state(self, key: str, value: str) -> None:
        self._state[key] = value

    async def close(self) -> None:
        self.closed = True
