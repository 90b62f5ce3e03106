"""The TOML config: parsed and checked in full, so a typo is an error that names the key.

The schema is said once: each section is a frozen dataclass whose fields carry their check
(``setting``), and the keys a section accepts, the environment overrides and ``check-config``'s
output are all read off those fields. Rules are a ``RuleSpec`` (see ``feedfix.core.rules``).

Pure: ``parse_config`` takes the text, the file name (for messages) and an environment
mapping (for ``FEEDFIX_SECTION__KEY`` overrides); the shell reads the file and ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import PurePath, PurePosixPath
from typing import Any, Literal, TypeVar, get_args

from feedfix import __version__
from feedfix.core.errors import ConfigError
from feedfix.core.rules import RuleSpec, ruleset
from feedfix.core.rules.proxy_images import (
    DEFAULT_HOST_RULES,
    HostRule,
    ImageProxySettings,
    Mode,
    host_rules,
)
from feedfix.core.sizes import parse_size

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
                       r"(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")  # fmt: skip
_SECONDS = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ENV_PREFIX = "FEEDFIX_"
NO_FEEDS = "no feeds configured: add a [[feeds]] table with a name and a url or a path"
MIN_KEY = 32  # characters of an [images] key at least (a guessable key forges image URLs)
SHORT_INTERVAL = 60.0  # below this a feed still works, but the check warns: be kind upstream
Parser = Callable[[object, str], Any]  # (value, key for messages) -> the checked value
T = TypeVar("T")


def parse_duration(value: object, key: str) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"10m"``, ``"1h30m"``."""
    if isinstance(value, bool):
        raise ConfigError(f'{key}: expected a duration such as 600 or "10m", got {value!r}')
    if isinstance(value, int | float) or (isinstance(value, str) and _SECONDS.match(value)):
        seconds = float(value)  # "10" is seconds, as 10 is
    elif isinstance(value, str) and (m := _DURATION.match(value)) and any(m.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = d * 86400 + h * 3600 + mi * 60 + s
    else:
        raise ConfigError(f'{key}: expected a duration such as 600 or "10m", got {value!r}')
    if seconds <= 0:
        raise ConfigError(f"{key}: must be more than zero, got {value!r}")
    return seconds


def _whole(low: int, high: int) -> Parser:
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


def _choice(*allowed: str) -> Parser:
    def check(value: object, key: str) -> str:
        if value not in allowed:
            names = ", ".join(map(repr, allowed))
            raise ConfigError(f"{key}: expected one of {names}, got {value!r}")
        return str(value)

    return check


def _number(low: float, high: float) -> Parser:
    def check(value: object, key: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ConfigError(f"{key}: expected a number from {low:g} to {high:g}, got {value!r}")
        return float(value)

    return check


def _headers(value: object, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f'{key}: expected a table of strings, e.g. {{ Referer = "https://…" }}')
    for name, text in value.items():
        if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", name) or re.search(r"[\r\n]", text):
            raise ConfigError(f"{key}.{name}: not a valid HTTP header")
    return tuple(sorted(value.items()))


def url(value: object, key: str) -> str:
    """An http(s) URL (the check of ``base_url`` and a feed's ``url``)."""
    return _url(value, key)


def _url(value: object, key: str) -> str:
    text = _str(value, key)
    if not re.match(r"^https?://[^/\s?#]+[^\s]*$", text):
        raise ConfigError(f"{key}: expected an http(s) URL, got {text!r}")
    return text


def _key(value: object, key: str) -> str:
    text = _str(value, key)
    if len(text) < MIN_KEY:
        raise ConfigError(
            f"{key}: too short ({len(text)} characters, at least {MIN_KEY}; make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`)'
        )
    return text


def _keys(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{key}: expected a list of keys, got {value!r}")
    return tuple(_key(item, f"{key}[{i}]") for i, item in enumerate(value))


def _private(value: object, key: str) -> tuple[str, ...]:
    """Hosts (exact or ``*.`` globs) and IP addresses or networks the image proxy may reach."""
    if not isinstance(value, list | tuple):
        raise ConfigError(f'{key}: expected a list such as ["127.0.0.1"], got {value!r}')
    out = []
    for i, item in enumerate(value):
        text = _str(item, f"{key}[{i}]").strip()
        try:
            ipaddress.ip_network(text.strip("[]"), strict=False)
        except ValueError:
            if not re.match(r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$", text):
                raise ConfigError(
                    f"{key}[{i}]: expected a host name, an IP address or a network, got {item!r}"
                ) from None
        out.append(text)
    return tuple(out)


def _hosts(value: object, key: str) -> tuple[HostRule, ...]:
    """``[images.hosts]``: the configured host rules first, then the defaults they don't name."""
    table = _table(value, key)
    for pattern, options in table.items():
        _table(options, f"{key}.{pattern}")
    try:
        return host_rules(table)
    except ValueError as exc:  # its message starts with the pattern
        raise ConfigError(f"{key}.{exc}") from exc


def setting(default: T, check: Parser) -> T:
    """A config key: its default and the check that turns a TOML value into it."""
    return field(default=default, metadata={"check": check})


def keys(section: type) -> dict[str, Parser]:
    """The keys a section's dataclass accepts, each with its check."""
    return {f.name: f.metadata["check"] for f in fields(section) if "check" in f.metadata}


Cleaner = Literal["thread", "process"]


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the service answers HTTP."""

    host: str = setting("127.0.0.1", _str)
    port: int = setting(8080, _whole(0, 65535))
    # public URL of the service, for the feeds' self links
    base_url: str | None = setting(None, _url)
    # Cache-Control max-age ceiling for served feeds
    cache_max_age: float = setting(300.0, parse_duration)
    # open connections; more are closed at once
    max_connections: int = setting(1024, _whole(1, 100_000))
    # a request's headers must arrive within this
    header_timeout: float = setting(10.0, parse_duration)
    # an idle kept-alive connection closes after this
    keepalive_timeout: float = setting(75.0, parse_duration)
    # when set, the web pages and /metrics ask for it (feeds and /healthz stay open)
    admin_token: str | None = setting(None, _str)


@dataclass(frozen=True)
class ImagesConfig:
    """``[images]``: the signed, caching image proxy (off unless ``proxy`` says otherwise)."""

    # "off": origin URLs as they are; "http": http:// images and those a host rule names;
    # "all": every image
    proxy: Mode = setting("off", _choice("off", "http", "all"))  # noqa: RUF009 (a str)
    # the signing key (or FEEDFIX_IMAGES__KEY); None: made at first start, kept in the store
    key: str | None = setting(None, _key)
    # keys still accepted while links signed with them are in readers' caches
    old_keys: tuple[str, ...] = setting((), _keys)
    # hosts or networks the proxy may reach though they are loopback or private
    allow_private: tuple[str, ...] = setting((), _private)
    max_size: int = setting(20_000_000, parse_size)
    # on disk beside the store, least recently used out first
    cache_size: int = setting(1_000_000_000, parse_size)
    # None: a current desktop browser's (some image hosts refuse anything else)
    user_agent: str | None = setting(None, _str)
    # fetching an origin image: to connect, and in all (body included)
    connect_timeout: float = setting(5.0, parse_duration)
    timeout: float = setting(20.0, parse_duration)
    max_redirects: int = setting(5, _whole(0, 20))  # each hop checked again
    per_host: int = setting(4, _whole(1, 256))  # fetches at once from one origin host
    # an origin's failure (403, 404, 5xx, timeout) is answered from memory for this long
    remember_failures: float = setting(60.0, parse_duration)
    # SVG is served (with a CSP that forbids scripts) only when this is true
    svg: bool = setting(False, _bool)
    # [images.hosts]: "glob" = { referer = "none" | "origin" | URL, https = true | false }
    hosts: tuple[HostRule, ...] = setting(DEFAULT_HOST_RULES, _hosts)


def _redis_url(value: object, key: str) -> str | None:
    text = _str(value, key)
    if not re.match(r"^(rediss?|unix)://\S+$", text):
        raise ConfigError(f"{key}: expected a redis://, rediss:// or unix:// URL (value not shown)")
    return text


def redacted_url(url: str) -> str:
    """A URL without its password (``redis://user:***@host``), for logs and output."""
    scheme, sep, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    if not at:
        return url
    user = auth.partition(":")[0]
    return f"{scheme}{sep}{user + ':' if user else ''}***@{host}"


Backend = Literal["sqlite", "redis"]


@dataclass(frozen=True)
class StorageConfig:
    """Where the service keeps its state (``:memory:`` keeps nothing across restarts)."""

    path: str = setting("feedfix.db", _str)
    # "sqlite" (the file at path) or "redis" (url; several replicas can share it)
    backend: Backend = setting("sqlite", _choice(*get_args(Backend)))  # noqa: RUF009 (a str)
    # for backend = "redis": redis://[:password@]host:port/db, rediss:// for TLS
    url: str | None = setting(None, _redis_url)
    # for backend = "redis": every key starts with this (one Redis, several deployments)
    prefix: str = setting("feedfix:", _str)
    # for backend = "redis": how long a replica holds a feed's poll before another may take it
    lease: float = setting(15.0, parse_duration)
    # for backend = "redis": how often a replica compares its copies with the store's
    sync_every: float = setting(30.0, parse_duration)


@dataclass(frozen=True, kw_only=True)
class FeedSettings:
    """What each feed may set for itself; ``[poll]`` gives the defaults."""

    interval: float = setting(600.0, parse_duration)
    timeout: float = setting(30.0, parse_duration)
    connect_timeout: float = setting(10.0, parse_duration)
    max_size: int = setting(10 * 1000 * 1000, parse_size)
    user_agent: str = setting(f"feedfix/{__version__}", _str)
    headers: tuple[tuple[str, str], ...] = setting((), _headers)
    keep_entries: int = setting(100, _whole(0, 100_000))
    keep_days: float = setting(30.0, _number(0, 36500))


@dataclass(frozen=True, kw_only=True)
class PollConfig(FeedSettings):
    """``[poll]``: the feeds' defaults, plus limits that apply to the poller as a whole."""

    concurrency: int = setting(8, _whole(1, 1000))
    per_host: int = setting(2, _whole(1, 100))
    jitter: float = setting(0.1, _number(0, 0.5))
    max_backoff: float = setting(6 * 3600.0, parse_duration)
    max_redirects: int = setting(5, _whole(0, 20))
    # a redirect may lead from the feed's host inward
    allow_private_redirects: bool = setting(False, _bool)
    # where parsing and cleaning run
    cleaner: Cleaner = setting("thread", _choice(*get_args(Cleaner)))  # noqa: RUF009 (a str)


@dataclass(frozen=True, kw_only=True)
class FeedConfig(FeedSettings):
    """One upstream feed to poll and republish, with its effective settings.

    Plain frozen data (the rules as their spec, not compiled), so it hashes, compares and
    pickles: a job for the cleaning worker carries it as it is.
    """

    name: str
    url: str | None = None  # an upstream to poll over HTTP, or
    path: str | None = None  # a local file or folder of posts (absolute once parsed)
    rules: RuleSpec = field(default_factory=RuleSpec)

    @property
    def source(self) -> str:
        """Where the feed comes from, for messages and the index: its URL or its path."""
        return self.url or self.path or ""


@dataclass(frozen=True)
class Config:
    """The whole config; every part has defaults except the feeds."""

    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    poll: PollConfig = field(default_factory=PollConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    rules: RuleSpec = field(default_factory=RuleSpec)
    feeds: tuple[FeedConfig, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "storage": StorageConfig,
    "poll": PollConfig,
    "images": ImagesConfig,
}
SECTION_KEYS = {name: keys(section) for name, section in SECTIONS.items()}
FEED_KEYS = keys(FeedSettings)
FEED_OWN_KEYS = ("name", "url", "path", "rules")  # a feed's keys besides the [poll] defaults
PACKAGE_PREFIX = "feedfix:"  # path = "feedfix:examples/…": a file shipped inside the package
PACKAGE_DIR = str(PurePath(__file__).parent)  # where ``feedfix:`` paths point
_TOP_KEYS = (*SECTIONS, "rules", "feeds")


def _table(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table")
    return value


def _unknown(table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """Unknown keys are errors that name the key and list the known ones."""
    allowed = set(known)
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise ConfigError(
                f"{prefix}{key}: unknown key (known keys: {', '.join(sorted(allowed))})"
            )


def _section(
    table: Mapping[str, Any], checks: Mapping[str, Parser], where: str, also: Iterable[str] = ()
) -> dict[str, Any]:
    """Check and convert every key of a table (``also``: known keys the caller took out)."""
    _unknown(table, (*checks, *also), where)
    return {key: checks[key](value, f"{where}.{key}") for key, value in table.items()}


def _load(section: type[T], data: Mapping[str, Any], name: str) -> T:
    return section(**_section(_table(data.get(name, {}), name), keys(section), name))


def _path(value: object, key: str, base_dir: str | None) -> str:
    """A feed's ``path``, made absolute: ``feedfix:…`` inside the installed package, a
    relative one from the config file's folder (``base_dir``). Whether it exists is for the
    poller to find out: a missing file is a failing source, not a bad config."""
    text = _str(value, key).strip()
    if not text:
        raise ConfigError(f"{key}: expected a file or folder, got an empty string")
    if text.startswith(PACKAGE_PREFIX):
        inner = PurePosixPath(text[len(PACKAGE_PREFIX) :])
        if inner.is_absolute() or ".." in inner.parts:
            raise ConfigError(f"{key}: {text!r} must name a file inside the feedfix package")
        return str(PurePath(PACKAGE_DIR, *inner.parts))
    path = PurePath(text)
    if not path.is_absolute() and base_dir is not None:
        path = PurePath(base_dir) / path
    return str(path)


def _feed(
    value: object,
    index: int,
    seen: set[str],
    poll: PollConfig,
    rules: RuleSpec,
    *,
    base_dir: str | None = None,
) -> tuple[FeedConfig, list[str]]:
    where = f"feeds[{index}]"
    table = dict(_table(value, where))
    _unknown(table, (*FEED_KEYS, *FEED_OWN_KEYS), where)
    if "name" not in table:
        raise ConfigError(f"{where}.name: missing (every feed needs a name, and a url or a path)")
    name = _str(table.pop("name"), f"{where}.name")
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}.name: {name!r} must be letters, digits, '.', '_' or '-' (it becomes a URL)"
        )
    if name in seen:
        raise ConfigError(f"{where}.name: {name!r} is used by another feed")
    seen.add(name)
    if ("url" in table) == ("path" in table):
        said = "both" if "url" in table else "neither"
        raise ConfigError(
            f"{where} ({name!r}): give exactly one of url (an http(s) feed) and path "
            f"(a local file or folder of posts), not {said}"
        )
    url = _url(table.pop("url"), f"{where}.url") if "url" in table else None
    path = _path(table.pop("path"), f"{where}.path", base_dir) if "path" in table else None
    own_rules = _table(table.pop("rules", {}), f"{where}.rules")
    settings = _section(table, FEED_KEYS, where, also=FEED_OWN_KEYS)
    defaults = {key: getattr(poll, key) for key in FEED_KEYS}
    feed = FeedConfig(name=name, url=url, path=path, **{**defaults, **settings},
                      rules=RuleSpec.from_table(own_rules, f"{where}.rules", rules))  # fmt: skip
    warnings = []
    if feed.interval < SHORT_INTERVAL and feed.url is not None:
        warnings.append(
            f"{where}.interval: {feed.interval:g} s is short; polling more than once a minute "
            "burdens the upstream (and an upstream's <ttl> or Cache-Control max-age may "
            "lengthen it, up to [poll] max_backoff)"
        )
    return feed, warnings


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``FEEDFIX_SECTION__KEY=value`` overrides ``[section] key`` (value read as TOML if it can be).

    For containers: ``FEEDFIX_SERVER__PORT=8080``, ``FEEDFIX_STORAGE__PATH=/data/feedfix.db``.
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        check = SECTION_KEYS.get(section, {}).get(key)
        if check is None:
            raise ConfigError(f"environment variable {name}: no such setting [{section}] {key}")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        check(value, f"{section}.{key} (set by {name})")  # a bad value names the variable
        out.setdefault(section, {})
        if not isinstance(out[section], dict):
            raise ConfigError(f"{section}: expected a table")
        out[section][key] = value
    return out


def parse_config(
    text: str,
    source: str = "config",
    environ: Mapping[str, str] | None = None,
    base_dir: str | None = None,
) -> Config:
    """Parse and check a config file's text; ConfigError messages start with ``source``.

    ``base_dir`` is the config file's folder: a feed's relative ``path`` starts there.
    """
    try:
        data = apply_env(tomllib.loads(text), environ or {})
        return _parse(data, base_dir)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _parse(data: Mapping[str, Any], base_dir: str | None = None) -> Config:
    _unknown(data, _TOP_KEYS, "")
    poll = _load(PollConfig, data, "poll")
    rules = RuleSpec.from_table(_table(data.get("rules", {}), "rules"), "rules")
    feeds_v = data.get("feeds", [])
    if not isinstance(feeds_v, list):
        raise ConfigError("feeds: expected an array of tables ([[feeds]])")
    seen: set[str] = set()
    feeds: list[FeedConfig] = []
    warnings: list[str] = []
    for index, value in enumerate(feeds_v):
        feed, feed_warnings = _feed(value, index, seen, poll, rules, base_dir=base_dir)
        feeds.append(feed)
        warnings.extend(feed_warnings)
    if not feeds:
        warnings.append(NO_FEEDS)
    server, images = _load(ServerConfig, data, "server"), _load(ImagesConfig, data, "images")
    if images.proxy != "off" and server.base_url is None:
        raise ConfigError(
            f'server.base_url: required when [images] proxy = "{images.proxy}" '
            "(the proxied image URLs point at it)"
        )
    if images.max_size > images.cache_size:
        raise ConfigError(
            f"images.max_size: {images.max_size} bytes can't exceed images.cache_size "
            f"({images.cache_size} bytes)"
        )
    storage = _load(StorageConfig, data, "storage")
    if storage.backend == "redis" and not storage.url:
        raise ConfigError('storage.url: missing (backend = "redis" needs a redis:// URL)')
    return Config(
        server=server,
        storage=storage,
        poll=poll,
        images=images,
        rules=rules,
        feeds=tuple(feeds),
        warnings=tuple(warnings),
    )


def image_proxy(config: Config, key: str | None = None) -> ImageProxySettings | None:
    """The proxy step's settings (None when ``[images] proxy`` is off), signed with ``key``,
    else ``[images] key``; ConfigError when there is neither."""
    images = config.images
    if images.proxy == "off" or config.server.base_url is None:
        return None
    signing = key or images.key
    if signing is None:
        raise ConfigError("images.key: missing (set it, or FEEDFIX_IMAGES__KEY)")
    return ImageProxySettings(images.proxy, config.server.base_url, signing.encode(), images.hosts)


def with_image_proxy(config: Config, proxy: ImageProxySettings | None) -> Config:
    """The config with the proxy step in every rule spec (its own ``[rules]`` and each
    feed's), so that the cleaning worker, which builds rules from the spec, runs it last."""
    if proxy is None:
        return config
    feeds = tuple(replace(f, rules=replace(f.rules, images=proxy)) for f in config.feeds)
    return replace(config, rules=replace(config.rules, images=proxy), feeds=feeds)


def effective(config: Config) -> dict[str, Any]:
    """The config with every default filled in, as plain data (for ``check-config``)."""

    def plain(obj: object) -> Any:
        return dict(obj) if isinstance(obj, tuple) else obj  # headers: pairs -> table

    def section(obj: object) -> dict[str, Any]:
        return {k: plain(getattr(obj, k)) for k in keys(type(obj))}

    def rules(spec: RuleSpec) -> dict[str, dict[str, Any]]:
        """The active rules in running order, each with the options set for it."""
        options = spec.table()
        return {name: options.get(name, {}) for name in ruleset(spec).names}

    images = config.images
    shown_images = {
        **{k: getattr(images, k) for k in ("proxy", "max_size", "cache_size", "user_agent")},
        "allow_private": list(images.allow_private),
        "key": "(set)" if images.key else "(made at first start, kept in the store)",
        "old_keys": len(images.old_keys),  # keys are secrets: never printed
        "hosts": {r.pattern: _host_plain(r) for r in images.hosts},
    }

    feeds = [
        {
            "name": f.name,
            **({"url": f.url} if f.url is not None else {"path": f.path}),
            **section(f),
            "rules": rules(f.rules),
        }
        for f in config.feeds
    ]
    server = section(config.server)
    if server["admin_token"]:
        server["admin_token"] = "***"  # noqa: S105 (a mask: check-config never prints it)
    storage = section(config.storage)
    if storage["url"]:
        storage["url"] = redacted_url(storage["url"])
    return {
        "server": server,
        "storage": storage,
        "poll": section(config.poll),
        "images": shown_images,
        "rules": rules(config.rules),
        "feeds": feeds,
    }


def _host_plain(rule: HostRule) -> dict[str, Any]:
    """A host rule as ``[images.hosts]`` would write it."""
    out: dict[str, Any] = {}
    if rule.referer is not None:
        out["referer"] = rule.referer.url if rule.referer.kind == "fixed" else rule.referer.kind
    if rule.https is not None:
        out["https"] = rule.https
    return out
