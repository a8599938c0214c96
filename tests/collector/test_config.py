"""Collector configuration: TOML file, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import load_config
from collector.errors import ConfigError


def test_defaults_without_file_or_environment() -> None:
    """With nothing configured the defaults point at local servers."""
    cfg = load_config(None, {})
    assert cfg.mqtt.endpoint().port == 1883
    assert cfg.mqtt.subscriptions() == (
        "tally/v1/+/readings", "tally/v1/+/senml", "tally/v1/+/status"
    )


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """TALLY_<SECTION>_<KEY> wins over the TOML file."""
    f = tmp_path / "c.toml"
    f.write_text('[database]\nurl = "postgresql://file/db"\n[api]\nport = 9000\n')
    cfg = load_config(f, {"TALLY_DATABASE_URL": "postgresql://env/db"})
    assert (cfg.database.url, cfg.api.port) == ("postgresql://env/db", 9000)


def test_config_path_from_environment(tmp_path: Path) -> None:
    """TALLY_CONFIG names the file when no path is given."""
    f = tmp_path / "c.toml"
    f.write_text("[ingest]\nmax_messages = 42\n")
    assert load_config(None, {"TALLY_CONFIG": str(f)}).ingest.max_messages == 42


def test_mqtts_url_with_credentials() -> None:
    """An mqtts:// URL gives TLS, port 8883 and the decoded user and password."""
    ep = load_config(None, {"TALLY_MQTT_URL": "mqtts://col%40x:p%3Ass@broker.example"}).mqtt
    assert ep.endpoint().model_dump() == {
        "host": "broker.example", "port": 8883, "tls": True, "username": "col@x",
        "password": "p:ss",
    }


def test_shared_group_prefixes_the_readings_subscription() -> None:
    """A shared group subscribes batches (readings, SenML) through $share/<group>/, status
    directly; an empty SenML topic drops that subscription."""
    cfg = load_config(None, {"TALLY_MQTT_SHARED_GROUP": "g1"})
    assert cfg.mqtt.subscriptions() == (
        "$share/g1/tally/v1/+/readings", "$share/g1/tally/v1/+/senml", "tally/v1/+/status"
    )
    cfg = load_config(None, {"TALLY_MQTT_SENML_TOPIC": ""})
    assert cfg.mqtt.subscriptions() == ("tally/v1/+/readings", "tally/v1/+/status")


def test_invalid_value_names_setting_and_source() -> None:
    """A bad environment value is a ConfigError naming the key and the variable."""
    with pytest.raises(ConfigError, match=r"api\.port.*TALLY_API_PORT"):
        load_config(None, {"TALLY_API_PORT": "eighty"})


def test_unknown_key_in_a_section_is_an_error(tmp_path: Path) -> None:
    """A misspelt key inside [mqtt] is rejected."""
    f = tmp_path / "c.toml"
    f.write_text('[mqtt]\nurll = "mqtt://x"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.urll"):
        load_config(f, {})


def test_other_sections_are_kept_for_other_parts(tmp_path: Path) -> None:
    """Unknown top-level sections (e.g. [billing]) are kept in model_extra."""
    f = tmp_path / "c.toml"
    f.write_text('[billing]\nissuer = "ACME"\n')
    assert load_config(f, {}).model_extra == {"billing": {"issuer": "ACME"}}


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    """A syntax error in the file is a ConfigError with the path."""
    f = tmp_path / "c.toml"
    f.write_text("[database\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f, {})


def test_non_mqtt_url_is_rejected() -> None:
    """An http:// broker URL is refused."""
    with pytest.raises(ConfigError, match="mqtt"):
        load_config(None, {"TALLY_MQTT_URL": "http://x"})
