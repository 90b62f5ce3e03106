"""Each config value's check: what a TOML value may be, turned into the value feedfix uses.

A check takes the value and the key (for the message) and returns the checked value, or
raises a ``ConfigError`` that names the key. ``setting`` attaches a default and a check to a
schema field, so the keys a section accepts are read off its dataclass.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import field, fields
from pathlib import PurePath
from typing import Any, TypeVar

from feedfix.core.errors import ConfigError
from feedfix.core.parse.post import PERMALINK_PLACEHOLDERS
from feedfix.core.rules.proxy_images import HostRule, host_rules

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)
_SECONDS = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
MIN_KEY = 32  # characters of an [images] key at least (a guessable key forges image URLs)
Parser = Callable[[object, str], Any]  # (value, key for messages) -> the checked value
PACKAGE_PREFIX = "feedfix:"  # path = "feedfix:examples/…": a file shipped inside the package
PACKAGE_DIR = str(PurePath(__file__).parents[1])  # where ``feedfix:`` paths point
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


def whole(low: int, high: int) -> Parser:
    def check(value: object, key: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ConfigError(f"{key}: expected a whole number from {low} to {high}, got {value!r}")
        return value

    return check


def string(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def shown_path(path: str) -> str:
    """A path as a person reads it: a file inside the package as ``feedfix:examples/…`` (as
    the config names it), any other as it is."""
    inside = PurePath(path)
    if inside.is_relative_to(PACKAGE_DIR):
        return PACKAGE_PREFIX + inside.relative_to(PACKAGE_DIR).as_posix()
    return path


def file_path(value: object, key: str) -> str:
    """A file's path: a string; a relative one starts at the folder of the file that says it
    (``load.merge_layers`` finds path keys by this check)."""
    text = string(value, key).strip()
    if not text:
        raise ConfigError(f"{key}: expected a file's path, got an empty string")
    return text


_PLACEHOLDER = re.compile(r":([a-z_]+)")


def permalink(value: object, key: str) -> str:
    """A pattern of a blog's post URLs below its home, in Hexo's placeholders."""
    text = string(value, key).strip()
    unknown = [p for p in _PLACEHOLDER.findall(text) if p not in PERMALINK_PLACEHOLDERS]
    if not text or unknown:
        known = " ".join(f":{p}" for p in PERMALINK_PLACEHOLDERS)
        raise ConfigError(
            f'{key}: expected a pattern such as ":year/:month/:day/:title/" made of {known}'
            + (f" (not :{unknown[0]})" if unknown else "")
        )
    return text


def boolean(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def choice(*allowed: str) -> Parser:
    def check(value: object, key: str) -> str:
        if value not in allowed:
            names = ", ".join(map(repr, allowed))
            raise ConfigError(f"{key}: expected one of {names}, got {value!r}")
        return str(value)

    return check


def number(low: float, high: float) -> Parser:
    def check(value: object, key: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ConfigError(f"{key}: expected a number from {low:g} to {high:g}, got {value!r}")
        return float(value)

    return check


def headers(value: object, key: str) -> tuple[tuple[str, str], ...]:
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
    return http_url(value, key)


def http_url(value: object, key: str) -> str:
    text = string(value, key)
    if not re.match(r"^https?://[^/\s?#]+[^\s]*$", text):
        raise ConfigError(f"{key}: expected an http(s) URL, got {text!r}")
    return text


def signing_key(value: object, key: str) -> str:
    text = string(value, key)
    if len(text) < MIN_KEY:
        raise ConfigError(
            f"{key}: too short ({len(text)} characters, at least {MIN_KEY}; make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`)'
        )
    return text


def signing_keys(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{key}: expected a list of keys, got {value!r}")
    return tuple(signing_key(item, f"{key}[{i}]") for i, item in enumerate(value))


_PORT = re.compile(r"[0-9]{1,5}")
_HOST_NAME = re.compile(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?")


def split_port(entry: str) -> tuple[str, int | None]:
    """An ``allow_private`` entry's host part (an address, a network or a host name) and the
    port it names, if any: ``127.0.0.1:9000``, ``[::1]:9000``, ``host.example:9000``. A bare
    IPv6 address or network (``::1``, ``fd00::/8``) names none. ValueError when malformed."""
    text = entry.strip()
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(entry)
        return inside, _port(rest[1:], entry) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port, entry)
    return text, None


def _port(text: str, entry: str) -> int:
    if not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise ValueError(entry)
    return int(text)


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def private_hosts(value: object, key: str) -> tuple[str, ...]:
    """Hosts (exact or ``*.`` globs) and IP addresses or networks the image proxy may reach,
    each with a port (``127.0.0.1:9000``) to allow only that port."""
    if not isinstance(value, list | tuple):
        raise ConfigError(f'{key}: expected a list such as ["127.0.0.1"], got {value!r}')
    out = []
    for i, item in enumerate(value):
        text = string(item, f"{key}[{i}]").strip()
        try:
            host, _ = split_port(text)
        except ValueError:
            host = ""  # a malformed port or bracket: refused below
        if not _is_network(host) and not _HOST_NAME.fullmatch(host):
            raise ConfigError(
                f"{key}[{i}]: expected a host name, an IP address or a network, got {item!r}"
            )
        out.append(text)
    return tuple(out)


def table(value: object, key: str) -> dict[str, Any]:
    """A TOML table."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table")
    return value


def host_table(value: object, key: str) -> tuple[HostRule, ...]:
    """``[images.hosts]``: the configured host rules first, then the defaults they don't name."""
    rules = table(value, key)
    for pattern, options in rules.items():
        table(options, f"{key}.{pattern}")
    try:
        return host_rules(rules)
    except ValueError as exc:  # its message starts with the pattern
        raise ConfigError(f"{key}.{exc}") from exc


def setting(default: T, check: Parser) -> T:
    """A config key: its default and the check that turns a TOML value into it."""
    return field(default=default, metadata={"check": check})


def keys(section: type) -> dict[str, Parser]:
    """The keys a section's dataclass accepts, each with its check."""
    return {f.name: f.metadata["check"] for f in fields(section) if "check" in f.metadata}


def redis_url(value: object, key: str) -> str | None:
    text = string(value, key)
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
