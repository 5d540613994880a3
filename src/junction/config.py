"""Every ``JUNCTION_*`` setting, in one place: read from a flag, the environment, a TOML file or the default.

Precedence, highest first: an explicit command-line flag, the environment variable, the config file,
the default. The config file is ``--config PATH`` (the command line sets ``JUNCTION_CONFIG`` from it,
so the processes ``junction up`` starts read the same file), else ``$JUNCTION_CONFIG``, else
``junction.toml`` in the working directory when there is one. A file key is the variable's name
without ``JUNCTION_``, in lower case, and a TOML table joins its name to its keys with ``_``, so these
three say the same::

    JUNCTION_KAFKA_BOOTSTRAP=127.0.0.1:9092      # environment (what the Kubernetes manifests set)
    kafka_bootstrap = "127.0.0.1:9092"           # junction.toml
    [kafka]                                      # junction.toml, as a table
    bootstrap = "127.0.0.1:9092"

Where a service hosted by another process answers is ``JUNCTION_<SERVICE>_URL`` / ``<service>_url``; where a
service's gRPC servicers listen, ``JUNCTION_<SERVICE>_GRPC_PORT`` / ``<service>_grpc_port``.
A file with a key that is no setting, a value of the wrong type, or invalid TOML is refused with a
``ConfigError`` naming the file and the key; so is a malformed variable.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from junction.errors import ConfigError

PREFIX = "JUNCTION_"
FILE_NAME = "junction.toml"
FILE_VARIABLE = "JUNCTION_CONFIG"
URL_SUFFIX = "_url"
GRPC_PORT_SUFFIX = "_grpc_port"  # ``<service>_grpc_port``: where a service's gRPC servicers listen


@dataclass(frozen=True)
class Setting:
    """One setting: its file key, its type, its default and what it is for."""

    key: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()  # the accepted values, when only a few are
    secret: bool = False  # `junction config` shows that it is set, never its value

    @property
    def variable(self) -> str:
        """The environment variable, e.g. ``JUNCTION_KAFKA_BOOTSTRAP``."""
        return PREFIX + self.key.upper()


SETTINGS: dict[str, Setting] = {s.key: s for s in [
    Setting("data_dir", str, "var/{system}", "a system's files (SQLite stores, keys, clock, logs); {system} is "
            "replaced by the system's name"),
    Setting("database_url", str, None, "a PostgreSQL server: service s of system y keeps its data in database y_s "
            "(unset: SQLite files in the data directory)"),
    Setting("kafka_bootstrap", str, None, "Kafka brokers: each service relays its log to its topic, subscriptions "
            "are consumer groups (unset: consumers read the source's log directly)"),
    Setting("kafka_topic_template", str, "{system}.{service}", "the topic that carries a service's events"),
    Setting("kafka_group_template", str, "{service}.{subscription}", "the consumer group of a subscription"),
    Setting("kafka_partitions", int, 1, "partitions of a topic junction creates (1 keeps a service's events in "
            "commit order for every consumer; with more, only each stream's events stay in order)"),
    Setting("kafka_replication", int, 1, "replication factor of a topic junction creates"),
    Setting("rabbitmq_url", str, "amqp://guest:guest@127.0.0.1:56720/", "the RabbitMQ broker of systems that "
            "use queues (`junction up --distributed` starts one for them)"),
    Setting("rabbitmq_exchange_template", str, "{system}.{service}", "the exchange a service's relay publishes to"),
    Setting("rabbitmq_queue_template", str, "{system}.{service}.{subscription}", "the queue of a subscription"),
    Setting("rabbitmq_prefetch", int, 100, "unacknowledged messages one consumer may hold"),
    Setting("rabbitmq_ack_every", int, 20, "a consumer acknowledges in batches of this many"),
    Setting("host", str, "127.0.0.1", "the address `junction run` and `junction serve` listen on"),
    Setting("port", int, None, "their HTTP port (default: the system's own for `run`; `serve` needs one)"),
    Setting("time_scale", float, 1.0, "platform time runs this many times faster than the wall clock"),
    Setting("clock_origin", float, None, "the wall-clock instant (Unix seconds) a scaled clock starts from, "
            "shared by every process of one run"),
    Setting("log_level", str, "INFO", "DEBUG, INFO, WARNING or ERROR", ("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("pg_home", str, "var/pg", "the private PostgreSQL cluster of `scripts/postgres.sh`"),
    Setting("pg_port", int, 55432, "its port"),
    Setting("kafka_home", str, "var/kafka", "the Kafka broker of `scripts/kafka.sh`"),
    Setting("kafka_port", int, 59092, "its client port"),
    Setting("kafka_controller_port", int, 59093, "its KRaft controller port"),
    Setting("rabbitmq_home", str, "var/rabbitmq", "the RabbitMQ node of `scripts/rabbitmq.sh`"),
    Setting("rabbitmq_port", int, 56720, "its AMQP port"),
    Setting("rabbitmq_dist_port", int, 56721, "its Erlang distribution port"),
    Setting("rabbitmq_epmd_port", int, 56722, "its private epmd's port"),
    Setting("cache", str, None, "where downloaded jars are kept (default: $XDG_CACHE_HOME/junction)"),
    Setting("smtp_host", str, "127.0.0.1", "the SMTP server services send e-mail through (`junction mail-sink` "
            "in development)"),
    Setting("smtp_port", int, 1025, "its port (also where `junction mail-sink` listens for SMTP)"),
    Setting("smtp_tls", str, "NONE", "NONE, STARTTLS or TLS (TLS from the first byte, usually port 465)",
            ("NONE", "STARTTLS", "TLS")),
    Setting("smtp_username", str, None, "log in to the SMTP server as this user (unset: no login)"),
    Setting("smtp_password", str, None, "the password of that login", secret=True),
    Setting("mail_signature", str, None, "the signature line of the mails a system sends (unset: the system's "
            "own)"),
    Setting("mail_from", str, None, "the sender address of every mail (unset: each mailer's own)"),
    Setting("mail_sink_port", int, 8025, "the web page and Mailpit-compatible JSON API of `junction mail-sink`"),
    Setting("mail_sink_dir", str, "var/mail", "where `junction mail-sink` keeps the mails it received"),
]}


def _parse(setting: Setting, raw: str) -> Any:
    """A variable's text as the setting's type."""
    try:
        value = setting.kind(raw)
    except ValueError:
        raise ConfigError(f"{setting.variable}={raw!r} is not {_kind_name(setting.kind)}") from None
    return _chosen(setting, value, setting.variable)


def _chosen(setting: Setting, value: Any, where: str) -> Any:
    """``value``, upper-cased when the setting has choices, or a ConfigError listing them."""
    if not setting.choices:
        return value
    if str(value).upper() not in setting.choices:
        raise ConfigError(f"{where}: {setting.key} must be one of {', '.join(setting.choices)}, not {value!r}")
    return str(value).upper()


def _kind_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string"}[kind]


def _checked(setting: Setting, value: Any, where: str) -> Any:
    """A file value of the setting's type (an integer passes for a number; booleans pass for nothing)."""
    number = setting.kind is float and isinstance(value, int)
    if isinstance(value, bool) or not (isinstance(value, setting.kind) or number):
        raise ConfigError(f"{where}: {setting.key} must be {_kind_name(setting.kind)}, not {value!r}")
    return _chosen(setting, setting.kind(value), where)


def read_file(path: Path) -> dict[str, Any]:
    """A config file's settings by key, checked (unknown keys and wrong types are errors)."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    values: dict[str, Any] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for name, value in table.items():
            key = f"{prefix}{name}".lower()
            if isinstance(value, dict):
                walk(value, f"{key}_")
                continue
            if key in values:
                raise ConfigError(f"{path}: {key} is set twice (as a key and inside a table)")
            setting = SETTINGS.get(key)
            if setting is not None:
                values[key] = _checked(setting, value, str(path))
            elif key.endswith(URL_SUFFIX) and len(key) > len(URL_SUFFIX):
                values[key] = _checked(Setting(key, str, None, ""), value, str(path))
            elif key.endswith(GRPC_PORT_SUFFIX) and len(key) > len(GRPC_PORT_SUFFIX):
                values[key] = _checked(Setting(key, int, None, ""), value, str(path))
            else:
                close = difflib.get_close_matches(key, SETTINGS, n=1)
                hint = (f" (did you mean {close[0]}?)" if close
                        else f" (known: {', '.join(SETTINGS)}, <service>_url, <service>_grpc_port)")
                raise ConfigError(f"{path}: unknown setting {key!r}{hint}")

    walk(document, "")
    return values


class Config:
    """The settings of one process: flags are passed to ``get``; environment and file are read once."""

    def __init__(self, file_values: Mapping[str, Any] | None = None, file: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.file = file
        self._file = dict(file_values or {})
        self._raw_env = {k: v for k, v in (env or {}).items() if k.startswith(PREFIX) and v != ""}
        self._env: dict[str, Any] = {}
        for key, setting in SETTINGS.items():  # checked now: a malformed variable fails at start, by name
            if setting.variable in self._raw_env:
                self._env[key] = _parse(setting, self._raw_env[setting.variable])

    def get(self, key: str, flag: Any = None) -> Any:
        """The setting's value: ``flag`` when given (not None), else the environment, the file, the default."""
        if flag is not None:
            return flag
        if key in self._env:
            return self._env[key]
        if key in self._file:
            return self._file[key]
        return SETTINGS[key].default

    def origin(self, key: str, flag: Any = None) -> str:
        """Where ``get(key, flag)`` comes from: ``flag``, the variable's name, the file's path or ``default``."""
        if flag is not None:
            return "flag"
        if key in self._env:
            return SETTINGS[key].variable
        if key in self._file:
            return str(self.file)
        return "default"

    def service_url(self, service: str) -> str | None:
        """Where ``service`` answers when another process hosts it (``JUNCTION_<SERVICE>_URL``)."""
        key = service.lower().replace("-", "_") + URL_SUFFIX
        return self._raw_env.get(PREFIX + key.upper()) or self._file.get(key)

    def grpc_port(self, service: str) -> int | None:
        """Where ``service``'s gRPC servicers listen, when configured (``JUNCTION_<SERVICE>_GRPC_PORT``)."""
        key = service.lower().replace("-", "_") + GRPC_PORT_SUFFIX
        raw = self._raw_env.get(PREFIX + key.upper())
        if raw is None:
            value: int | None = self._file.get(key)
            return value
        return int(_parse(Setting(key, int, None, ""), raw))

    def check_services(self, services: list[str]) -> None:
        """Refuse a file's ``<name>_url`` or ``<name>_grpc_port`` that names none of ``services`` (a typo would
        be ignored silently)."""
        known = {s.lower().replace("-", "_") + suffix for s in services for suffix in (URL_SUFFIX, GRPC_PORT_SUFFIX)}
        for key in self._file:
            if key not in SETTINGS and key not in known:
                close = difflib.get_close_matches(key, [*known, *SETTINGS], n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(f"{self.file}: {key!r} is no setting and names no service{hint}")

    def data_dir(self, system: str, flag: Path | None = None) -> Path:
        """The system's data directory (``{system}`` in the setting is replaced by its name)."""
        return Path(str(self.get("data_dir", flag)).replace("{system}", system))

    @property
    def database_url(self) -> str | None:
        """``JUNCTION_DATABASE_URL``."""
        value: str | None = self.get("database_url")
        return value

    @property
    def kafka_bootstrap(self) -> str | None:
        """``JUNCTION_KAFKA_BOOTSTRAP``."""
        value: str | None = self.get("kafka_bootstrap")
        return value

    def with_env(self, overrides: Mapping[str, str]) -> Config:
        """This configuration as a process given the extra variables ``overrides`` would see it."""
        return Config(self._file, self.file, {**self._raw_env, **overrides})

    def table(self) -> list[dict[str, Any]]:
        """Every setting with its variable, value and origin (for ``junction config``)."""
        return [{"key": s.key, "variable": s.variable,
                 "value": "(hidden)" if s.secret and self.get(s.key) is not None else self.get(s.key),
                 "origin": self.origin(s.key), "default": s.default, "help": s.help} for s in SETTINGS.values()]


def find_file(path: Path | str | None, env: Mapping[str, str], cwd: Path | None = None) -> Path | None:
    """The config file: ``path``, else ``$JUNCTION_CONFIG``, else ``junction.toml`` in ``cwd`` if it exists."""
    explicit = path or env.get(FILE_VARIABLE)
    if explicit:
        chosen = Path(explicit)
        if not chosen.is_file():
            raise ConfigError(f"config file {chosen} not found")
        return chosen
    default = (cwd or Path.cwd()) / FILE_NAME
    return default if default.is_file() else None


def load(path: Path | str | None = None, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Config:
    """The configuration of this process: ``env`` (default ``os.environ``) and the config file."""
    environment = os.environ if env is None else env
    file = find_file(path, environment, cwd)
    return Config(read_file(file) if file is not None else {}, file, environment)
