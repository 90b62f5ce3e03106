"""HTML's void elements: those that never have content or an end tag.

One list for the limits' count of nesting (``limits.py``) and fix-posts' tokenizer
(``mend/markup.py``); the HTML parser's repairs (``html.py``) need only the few libxml2 does
not know as void."""

from __future__ import annotations

VOID_ELEMENTS = frozenset(
    ("area", "base", "basefont", "bgsound", "br", "col", "command", "embed", "frame", "hr",
     "img", "input", "isindex", "keygen", "link", "meta", "param", "source", "track", "wbr")
)  # fmt: skip
