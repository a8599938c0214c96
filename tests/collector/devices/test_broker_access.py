"""Broker access control on the real Mosquitto 2 with the deployed configuration."""

from __future__ import annotations

import time

from collector.devices.broker_dynsec import DynsecBrokerAccess
from tests.support.dynsec_broker import DynsecBroker

from .conftest import COLLECTOR_PASSWORD
from .mqtt_probe import Probe

PW_A = "secret-of-device-a-0123456789"
PW_B = "secret-of-device-b-0123456789"


def _device(broker: DynsecBroker, user: str, password: str) -> Probe:
    probe = Probe(broker.port, user, password)
    rc = probe.connect()
    assert rc is not None
    assert not rc.is_failure, rc
    return probe


def test_a_device_cannot_publish_as_another(
    dynsec_broker: DynsecBroker, broker_access: DynsecBrokerAccess
) -> None:
    """A's own topic reaches the collector; A's publish on B's topic is refused and not seen."""
    broker_access.provision("dev-a", PW_A)
    broker_access.provision("dev-b", PW_B)
    collector = _device(dynsec_broker, "collector", COLLECTOR_PASSWORD)
    assert not collector.subscribe("tally/v1/#").is_failure
    a = _device(dynsec_broker, "dev-a", PW_A)
    forged = a.publish("tally/v1/dev-b/readings", b"forged")
    assert forged.is_failure
    assert forged.value == 0x87
    assert a.publish("tally/v1/dev-b/status", b"forged").is_failure
    assert a.publish("tally/v1/other/senml", b"forged").is_failure
    assert not a.publish("tally/v1/dev-a/readings", b"own").is_failure
    collector.wait_messages(1)
    time.sleep(0.3)
    assert [(t, p) for t, p in collector.messages] == [("tally/v1/dev-a/readings", b"own")]
    a.close()
    collector.close()


def test_a_device_reads_only_its_own_config_and_ack(
    dynsec_broker: DynsecBroker, broker_access: DynsecBrokerAccess
) -> None:
    """Subscribing to B's config, to wildcards or to readings is refused; own config works."""
    broker_access.provision("dev-a", PW_A)
    broker_access.provision("dev-b", PW_B)
    broker_access.publish_retained("tally/v1/dev-b/config", b'{"version":1}')
    broker_access.publish_retained("tally/v1/dev-a/config", b'{"version":7}')
    a = _device(dynsec_broker, "dev-a", PW_A)
    assert a.subscribe("tally/v1/dev-b/config").is_failure
    assert a.subscribe("tally/v1/+/config").is_failure
    assert a.subscribe("tally/v1/#").is_failure
    assert a.subscribe("tally/v1/dev-b/readings").is_failure
    assert not a.subscribe("tally/v1/dev-a/ack").is_failure
    assert not a.subscribe("tally/v1/dev-a/config").is_failure
    assert a.wait_messages(1) == [("tally/v1/dev-a/config", b'{"version":7}')]
    a.close()


def test_anonymous_and_wrong_passwords_are_refused(
    dynsec_broker: DynsecBroker, broker_access: DynsecBrokerAccess
) -> None:
    broker_access.provision("dev-a", PW_A)
    for user, password in ((None, None), ("dev-a", "wrong-password-0123456789"),
                           ("nobody", PW_A), ("dev-a", PW_B)):
        probe = Probe(dynsec_broker.port, user, password)
        rc = probe.connect()
        assert rc is not None
        assert rc.is_failure, (user, rc)
        probe.close()


def test_revoked_device_is_disconnected_and_refused(
    dynsec_broker: DynsecBroker, broker_access: DynsecBrokerAccess
) -> None:
    """Revocation closes the device's open connection at once; reconnecting is refused; other
    devices are untouched."""
    broker_access.provision("dev-a", PW_A)
    broker_access.provision("dev-b", PW_B)
    a = _device(dynsec_broker, "dev-a", PW_A)
    b = _device(dynsec_broker, "dev-b", PW_B)
    a.client.reconnect_delay_set(30, 30)  # no quick automatic reconnect during the check
    broker_access.revoke("dev-a")
    assert a.disconnected.wait(5), "the revoked device's connection stayed open"
    again = Probe(dynsec_broker.port, "dev-a", PW_A)
    rc = again.connect()
    assert rc is not None
    assert rc.is_failure
    assert not b.disconnected.is_set()
    assert not b.publish("tally/v1/dev-b/readings", b"still fine").is_failure
    broker_access.revoke("dev-a")  # idempotent
    for p in (a, b, again):
        p.close()


def test_reprovision_replaces_the_secret(
    dynsec_broker: DynsecBroker, broker_access: DynsecBrokerAccess
) -> None:
    """Re-enrollment (wiped disk): the old secret stops working, the new one works."""
    broker_access.provision("dev-a", PW_A)
    broker_access.provision("dev-a", PW_B)
    old = Probe(dynsec_broker.port, "dev-a", PW_A)
    rc = old.connect()
    assert rc is not None
    assert rc.is_failure
    new = _device(dynsec_broker, "dev-a", PW_B)
    assert not new.publish("tally/v1/dev-a/readings", b"x").is_failure
    old.close()
    new.close()


def test_devices_connect_over_tls_with_the_operator_ca(
    dynsec_broker: DynsecBroker, broker_access: DynsecBrokerAccess
) -> None:
    broker_access.provision("dev-a", PW_A)
    probe = Probe(dynsec_broker.tls_port, "dev-a", PW_A, ca_file=dynsec_broker.ca_file)
    rc = probe.connect()
    assert rc is not None
    assert not rc.is_failure
    assert not probe.publish("tally/v1/dev-a/readings", b"tls").is_failure
    probe.close()


def test_oversized_messages_are_refused(
    dynsec_broker: DynsecBroker, broker_access: DynsecBrokerAccess
) -> None:
    """message_size_limit: a publish beyond 2 MiB never reaches the collector."""
    broker_access.provision("dev-a", PW_A)
    collector = _device(dynsec_broker, "collector", COLLECTOR_PASSWORD)
    assert not collector.subscribe("tally/v1/#").is_failure
    a = _device(dynsec_broker, "dev-a", PW_A)
    info = a.client.publish("tally/v1/dev-a/readings", b"x" * (2 * 1024 * 1024 + 1), qos=1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and info.mid not in a.pubacks \
            and not a.disconnected.is_set():
        time.sleep(0.05)
    refused = a.disconnected.is_set() or (info.mid in a.pubacks and a.pubacks[info.mid].is_failure)
    assert refused, "the broker accepted a message beyond message_size_limit"
    time.sleep(0.5)
    assert all(len(p) < 2 * 1024 * 1024 for _, p in collector.messages)
    a.close()
    collector.close()


def test_retiring_clears_the_retained_ack_at_the_broker(
    dynsec_broker: DynsecBroker, broker_access: DynsecBrokerAccess
) -> None:
    """The collector's account may clear a device's retained acknowledgement: after an empty
    retained message, a new subscriber gets nothing for that topic."""
    broker_access.provision("dev-a", PW_A)
    broker_access.publish_retained("tally/v1/dev-a/ack", b'{"v":1,"ok":[[1,4]]}')
    before = _device(dynsec_broker, "collector", COLLECTOR_PASSWORD)
    assert not before.subscribe("tally/v1/dev-a/ack").is_failure
    assert before.wait_messages(1) == [("tally/v1/dev-a/ack", b'{"v":1,"ok":[[1,4]]}')]
    before.close()
    broker_access.publish_retained("tally/v1/dev-a/ack", b"")
    after = _device(dynsec_broker, "collector", COLLECTOR_PASSWORD)
    assert not after.subscribe("tally/v1/dev-a/ack").is_failure
    time.sleep(0.5)
    assert after.messages == []
    after.close()
