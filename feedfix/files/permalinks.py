"""Where a blog publishes each post, so that a folder of posts links its entries to the
blog's own pages (the feed's ``link`` is the blog's home).

What is supported, Hexo's way:

- a post's own ``permalink`` (or ``link``, ``url``, ``canonical_url``) front matter: a path
  is read below the blog's home, as Hexo does (``2023/hello/`` and ``/2023/hello/`` both give
  ``HOME/2023/hello/``); a full URL stays as it is;
- else the site's pattern (the feed's ``permalink``, Hexo's ``permalink`` setting), by default
  Hexo's ``:year/:month/:day/:title/``, with ``:year :month :day :i_month :i_day :hour
  :minute :second`` from the post's date and ``:title`` (the file's path below the folder,
  without its extension, as Hexo's ``source/_posts``) or ``:name`` (the file's name alone).
  A post without a date gets no link from a pattern that needs one.

Jekyll's own patterns (``:categories``, ``:output_ext``, the date in the file name) are not
read; a Jekyll post links to its page through its ``permalink`` front matter.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

from feedfix.core.model import Entry, Link
from feedfix.core.parse.post import PERMALINK_PLACEHOLDERS

HEXO_DEFAULT = ":year/:month/:day/:title/"
_PLACEHOLDER = re.compile(
    r":(" + "|".join(sorted(PERMALINK_PLACEHOLDERS, key=len, reverse=True)) + ")"
)
_DATED = {"year", "month", "day", "i_month", "i_day", "hour", "minute", "second"}
_SAFE = "/:@!$&'()*+,;=-._~%"  # characters a path keeps as they are


def post_url(home: str, pattern: str | None, name: str, entry: Entry) -> str | None:
    """The URL of the post read from file ``name`` (relative to the folder) on the blog at
    ``home``; None when neither its front matter nor the pattern can say."""
    base = home if home.endswith("/") else home + "/"
    own = entry.link
    if own:
        if urlsplit(own).scheme:
            return own
        return base + quote(own.lstrip("/"), safe=_SAFE)
    date = entry.published or entry.updated
    path = PurePosixPath(name.replace("\\", "/"))
    values = {"title": str(path.with_suffix("")), "name": path.stem}
    if date is not None:
        values |= {
            "year": f"{date.year:04d}", "month": f"{date.month:02d}", "day": f"{date.day:02d}",
            "i_month": str(date.month), "i_day": str(date.day), "hour": f"{date.hour:02d}",
            "minute": f"{date.minute:02d}", "second": f"{date.second:02d}",
        }  # fmt: skip
    template = pattern or HEXO_DEFAULT
    if date is None and _DATED & set(_PLACEHOLDER.findall(template)):
        return None
    filled = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    return base + quote(filled.lstrip("/"), safe=_SAFE)


def with_post_url(entry: Entry, home: str, pattern: str | None, name: str) -> Entry:
    """The entry with its post URL as its alternate link (the front matter's, made absolute,
    or the pattern's); as it was when there is none."""
    url = post_url(home, pattern, name, entry)
    if url is None:
        return entry
    others = tuple(link for link in entry.links if link.rel != "alternate")
    return replace(entry, links=(Link(href=url), *others))
