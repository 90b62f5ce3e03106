"""Users' regular expressions, run in time linear in the text they search.

A pattern a user writes in ``[rules.filter]`` runs over every entry of every poll, so it
must not be able to take exponential time over an upstream's text: with Python's ``re``,
``(a+)+$`` over a title of thirty ``a`` and a ``!`` runs for minutes, holding the GIL, and
serving stops meanwhile. Such patterns are compiled with RE2 (the ``google-re2`` package),
whose automata run in time linear in the text whatever the pattern. What RE2 cannot run so
(backreferences, look-around, possessive quantifiers) is refused when the config is read,
with a message that says why. Matching ignores case, as the filter rule always did; ``\\d``,
``\\w`` and ``\\b`` are ASCII in RE2 (write ``[0-9０-９]`` or a literal for other scripts).
"""

from __future__ import annotations

import re
from typing import Protocol


class UserPattern(Protocol):
    """What a compiled user pattern offers (RE2's ``_Regexp`` and ``re.Pattern`` alike)."""

    def search(self, text: str) -> object | None:
        """The first match in ``text``, or None."""


class UnsupportedPattern(re.error):
    """A pattern RE2 refuses: malformed, or a construct that needs backtracking."""


def compile_user_pattern(text: str) -> UserPattern:
    """``text`` compiled for searching in linear time, ignoring case.

    Raises ``UnsupportedPattern`` (a ``re.error``) naming what RE2 refused."""
    import re2  # noqa: PLC0415 (8 ms, paid only by a config that has a pattern)

    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the error is ours to word, not a log line on stderr
    try:
        return re2.compile(text, options)  # type: ignore[no-any-return]
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "not a pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise UnsupportedPattern(
            f"{reason} (patterns run with RE2, in time linear in the text: no "
            "backreferences, look-around or possessive quantifiers)"
        ) from None


__all__ = ["UnsupportedPattern", "UserPattern", "compile_user_pattern"]
