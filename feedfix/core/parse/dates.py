"""Date parsing: RFC 822 and ISO 8601 directly, feedparser's many handlers for the rest.

Every result is an aware datetime in UTC; a date without a zone takes the caller's default zone.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

# RFC 822 dates are read by the parser email.utils.parsedate_to_datetime calls, in the module
# that holds it: importing email.utils also loads socket, random and email.charset, 5 ms of
# a start (farm-bench, 40 runs each) for nothing a date needs.
from email._parseaddr import _parsedate_tz  # type: ignore[import-not-found]  # no stub
from typing import Any

_SPACE = re.compile(r"\s+")
_YEAR_RANGE = range(1900, 10000)


def parse_date(value: object, default_tz: tzinfo = UTC) -> datetime | None:
    """Parse a feed or front-matter date; ``None`` when it is missing or unreadable."""
    if isinstance(value, datetime):
        return _to_utc(value, default_tz)
    if isinstance(value, date):  # YAML reads `date: 2024-01-01` as a date: midnight that day
        return _to_utc(datetime.combine(value, time()), default_tz)
    if not isinstance(value, str):
        return None
    text = _SPACE.sub(" ", value).strip()
    if not text:
        return None
    for parser in (_rfc822, _iso8601, _cjk):
        parsed = parser(text)
        if parsed is not None:
            return _to_utc(parsed, default_tz)
    if impossible_date(text):
        return None  # feedparser would roll 2020-13-45 over into 2021: a day nobody wrote
    return _feedparser_fallback(text)


_NUMERIC = re.compile(
    r"(\d{4})-?(\d{2})(?:-?(\d{2}))?(?:[T ](\d{2}):?(\d{2})(?::?(\d{2}))?)?(?![\d:-])"
)


def impossible_date(value: str) -> bool:
    """True for an ISO 8601-shaped date whose fields name no real day or time
    (``2020-13-45``, ``2021-02-30``, ``25:00``): reading it as some other day would be a guess."""
    match = _NUMERIC.match(value.strip())
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    if not 1 <= month <= 12:
        return True
    if match.group(3) and not 1 <= day <= calendar.monthrange(year, month)[1]:
        return True
    if hour == 24:
        return minute != 0 or second != 0  # 24:00 is the end of the day, nothing later
    return hour > 24 or minute > 59 or second > 60


def _to_utc(value: datetime, default_tz: tzinfo) -> datetime | None:
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    try:
        result = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return result if result.year in _YEAR_RANGE else None


def _rfc822(text: str) -> datetime | None:
    if not text[:1].isalpha() and not re.match(r"\d{1,2} [A-Za-z]{3} ", text):
        return None
    try:
        found: list[Any] | None = _parsedate_tz(text)  # as parsedate_to_datetime does
        if found is None:
            return None
        year, month, day, hour, minute, second = found[:6]
        offset = found[9]  # None for no zone, or -0000 ("zone unknown"): a naive time
        zone = None if offset is None else timezone(timedelta(seconds=offset))
        parsed = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None and not re.search(r"-0000\s*$", text) and _has_zone(text):
        return None  # a zone we could not read: let the fallback try
    return parsed


def _has_zone(text: str) -> bool:
    return bool(re.search(r"\d{2}:\d{2}(:\d{2})?\s+\S+$", text))


def _iso8601(text: str) -> datetime | None:
    candidate = text.replace(" ", "T", 1) if re.match(r"\d{4}-\d{2}-\d{2} \d", text) else text
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        return None


_CJK = re.compile(
    r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日(?:\s*(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?)?$"
)


def _cjk(text: str) -> datetime | None:
    """``2022年8月10日 08:30``, common in Chinese feeds and posts."""
    match = _CJK.match(text)
    if not match:
        return None
    parts = [int(g) if g else 0 for g in match.groups()]
    try:
        return datetime(*parts)  # type: ignore[arg-type]
    except ValueError:
        return None


def _feedparser_fallback(text: str) -> datetime | None:
    from feedparser.datetimes import _parse_date  # noqa: PLC0415 - rare path, slow import

    parsed = _parse_date(text)
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None
