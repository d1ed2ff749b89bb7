"""The daemon's whole configuration: one tree of frozen dataclasses.

Sources, later ones winning: built-in defaults, one TOML file, then environment variables
``CTI_SECTION__KEY`` (``CTI_AMI__PORT=5039``, ``CTI_AMI__SERVERS__PBX1__HOST=10.0.0.2``).
Every value is validated at load time; an error names the key, the value and the expectation
(``ami.port: expected an integer 1-65535, got 'abc'``) so an operator can fix it without a
traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ENV_PREFIX = "CTI_"


class ConfigError(Exception):
    """One or more invalid settings; ``problems`` holds one line per setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _port(default: int) -> Any:
    return field(default=default, metadata={"range": (1, 65535)})


def _positive(default: float) -> Any:
    return field(default=default, metadata={"range": (0.001, None)})


def _count(default: int, low: int = 1, high: int | None = None) -> Any:
    return field(default=default, metadata={"range": (low, high)})


def _secret(default: str = "") -> Any:
    # Marked so that dumps and logs print "***" instead of the value.
    return field(default=default, repr=False, metadata={"secret": True})


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = _port(8080)
    # Bearer token for the operator role (/readyz, /metrics). Empty: one is generated at first
    # start and kept in <data_dir>/operator.token (mode 0600).
    operator_token: str = _secret()


@dataclass(frozen=True)
class AgiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = _port(4573)
    max_sessions: int = _count(1000)
    # Seconds a new connection has to send its agi_* block (slowloris guard). Sessions
    # themselves have no idle limit: a call can wait in queue for hours.
    env_timeout: float = _positive(5.0)


@dataclass(frozen=True)
class IvrConfig:
    # Folder (or file) of IVR flows, one TOML file each; empty: no IVR, calls are only recorded.
    flows: str = ""


@dataclass(frozen=True)
class AcdConfig:
    """The ACD: queues, agents and overflow plans (a TOML file, see config/acd.toml)."""

    file: str = ""
    moh_class: str = "default"
    outbound_interface: str = field(default="", metadata={"pattern": "^(.*\\{number\\}.*)?$"})
    callback_digit: str = field(default="1", metadata={"pattern": "^[0-9*#]$"})
    # An available agent whose desktop has been gone this long is set not ready ("desktop closed").
    desktop_away_seconds: float = _positive(60.0)


@dataclass(frozen=True)
class AmiServerConfig:
    """One Asterisk server; unset keys inherit from the [ami] section."""

    host: str = "127.0.0.1"
    port: int = _port(5038)
    username: str = "cti"
    secret: str = _secret()
    auth: Literal["md5", "plain"] = "md5"
    connect_timeout: float = _positive(5.0)
    action_timeout: float = _positive(10.0)
    ping_interval: float = _positive(5.0)
    ping_timeout: float = _positive(3.0)
    reconnect_min: float = _positive(0.5)
    reconnect_max: float = _positive(30.0)
    queue_size: int = _count(10000)


@dataclass(frozen=True)
class AmiConfig(AmiServerConfig):
    # Servers by name, e.g. [ami.servers.pbx1]. Empty: no AMI link (unless the lab runs).
    servers: Mapping[str, AmiServerConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseConfig:
    # Empty: the daemon runs its own private PostgreSQL cluster under <data_dir>/pg.
    dsn: str = _secret()
    pool_min: int = _count(1)
    pool_max: int = _count(10)
    # Unprivileged OS user that runs the embedded cluster when the daemon runs as root.
    embedded_user: str = "postgres"
    embedded_port: int = _port(55432)


@dataclass(frozen=True)
class WebhookConfig:
    """An endpoint told of every closed interaction, e.g. [crm.webhooks.billing]."""

    url: str = field(default="", metadata={"pattern": "^https?://.+"})
    # HMAC-SHA256 key of the X-CTI-Signature header.
    secret: str = _secret()


@dataclass(frozen=True)
class ExternalCrmConfig:
    """An external CRM asked for the caller's record; its fields merge into the screen-pop."""

    # GET URL with {e164} or {digits}, e.g. "https://crm.example/api/contacts?phone={e164}".
    # Empty: no external CRM.
    url_template: str = field(default="", metadata={"pattern": "^(https?://.+)?$"})
    # Seconds the pop waits for it before coming without its fields.
    timeout: float = _positive(1.0)
    cache_ttl: float = _positive(300.0)
    # Sent as "<api_key_header>: <api_key>" when both are set.
    api_key_header: str = ""
    api_key: str = _secret()


@dataclass(frozen=True)
class CrmConfig:
    # ISO 3166 country of national (non-+) phone numbers, for E.164 normalisation.
    default_country: str = field(default="US", metadata={"pattern": "^[A-Z]{2}$"})
    webhooks: Mapping[str, WebhookConfig] = field(default_factory=dict)
    external: ExternalCrmConfig = field(default_factory=ExternalCrmConfig)


@dataclass(frozen=True)
class LabConfig:
    """The real Asterisk lab (Debian sid chroot) used by the demo and the tests."""

    enabled: bool = False
    # Where the unpacked root and its runtime files live; relative paths are under data_dir.
    dir: str = "lab"
    # Where the built root is kept as a tarball so the next setup takes seconds.
    cache_dir: str = "~/.cache/cti-server"
    mirror: str = "http://deb.debian.org/debian"
    suite: str = "sid"
    sip_port: int = _port(5060)
    ami_port: int = _port(5038)
    ami_secret: str = _secret("cti-lab-secret")


@dataclass(frozen=True)
class LogConfig:
    # auto: readable console output on a terminal, JSON lines otherwise.
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True)
class Config:
    # Runtime state (embedded database, lab, tokens); relative to the working directory.
    data_dir: str = "var"
    http: HttpConfig = field(default_factory=HttpConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    ivr: IvrConfig = field(default_factory=IvrConfig)
    acd: AcdConfig = field(default_factory=AcdConfig)
    ami: AmiConfig = field(default_factory=AmiConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    crm: CrmConfig = field(default_factory=CrmConfig)
    lab: LabConfig = field(default_factory=LabConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def path(self, relative: str) -> Path:
        """A path setting resolved against data_dir (absolute and ~ paths kept)."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else Path(self.data_dir).resolve() / candidate

    def ami_servers(self) -> dict[str, AmiServerConfig]:
        """Every AMI server to link to, the lab's included when it runs."""
        servers = dict(self.ami.servers)
        if self.lab.enabled:
            servers.setdefault("lab", dataclasses.replace(
                _server_defaults(self.ami), host="127.0.0.1", port=self.lab.ami_port,
                username="cti", secret=self.lab.ami_secret))
        return servers


def _server_defaults(ami: AmiConfig) -> AmiServerConfig:
    inherited = {f.name: getattr(ami, f.name) for f in dataclasses.fields(AmiServerConfig)}
    return AmiServerConfig(**inherited)


# --- loading ---------------------------------------------------------------------------------

def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the TOML file at ``path`` (if any), then ``CTI_*`` variables."""
    raw: dict[str, Any] = _read_toml(Path(path)) if path else {}
    _merge_environment(raw, os.environ if environ is None else environ)
    problems: list[str] = []
    config = _build(Config, raw, "", problems)
    problems.extend(_cross_checks(config))
    if problems:
        raise ConfigError(problems)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such configuration file"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None


def _merge_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    top_level_scalars = {name for name, hint in typing.get_type_hints(Config).items()
                         if not dataclasses.is_dataclass(hint)}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = name[len(ENV_PREFIX):].lower().split("__")
        if len(keys) == 1 and keys[0] not in top_level_scalars:
            continue  # some other CTI_* variable, not ours
        target = raw
        for key in keys[:-1]:
            nested = target.setdefault(key, {})
            if not isinstance(nested, dict):
                nested = target[key] = {}
            target = nested
        target[keys[-1]] = value


def _build(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"{prefix.rstrip('.') or 'config'}: expected a table, got {raw!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw.keys() - known.keys():
        problems.append(f"{prefix}{key}: unknown setting (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        if name in raw:
            values[name] = _value(hints[name], spec, raw[name], f"{prefix}{name}", problems)
    for name, hint in hints.items():
        if typing.get_origin(hint) in (Mapping, dict):
            values[name] = _named_tables(cls, typing.get_args(hint)[1], raw.get(name, {}), values,
                                         f"{prefix}{name}", problems)
    return cls(**values)


def _named_tables(section: type, item: type, tables: Any, section_values: dict, key: str,
                  problems: list[str]) -> dict:
    """[section.key.NAME] tables; a section whose class extends the tables' class (AmiConfig)
    passes its own values down as their defaults."""
    if not isinstance(tables, dict):
        problems.append(f"{key}: expected tables [{key}.NAME], got {tables!r}")
        return {}
    inherited = {}
    if issubclass(section, item):
        item_fields = {f.name for f in dataclasses.fields(item)}
        inherited = {k: v for k, v in section_values.items() if k in item_fields}
    result = {}
    for name, table in tables.items():
        table = {**inherited, **table} if isinstance(table, dict) else table
        result[name] = _build(item, table, f"{key}.{name}.", problems)
    return result


def _value(hint: Any, spec: dataclasses.Field, value: Any, key: str, problems: list[str]) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.", problems)
    if typing.get_origin(hint) in (Mapping, dict):
        return {}  # built by _named_tables once the section's own values are known
    try:
        return _coerce(hint, value, spec.metadata.get("range"), spec.metadata.get("pattern"))
    except ValueError as expectation:
        shown = "***" if spec.metadata.get("secret") else repr(value)
        problems.append(f"{key}: expected {expectation}, got {shown}")
        return spec.default


def _coerce(hint: Any, value: Any, bounds: tuple | None, pattern: str | None = None) -> Any:
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ValueError("one of " + ", ".join(repr(c) for c in choices))
        return value
    if hint is bool:
        return _to_bool(value)
    if hint in (int, float):
        return _to_number(hint, value, bounds)
    if hint is str and isinstance(value, str):
        if pattern and not re.fullmatch(pattern, value):
            raise ValueError(f"a string matching {pattern}")
        return value
    raise ValueError("a string")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.lower() in ("true", "1", "yes", "on")
    raise ValueError("true or false")


def _to_number(kind: type, value: Any, bounds: tuple | None) -> int | float:
    low, high = bounds or (None, None)
    noun = "an integer" if kind is int else "a number"
    expectation = f"{noun} {_describe_bounds(low, high)}".rstrip()
    if isinstance(value, bool):
        raise ValueError(expectation)
    try:
        number = kind(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(expectation) from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(expectation)
    return number


def _describe_bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low}-{high}"
    if low is not None:
        return "> 0" if 0 < low < 1 else f">= {low}"
    return ""


def _cross_checks(config: Config) -> list[str]:
    problems = []
    if config.database.pool_min > config.database.pool_max:
        problems.append(
            f"database.pool_min: expected at most database.pool_max ({config.database.pool_max}), "
            f"got {config.database.pool_min}")
    for name, hook in config.crm.webhooks.items():
        if not hook.url or not hook.secret:
            problems.append(f"crm.webhooks.{name}: expected both url and secret, got "
                            f"{'no url' if not hook.url else 'no secret'}")
    for name, server in config.ami_servers().items():
        if server.reconnect_min > server.reconnect_max:
            problems.append(f"ami.servers.{name}.reconnect_min: expected at most reconnect_max "
                            f"({server.reconnect_max}), got {server.reconnect_min}")
    return problems


# --- dumping ---------------------------------------------------------------------------------

def redacted(config: Any) -> dict[str, Any]:
    """The configuration as a plain dict with every secret replaced by '***' (for logs)."""
    result: dict[str, Any] = {}
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if spec.metadata.get("secret"):
            value = "***" if value else ""
        elif dataclasses.is_dataclass(value):
            value = redacted(value)
        elif isinstance(value, Mapping):
            value = {name: redacted(item) for name, item in value.items()}
        result[spec.name] = value
    return result

