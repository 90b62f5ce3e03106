"""The rule sets fix-posts' tests mend with, and mending a text (tests/core/test_mend*.py)."""

from __future__ import annotations

from feedfix.core.mend import BodyRules, mend
from feedfix.core.proxies import DEFAULT_TEMPLATES, Unwrapper
from feedfix.core.rules.junk import DropEmptyJunk

UNWRAPPER = Unwrapper.from_templates(DEFAULT_TEMPLATES)
UNWRAP_ONLY = BodyRules(unwrapper=UNWRAPPER)
# A junk selector that never matches sends bodies down the full-tokenizer path.
FULL_PATH = BodyRules(unwrapper=UNWRAPPER, junk=DropEmptyJunk(selectors=["#never-there"]))


def mend_text(text: str, rules: BodyRules = UNWRAP_ONLY) -> str:
    """``text`` mended (a post if it opens with front matter, else an HTML page)."""
    return mend(text.encode("utf-8"), rules, html_file=not text.startswith("---")).after
