"""Reading a config: TOML text and the environment in, a checked ``Config`` out.

Pure: ``parse_config`` takes the text, the file name (for messages) and an environment
mapping (for ``FEEDFIX_SECTION__KEY`` overrides); the shell reads the files and
``os.environ``. A typo is an error that names the key; unknown keys are errors.

A section key's value comes from the first of: the command line (``convert --image-proxy``),
the environment, the config file, a defaults file (``FEEDFIX_DEFAULTS``: an image's own
defaults), feedfix's default; ``Config.origins`` says which, for ``check-config`` and the
messages. A relative path starts at the folder of the file that says it (the environment's
at the current folder).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import urlsplit

from feedfix.config import checks
from feedfix.config.schema import (
    SECTIONS,
    Config,
    FeedConfig,
    FeedSettings,
    ImagesConfig,
    PollConfig,
    ServerConfig,
    StorageConfig,
)
from feedfix.core.errors import ConfigError
from feedfix.core.rules import RuleSpec

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ENV_PREFIX = "FEEDFIX_"
DEFAULTS_VARIABLE = "FEEDFIX_DEFAULTS"  # a TOML file of section keys below the config file's
DEFAULT = "default"  # the origin of a value nobody set
NO_FEEDS = "no feeds configured: add a [[feeds]] table with a name and a url or a path"
SHORT_INTERVAL = 60.0  # below this a feed still works, but the check warns: be kind upstream
T = TypeVar("T")
SECTION_KEYS = {name: checks.keys(section) for name, section in SECTIONS.items()}
FEED_KEYS = checks.keys(FeedSettings)
# a feed's keys besides the [poll] defaults
FEED_OWN_KEYS = ("name", "url", "path", "rules", "title", "link", "id", "permalink")
PACKAGE_PREFIX, PACKAGE_DIR = checks.PACKAGE_PREFIX, checks.PACKAGE_DIR
_TOP_KEYS = (*SECTIONS, "rules", "feeds")


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
    table: Mapping[str, Any],
    known: Mapping[str, checks.Parser],
    where: str,
    also: Iterable[str] = (),
) -> dict[str, Any]:
    """Check and convert every key of a table (``also``: known keys the caller took out)."""
    _unknown(table, (*known, *also), where)
    return {key: known[key](value, f"{where}.{key}") for key, value in table.items()}


def _load(section: type[T], data: Mapping[str, Any], name: str) -> T:
    return section(**_section(checks.table(data.get(name, {}), name), checks.keys(section), name))


def _path(value: object, key: str, base_dir: str | None) -> str:
    """A feed's ``path``, made absolute: ``feedfix:…`` inside the installed package, a
    relative one from the config file's folder (``base_dir``). Whether it exists is for the
    poller to find out: a missing file is a failing source, not a bad config."""
    text = checks.string(value, key).strip()
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
    table = dict(checks.table(value, where))
    _unknown(table, (*FEED_KEYS, *FEED_OWN_KEYS), where)
    if "name" not in table:
        raise ConfigError(f"{where}.name: missing (every feed needs a name, and a url or a path)")
    name = checks.string(table.pop("name"), f"{where}.name")
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
    url = checks.http_url(table.pop("url"), f"{where}.url") if "url" in table else None
    path = _path(table.pop("path"), f"{where}.path", base_dir) if "path" in table else None
    own_rules = checks.table(table.pop("rules", {}), f"{where}.rules")
    own = _own_metadata(table, where, name, is_path=path is not None)
    settings = _section(table, FEED_KEYS, where, also=FEED_OWN_KEYS)
    defaults = {key: getattr(poll, key) for key in FEED_KEYS}
    feed = FeedConfig(
        name=name,
        url=url,
        path=path,
        **{**defaults, **settings},
        rules=RuleSpec.from_table(own_rules, f"{where}.rules", rules),
        **own,
    )
    warnings = []
    if feed.interval < SHORT_INTERVAL and feed.url is not None:
        warnings.append(
            f"{where}.interval: {feed.interval:g} s is short; polling more than once a minute "
            "burdens the upstream (and an upstream's <ttl> or Cache-Control max-age may "
            "lengthen it, up to [poll] max_backoff)"
        )
    return feed, warnings


def _own_metadata(table: dict[str, Any], where: str, name: str, *, is_path: bool) -> dict[str, Any]:
    """A feed's ``title``, ``link`` (its site), ``id`` and, for a folder of posts,
    ``permalink`` (the pattern of its post URLs below ``link``)."""
    own: dict[str, Any] = {}
    for key, check in (("title", checks.string), ("link", checks.http_url), ("id", checks.string)):
        if key in table:
            own[key] = check(table.pop(key), f"{where}.{key}").strip() or None
    if "permalink" in table:
        if not is_path:
            raise ConfigError(
                f"{where}.permalink: only for a path feed ({name!r} is a url feed: its entries "
                "have the upstream's links)"
            )
        own["permalink"] = checks.permalink(table.pop("permalink"), f"{where}.permalink")
    return own


@dataclass(frozen=True)
class Layer:
    """One source of section keys: ``{section: {key: value}}``, what it is called in
    ``Config.origins`` (``"file: c.toml"``; a function of the section and key when each key
    has its own name, as environment variables do), and where its relative paths start."""

    data: Mapping[str, Mapping[str, Any]]
    origin: str | Callable[[str, str], str]
    base_dir: str | None = None
    where: str = ""  # added to an error's key, e.g. " (set by --image-proxy)"

    def origin_of(self, section: str, key: str) -> str:
        """Where this layer's ``[section] key`` comes from, in words."""
        return self.origin if isinstance(self.origin, str) else self.origin(section, key)


def _variable(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def env_layer(environ: Mapping[str, str], cwd: str | None = None) -> Layer:
    """``FEEDFIX_SECTION__KEY=value`` sets ``[section] key`` (value read as TOML if it can be).

    For containers: ``FEEDFIX_SERVER__PORT=8080``, ``FEEDFIX_STORAGE__PATH=/data/feedfix.db``.
    A bad name or value is an error that names the variable.
    """
    data: dict[str, dict[str, Any]] = {}
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
        data.setdefault(section, {})[key] = value
    return Layer(data, lambda section, key: f"environment: {_variable(section, key)}", cwd)


def defaults_layer(text: str, path: str, base_dir: str | None = None) -> Layer:
    """A defaults file (``FEEDFIX_DEFAULTS``): section keys that a config file overrides, as
    an image's own settings should be (the listening address, the store in its volume)."""
    where = f" (in {path}, named by {DEFAULTS_VARIABLE})"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} ({DEFAULTS_VARIABLE}): not valid TOML: {exc}") from exc
    try:
        _unknown(data, SECTIONS, "")
    except ConfigError as exc:
        raise ConfigError(f"{path} ({DEFAULTS_VARIABLE}): {exc}") from exc
    return Layer(data, f"default: {DEFAULTS_VARIABLE}={path}", base_dir, where)


def file_layer(data: Mapping[str, Any], source: str, base_dir: str | None) -> Layer:
    """The config file's own section keys."""
    sections = {name: checks.table(data[name], name) for name in SECTIONS if name in data}
    return Layer(sections, f"file: {source}", base_dir)


def _path_value(value: object, key: str, base_dir: str | None) -> object:
    """A relative file path made absolute from ``base_dir`` (``:memory:`` stays itself)."""
    text = checks.file_path(value, key)
    if text == ":memory:" or base_dir is None or PurePath(text).is_absolute():
        return text
    return str(PurePath(base_dir) / text)


def merge_layers(
    data: Mapping[str, Any], layers: Sequence[Layer]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``data`` with each section's keys taken from ``layers`` (lowest first, a later one
    wins), and the origin of every section key (``DEFAULT`` for the ones nobody set)."""
    out = dict(data)
    origins = {f"{name}.{key}": DEFAULT for name, known in SECTION_KEYS.items() for key in known}
    for name, known in SECTION_KEYS.items():
        table: dict[str, Any] = {}
        for layer in layers:
            given = checks.table(layer.data.get(name, {}), f"{name}{layer.where}")
            for key, value in given.items():
                label = f"{name}.{key}{layer.where}"
                if key not in known and layer.where:
                    raise ConfigError(f"{label}: unknown key (known keys: {', '.join(known)})")
                if known.get(key) is checks.file_path:
                    value = _path_value(value, label, layer.base_dir)  # noqa: PLW2901
                elif key in known and layer.where:
                    known[key](value, label)  # a bad value names where it was set
                table[key] = value
                origins[f"{name}.{key}"] = layer.origin_of(name, key)
        if table or name in out:
            out[name] = table
    return out, origins


def parse_config(
    text: str,
    source: str = "config",
    environ: Mapping[str, str] | None = None,
    base_dir: str | None = None,
    *,
    defaults: Layer | None = None,
    flags: Layer | None = None,
    cwd: str | None = None,
) -> Config:
    """Parse and check a config file's text; ConfigError messages start with ``source``.

    ``base_dir`` is the config file's folder: its relative paths (a feed's ``path``,
    ``[storage] path``) start there. ``defaults`` (a defaults file) sits below the file, the
    environment above it, ``flags`` (options of the command line) above everything; a
    relative path from the environment starts at ``cwd``.
    """
    try:
        data = tomllib.loads(text)
        layers = [
            *([defaults] if defaults else []),
            file_layer(data, source, base_dir),
            env_layer(environ or {}, cwd),
            *([flags] if flags else []),
        ]
        merged, origins = merge_layers(data, layers)
        return replace(_parse(merged, base_dir), origins=origins)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _parse(data: Mapping[str, Any], base_dir: str | None = None) -> Config:
    _unknown(data, _TOP_KEYS, "")
    poll = _load(PollConfig, data, "poll")
    rules = RuleSpec.from_table(checks.table(data.get("rules", {}), "rules"), "rules")
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
    port = urlsplit(server.base_url).port if server.base_url else None
    if port not in (None, 80, 443):
        warnings.append(
            f"server.base_url: {server.base_url} is on port {port}: some readers refuse feed "
            "URLs off ports 80 and 443 (tt-rss) or drop the port from image URLs; serve it "
            'behind a reverse proxy on 80/443 (README "Readers")'
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
