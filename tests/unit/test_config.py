"""Configuration: flag > environment variable > config file > default, and a bad file is a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from junction.clock import ScaledClock
from junction.config import SETTINGS, Config, load, read_file
from junction.errors import ConfigError
from junction.kafka.config import KafkaConfig
from junction.topology import Topology, clock_from_config
from tests.conftest import Cli


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_each_setting_is_its_variable_without_the_prefix_in_lower_case() -> None:
    for key, setting in SETTINGS.items():
        assert setting.variable == "JUNCTION_" + key.upper()


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    file = write(tmp_path / "junction.toml", 'kafka_partitions = 6\nkafka_replication = 2\nhost = "0.0.0.0"\n')
    config = load(env={"JUNCTION_KAFKA_PARTITIONS": "12", "JUNCTION_HOST": "10.0.0.1"}, cwd=tmp_path)
    assert config.file == file
    assert config.get("kafka_partitions") == 12 and config.origin("kafka_partitions") == "JUNCTION_KAFKA_PARTITIONS"
    assert config.get("kafka_replication") == 2 and config.origin("kafka_replication") == str(file)
    assert config.get("kafka_group_template") == "{service}.{subscription}"
    assert config.origin("kafka_group_template") == "default"
    assert config.get("host", "127.0.0.2") == "127.0.0.2" and config.origin("host", "127.0.0.2") == "flag"
    assert config.get("host") == "10.0.0.1"


def test_a_table_is_the_same_as_its_joined_keys(tmp_path: Path) -> None:
    flat = read_file(write(tmp_path / "flat.toml", 'kafka_bootstrap = "k:9092"\nkafka_partitions = 4\n'))
    nested = read_file(write(tmp_path / "nested.toml", '[kafka]\nbootstrap = "k:9092"\npartitions = 4\n'))
    assert flat == nested == {"kafka_bootstrap": "k:9092", "kafka_partitions": 4}


def test_the_file_configures_the_topology_kafka_names_peers_and_clock(tmp_path: Path) -> None:
    write(tmp_path / "junction.toml", """
database_url = "postgresql://postgres@db:5432/postgres"
time_scale = 10
clock_origin = 1767225600
accounting_url = "http://accounting:8080/accounting"
[kafka]
bootstrap = "kafka:9092"
topic_template = "prod.{system}.{service}"
""")
    config = load(env={"JUNCTION_AUTH_URL": "http://auth:8080/auth"}, cwd=tmp_path)
    topology = Topology.from_config(config)
    assert (topology.database_url, topology.kafka_bootstrap) == ("postgresql://postgres@db:5432/postgres", "kafka:9092")
    kafka = KafkaConfig.from_config("ebike", config)
    assert kafka.bootstrap == "kafka:9092" and kafka.topic("rentals") == "prod.ebike.rentals"
    assert kafka.group("customers", "projection:customers:auth") == "customers.projection:customers:auth"
    assert config.service_url("accounting") == "http://accounting:8080/accounting"
    assert config.service_url("auth") == "http://auth:8080/auth"
    assert config.service_url("rentals") is None
    clock = clock_from_config(config)
    assert isinstance(clock, ScaledClock) and (clock.scale, clock._origin_wall) == (10.0, 1767225600.0)


def test_where_the_file_comes_from(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    default = write(tmp_path / "here" / "junction.toml", "kafka_partitions = 1\n")
    chosen = write(tmp_path / "other.toml", "kafka_partitions = 2\n")
    assert load(env={}, cwd=tmp_path / "here").get("kafka_partitions") == 1
    assert load(env={"JUNCTION_CONFIG": str(chosen)}, cwd=tmp_path / "here").get("kafka_partitions") == 2
    assert load(default, env={"JUNCTION_CONFIG": str(chosen)}).get("kafka_partitions") == 1  # --config wins
    assert load(env={}, cwd=tmp_path).file is None  # no file at all is fine
    with pytest.raises(ConfigError, match=r"config file .*missing\.toml not found"):
        load(env={"JUNCTION_CONFIG": str(tmp_path / "missing.toml")})


def test_data_dir_names_the_system(tmp_path: Path) -> None:
    assert Config().data_dir("ebike") == Path("var/ebike")
    config = Config({"data_dir": "/srv/junction/{system}"})
    assert config.data_dir("shop") == Path("/srv/junction/shop")
    assert config.data_dir("shop", tmp_path) == tmp_path


@pytest.mark.parametrize(("text", "message"), [
    ("kafka_partitions = \n", r"bad\.toml: invalid TOML: .*line 1"),
    ('kafka_bootstrp = "k:9092"\n', r"bad\.toml: unknown setting 'kafka_bootstrp' \(did you mean kafka_bootstrap\?\)"),
    ('[kafka]\nbootstrp = "k:9092"\n', r"unknown setting 'kafka_bootstrp'"),
    ('kafka_partitions = "three"\n', r"bad\.toml: kafka_partitions must be an integer, not 'three'"),
    ("time_scale = true\n", r"time_scale must be a number, not True"),
    ('log_level = "loud"\n', r"log_level must be one of DEBUG, INFO, WARNING, ERROR, not 'loud'"),
    ('kafka_bootstrap = "a"\n[kafka]\nbootstrap = "b"\n', r"kafka_bootstrap is set twice"),
])
def test_a_bad_file_is_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path / "bad.toml", text), env={})


def test_a_malformed_variable_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"JUNCTION_KAFKA_PARTITIONS='many' is not an integer"):
        load(env={"JUNCTION_KAFKA_PARTITIONS": "many"})
    assert load(env={"JUNCTION_LOG_LEVEL": "debug"}).get("log_level") == "DEBUG"


def test_a_url_for_no_service_is_refused() -> None:
    config = Config({"acounting_url": "http://x/accounting"}, Path("junction.toml"))
    with pytest.raises(ConfigError, match=r"'acounting_url' is no setting and names no service "
                                          r"\(did you mean accounting_url\?\)"):
        config.check_services(["accounting", "auth"])
    Config({"accounting_url": "http://x/accounting"}).check_services(["accounting"])


def run_junction(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "junction", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60, check=False)


def test_the_command_line_reports_a_bad_file_in_one_line(tmp_path: Path) -> None:
    write(tmp_path / "junction.toml", "[kafka\nbootstrap = 1\n")
    result = run_junction("status", "ebike", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "junction.toml: invalid TOML" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1



def test_a_bad_file_named_by_the_flag_is_refused(tmp_path: Path, cli: Cli) -> None:
    write(tmp_path / "other.toml", 'kafka_partitions = "x"\n')
    result = cli("--config", "other.toml", "config")
    assert result.returncode == 1 and "other.toml: kafka_partitions must be an integer" in result.stderr


def test_junction_config_shows_values_and_where_they_come_from(tmp_path: Path, cli: Cli) -> None:
    write(tmp_path / "mine.toml", '[kafka]\nbootstrap = "kafka:9092"\n')
    result = cli("--config", "mine.toml", "config", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {row["key"]: row for row in report["settings"]}
    assert report["file"] == str(tmp_path / "mine.toml")
    assert rows["kafka_bootstrap"]["value"] == "kafka:9092"
    assert rows["kafka_bootstrap"]["origin"] == str(tmp_path / "mine.toml")
    assert rows["kafka_bootstrap"]["variable"] == "JUNCTION_KAFKA_BOOTSTRAP"
    assert rows["time_scale"] == {**rows["time_scale"], "value": 1.0, "origin": "default"}


def test_every_setting_is_documented_with_its_default() -> None:
    table = (Path(__file__).parents[2] / "docs" / "distributed.md").read_text()
    for setting in SETTINGS.values():
        default = "—" if setting.default is None else f"`{setting.default}`"
        assert f"| `{setting.variable}` | `{setting.key}` | {default} |" in table, setting.key
