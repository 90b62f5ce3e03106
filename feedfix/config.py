"""The TOML config: parsed and checked in full, so a typo is an error that names the key.

Pure: ``parse_config`` takes the text and the file name (for messages); the CLI reads the file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from feedfix.errors import ConfigError
from feedfix.rules import RULES, RuleSet, build_ruleset

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
                       r"(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


def parse_duration(value: object, key: str) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"10m"``, ``"1h30m"``."""
    if isinstance(value, bool):
        raise ConfigError(f'{key}: expected a duration such as 600 or "10m", got {value!r}')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)) and any(m.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = d * 86400 + h * 3600 + mi * 60 + s
    else:
        raise ConfigError(f'{key}: expected a duration such as 600 or "10m", got {value!r}')
    if seconds <= 0:
        raise ConfigError(f"{key}: must be more than zero, got {value!r}")
    return seconds


def parse_size(value: object, key: str = "size") -> int:
    """Bytes from a number or a string like ``"50MB"``, ``"512KiB"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise ConfigError(f"{key}: expected a size such as 50MB or 1048576, got {value!r}")
    unit = match.group(2) or ""
    factor = _SIZE_UNITS[unit[:1].lower()] if unit.lower() != "b" else 1
    if "i" in unit.lower():
        factor = {1000: 1024, 1000**2: 1024**2, 1000**3: 1024**3}.get(factor, factor)
    size = int(float(match.group(1)) * factor)
    if size <= 0:
        raise ConfigError(f"{key}: must be more than zero, got {value!r}")
    return size


@dataclass(frozen=True)
class ServerConfig:
    """Where the service listens."""

    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class StorageConfig:
    """Where the service keeps its state."""

    path: str = "feedfix.db"


@dataclass(frozen=True)
class FeedConfig:
    """One upstream feed to poll and republish."""

    name: str
    url: str
    interval: float = 600.0
    rules: RuleSet = field(default_factory=build_ruleset)


@dataclass(frozen=True)
class Config:
    """The whole config; every part has defaults except the feeds."""

    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    rules: RuleSet = field(default_factory=build_ruleset)
    rule_options: Mapping[str, Any] = field(default_factory=dict)
    feeds: tuple[FeedConfig, ...] = ()


def _table(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table")
    return value


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"{where}.{key}: unknown key (known keys: {known})".lstrip("."))


def _typed(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _rules(value: object, where: str, base: Mapping[str, Any]) -> tuple[RuleSet, dict[str, Any]]:
    table = _table(value, where) if value is not None else {}
    merged: dict[str, Any] = {name: dict(opts) for name, opts in base.items()}
    disable = table.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(d, str) for d in disable):
        raise ConfigError(f"{where}.disable: expected a list of rule names")
    for name, options in table.items():
        if name == "disable":
            continue
        if name not in RULES:
            raise ConfigError(f"{where}.{name}: unknown rule (rules: {', '.join(RULES)})")
        merged.setdefault(name, {}).update(_table(options, f"{where}.{name}"))
    try:
        return build_ruleset(merged, disable), merged
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _feed(value: object, index: int, seen: set[str], rule_options: Mapping[str, Any]) -> FeedConfig:
    where = f"feeds[{index}]"
    table = _table(value, where)
    _check_keys(table, {"name", "url", "interval", "rules"}, where)
    for key in ("name", "url"):
        if key not in table:
            raise ConfigError(f"{where}.{key}: missing (every feed needs a name and a url)")
    name = _typed(table, "name", str, where, "")
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}.name: {name!r} must be letters, digits, '.', '_' or '-' (it becomes a URL)"
        )
    if name in seen:
        raise ConfigError(f"{where}.name: {name!r} is used by another feed")
    seen.add(name)
    url = _typed(table, "url", str, where, "")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"{where}.url: expected an http(s) URL, got {url!r}")
    interval = parse_duration(table.get("interval", 600), f"{where}.interval")
    rules, _ = _rules(table.get("rules"), f"{where}.rules", rule_options)
    return FeedConfig(name=name, url=url, interval=interval, rules=rules)


def parse_config(text: str, source: str = "config") -> Config:
    """Parse and check a config file's text; ConfigError messages start with ``source``."""
    try:
        return _parse(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _parse(text: str) -> Config:
    data = tomllib.loads(text)
    _check_keys(data, {"server", "storage", "rules", "feeds"}, "")
    server_t = _table(data.get("server", {}), "server")
    _check_keys(server_t, {"host", "port"}, "server")
    port = _typed(server_t, "port", int, "server", 8080)
    if not 0 <= port <= 65535:
        raise ConfigError(f"server.port: {port} is not a TCP port")
    server = ServerConfig(host=_typed(server_t, "host", str, "server", "127.0.0.1"), port=port)
    storage_t = _table(data.get("storage", {}), "storage")
    _check_keys(storage_t, {"path"}, "storage")
    storage = StorageConfig(path=_typed(storage_t, "path", str, "storage", "feedfix.db"))
    rules, rule_options = _rules(data.get("rules"), "rules", {})
    feeds_v = data.get("feeds", [])
    if not isinstance(feeds_v, list):
        raise ConfigError("feeds: expected an array of tables ([[feeds]])")
    seen: set[str] = set()
    feeds = tuple(_feed(f, i, seen, rule_options) for i, f in enumerate(feeds_v))
    return Config(server=server, storage=storage, rules=rules, rule_options=rule_options,
                  feeds=feeds)  # fmt: skip
