"""Sizes as people write them (``50MB``, ``512KiB``, ``1048576``), for config and command line.

Its own small module so that ``feedfix convert --max-size`` does not import the whole config
schema (11 ms of every run).
"""

from __future__ import annotations

import re

from feedfix.core.errors import ConfigError

DEFAULT_MAX_SIZE = 50 * 1000 * 1000  # the largest input a one-shot command reads (--max-size)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


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
