"""The TOML config: parsed and checked in full, so a typo is an error that names the key.

Pure: ``parse_config`` takes the text, the file name (for messages) and an environment
mapping (for ``FEEDFIX_SECTION__KEY`` overrides); the shell reads the file and ``os.environ``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feedfix import __version__
from feedfix.core.errors import ConfigError
from feedfix.core.rules import RULES, RuleSet, build_ruleset

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
                       r"(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
ENV_PREFIX = "FEEDFIX_"
SHORT_INTERVAL = 60.0  # below this a feed still works, but the check warns: be kind upstream


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
    unit = (match.group(2) or "").lower()
    factor = _SIZE_UNITS[unit[:1]] if unit != "b" else 1
    if "i" in unit:
        factor = {1000: 1024, 1000**2: 1024**2, 1000**3: 1024**3}.get(factor, factor)
    size = int(float(match.group(1)) * factor)
    if size <= 0:
        raise ConfigError(f"{key}: must be more than zero, got {value!r}")
    return size


def _int(low: int, high: int) -> Callable[[object, str], int]:
    def check(value: object, key: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{key}: expected a whole number from {low} to {high}, got {value!r}")
        return value

    return check


def _str(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _choice(*allowed: str) -> Callable[[object, str], str]:
    def check(value: object, key: str) -> str:
        if value not in allowed:
            names = ", ".join(map(repr, allowed))
            raise ConfigError(f"{key}: expected one of {names}, got {value!r}")
        return str(value)

    return check


def _number(value: object, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{key}: expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _headers(value: object, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f'{key}: expected a table of strings, e.g. {{ Referer = "https://…" }}')
    for name, text in value.items():
        if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", name) or re.search(r"[\r\n]", text):
            raise ConfigError(f"{key}.{name}: not a valid HTTP header")
    return tuple(sorted(value.items()))


def _url(value: object, key: str) -> str:
    text = _str(value, key)
    if not re.match(r"^https?://[^/\s?#]+[^\s]*$", text):
        raise ConfigError(f"{key}: expected an http(s) URL, got {text!r}")
    return text


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the service answers HTTP."""

    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str | None = None  # public URL of the service, for the feeds' self links
    cache_max_age: float = 300.0  # Cache-Control max-age ceiling for served feeds
    max_connections: int = 1024  # open connections; more are closed at once
    header_timeout: float = 10.0  # a request's headers must arrive within this
    keepalive_timeout: float = 75.0  # an idle kept-alive connection closes after this


@dataclass(frozen=True)
class StorageConfig:
    """Where the service keeps its state (``:memory:`` keeps nothing across restarts)."""

    path: str = "feedfix.db"


@dataclass(frozen=True, kw_only=True)
class FeedSettings:
    """What each feed may set for itself; ``[poll]`` gives the defaults."""

    interval: float = 600.0
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_size: int = 10 * 1000 * 1000
    user_agent: str = f"feedfix/{__version__}"
    headers: tuple[tuple[str, str], ...] = ()
    keep_entries: int = 100
    keep_days: float = 30.0


@dataclass(frozen=True, kw_only=True)
class PollConfig(FeedSettings):
    """``[poll]``: the feeds' defaults, plus limits that apply to the poller as a whole."""

    concurrency: int = 8
    per_host: int = 2
    jitter: float = 0.1
    max_backoff: float = 6 * 3600.0
    max_redirects: int = 5
    allow_private_redirects: bool = False  # a redirect may lead from the feed's host inward
    cleaner: str = "thread"  # where parsing and cleaning run: "thread" or "process"


@dataclass(frozen=True, kw_only=True)
class FeedConfig(FeedSettings):
    """One upstream feed to poll and republish, with its effective settings."""

    name: str
    url: str
    rules: RuleSet = field(default_factory=build_ruleset, compare=False)
    rule_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """The whole config; every part has defaults except the feeds."""

    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    poll: PollConfig = field(default_factory=PollConfig)
    rules: RuleSet = field(default_factory=build_ruleset, compare=False)
    rule_options: Mapping[str, Any] = field(default_factory=dict)
    feeds: tuple[FeedConfig, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)


Parser = Callable[[object, str], Any]
SERVER_KEYS: dict[str, Parser] = {
    "host": _str,
    "port": _int(0, 65535),
    "base_url": _url,
    "cache_max_age": parse_duration,
    "max_connections": _int(1, 100_000),
    "header_timeout": parse_duration,
    "keepalive_timeout": parse_duration,
}
STORAGE_KEYS: dict[str, Parser] = {"path": _str}
FEED_SETTINGS: dict[str, Parser] = {
    "interval": parse_duration,
    "timeout": parse_duration,
    "connect_timeout": parse_duration,
    "max_size": parse_size,
    "user_agent": _str,
    "headers": _headers,
    "keep_entries": _int(0, 100_000),
    "keep_days": lambda v, k: _number(v, k, 0, 36500),
}
POLL_KEYS: dict[str, Parser] = {
    **FEED_SETTINGS,
    "concurrency": _int(1, 1000),
    "per_host": _int(1, 100),
    "jitter": lambda v, k: _number(v, k, 0, 0.5),
    "max_backoff": parse_duration,
    "max_redirects": _int(0, 20),
    "allow_private_redirects": _bool,
    "cleaner": _choice("thread", "process"),
}


def _table(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table")
    return value


def _section(table: Mapping[str, Any], keys: Mapping[str, Parser], where: str) -> dict[str, Any]:
    """Check and convert every key of a table; unknown keys are errors that name them."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        parser = keys.get(key)
        if parser is None:
            known = ", ".join(sorted(keys))
            raise ConfigError(f"{where}.{key}: unknown key (known keys: {known})")
        out[key] = parser(value, f"{where}.{key}")
    return out


def _rules(value: object, where: str, base: Mapping[str, Any]) -> tuple[RuleSet, dict[str, Any]]:
    table = _table(value, where) if value is not None else {}
    merged: dict[str, Any] = {n: dict(o) for n, o in base.items() if n != "disable"}
    disable = table.get("disable", base.get("disable", []))
    if not isinstance(disable, list) or not all(isinstance(d, str) for d in disable):
        raise ConfigError(f"{where}.disable: expected a list of rule names")
    for name, options in table.items():
        if name == "disable":
            continue
        if name not in RULES:
            raise ConfigError(f"{where}.{name}: unknown rule (rules: {', '.join(RULES)})")
        merged.setdefault(name, {}).update(_table(options, f"{where}.{name}"))
    try:
        rules = build_ruleset(merged, disable)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return rules, {**merged, "disable": list(disable)}


def _feed(
    value: object, index: int, seen: set[str], poll: PollConfig, rule_options: Mapping[str, Any]
) -> tuple[FeedConfig, list[str]]:
    where = f"feeds[{index}]"
    table = dict(_table(value, where))
    for key in ("name", "url"):
        if key not in table:
            raise ConfigError(f"{where}.{key}: missing (every feed needs a name and a url)")
    name = _str(table.pop("name"), f"{where}.name")
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}.name: {name!r} must be letters, digits, '.', '_' or '-' (it becomes a URL)"
        )
    if name in seen:
        raise ConfigError(f"{where}.name: {name!r} is used by another feed")
    seen.add(name)
    url = _url(table.pop("url"), f"{where}.url")
    rules, options = _rules(table.pop("rules", None), f"{where}.rules", rule_options)
    settings = _section(table, FEED_SETTINGS, where)
    defaults = {key: getattr(poll, key) for key in FEED_SETTINGS}
    feed = FeedConfig(name=name, url=url, rules=rules, rule_options=options,
                      **{**defaults, **settings})  # fmt: skip
    warnings = []
    if feed.interval < SHORT_INTERVAL:
        warnings.append(
            f"{where}.interval: {feed.interval:g} s is short; polling more than once a minute "
            "burdens the upstream"
        )
    return feed, warnings


SECTIONS: dict[str, dict[str, Parser]] = {
    "server": SERVER_KEYS,
    "storage": STORAGE_KEYS,
    "poll": POLL_KEYS,
}


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``FEEDFIX_SECTION__KEY=value`` overrides ``[section] key`` (value read as TOML if it can be).

    For containers: ``FEEDFIX_SERVER__PORT=8080``, ``FEEDFIX_STORAGE__PATH=/data/feedfix.db``.
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in SECTIONS or key not in SECTIONS[section]:
            raise ConfigError(f"environment variable {name}: no such setting [{section}] {key}")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.setdefault(section, {})
        if not isinstance(out[section], dict):
            raise ConfigError(f"{section}: expected a table")
        out[section][key] = value
    return out


def parse_config(
    text: str, source: str = "config", environ: Mapping[str, str] | None = None
) -> Config:
    """Parse and check a config file's text; ConfigError messages start with ``source``."""
    try:
        data = apply_env(tomllib.loads(text), environ or {})
        return _parse(data)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _parse(data: Mapping[str, Any]) -> Config:
    for key in data:
        if key not in {*SECTIONS, "rules", "feeds"}:
            known = ", ".join(sorted({*SECTIONS, "rules", "feeds"}))
            raise ConfigError(f"{key}: unknown key (known keys: {known})")
    server = ServerConfig(
        **_section(_table(data.get("server", {}), "server"), SERVER_KEYS, "server")
    )
    storage = StorageConfig(
        **_section(_table(data.get("storage", {}), "storage"), STORAGE_KEYS, "storage")
    )
    poll = PollConfig(**_section(_table(data.get("poll", {}), "poll"), POLL_KEYS, "poll"))
    rules, rule_options = _rules(data.get("rules"), "rules", {})
    feeds_v = data.get("feeds", [])
    if not isinstance(feeds_v, list):
        raise ConfigError("feeds: expected an array of tables ([[feeds]])")
    seen: set[str] = set()
    feeds: list[FeedConfig] = []
    warnings: list[str] = []
    for index, value in enumerate(feeds_v):
        feed, feed_warnings = _feed(value, index, seen, poll, rule_options)
        feeds.append(feed)
        warnings.extend(feed_warnings)
    return Config(
        server=server,
        storage=storage,
        poll=poll,
        rules=rules,
        rule_options=rule_options,
        feeds=tuple(feeds),
        warnings=tuple(warnings),
    )


def effective(config: Config) -> dict[str, Any]:
    """The config with every default filled in, as plain data (for ``check-config``)."""

    def plain(obj: object) -> Any:
        return dict(obj) if isinstance(obj, tuple) else obj  # headers: pairs -> table

    feeds = []
    for feed in config.feeds:
        row = {k: plain(getattr(feed, k)) for k in ("name", "url", *FEED_SETTINGS)}
        row["rules"] = list(feed.rules.names)
        feeds.append(row)
    return {
        "server": {k: getattr(config.server, k) for k in SERVER_KEYS},
        "storage": {k: getattr(config.storage, k) for k in STORAGE_KEYS},
        "poll": {k: plain(getattr(config.poll, k)) for k in POLL_KEYS},
        "rules": list(config.rules.names),
        "feeds": feeds,
    }
