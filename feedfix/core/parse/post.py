"""Hexo/Jekyll posts: YAML front matter between ``---`` lines, then an HTML or Markdown body.

Posts are recognised by content, not by extension: generators wrote them as ``.md``, ``.txt`` or
``.markdown`` alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, tzinfo
from pathlib import PurePosixPath

from feedfix.core.errors import InputError
from feedfix.core.ids import digest
from feedfix.core.model import Category, Entry, Link, Media, Person
from feedfix.core.parse.dates import parse_date

PERMALINK_PLACEHOLDERS = (
    "year", "month", "day", "i_month", "i_day", "hour", "minute", "second", "title", "name",
)  # fmt: skip
"""Hexo's permalink placeholders that a posts feed's entry links can be made from."""
_FRONT_MATTER = re.compile(
    r"\A\ufeff?(?:[ \t]*\r?\n)*---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)",
    re.S | re.M,
)
MAX_FRONT_MATTER = 256 * 1024
MAX_LIST_ITEMS = 200
IMAGE_KEYS = ("headimg", "thumbnail", "cover", "banner", "image", "featured_image")
LINK_KEYS = ("permalink", "link", "url", "canonical_url")


def looks_like_post(text: str) -> bool:
    """True when the text opens (after blank lines) with a front-matter block."""
    return _FRONT_MATTER.match(text) is not None


def _strings(value: object, limit: int = MAX_LIST_ITEMS) -> list[str]:
    """Flatten a front-matter value (a string, a list, Hexo's nested category lists)."""
    out: list[str] = []
    stack: list[object] = [value]
    while stack and len(out) < limit:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(reversed(item[:limit]))
        elif isinstance(item, str | int | float) and not isinstance(item, bool):
            text = str(item).strip()
            if text:
                out.append(text)
    return out


def _authors(value: object) -> tuple[Person, ...]:
    if isinstance(value, dict):
        name = value.get("name") or value.get("nick") or ""
        email = value.get("email")
        uri = value.get("link") or value.get("url")
        if isinstance(name, str) and name.strip():
            return (
                Person(
                    name=name.strip(),
                    email=email if isinstance(email, str) else None,
                    uri=uri if isinstance(uri, str) else None,
                ),
            )
        return ()
    return tuple(Person(name=name) for name in _strings(value))


def _markdown(body: str) -> str:
    from markdown_it import MarkdownIt  # noqa: PLC0415 - only Markdown bodies need it

    return str(MarkdownIt("commonmark", {"html": True}).render(body))


def body_html(body: str) -> str:
    """The post body as HTML: HTML bodies verbatim, Markdown rendered as Hexo would."""
    stripped = body.strip()
    if not stripped or stripped.startswith("<"):
        return stripped
    return _markdown(stripped).strip()


def parse_post(text: str, name: str, tz: tzinfo) -> Entry:
    """One post as an entry; raises InputError naming the problem."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise InputError("not a post: no front matter between '---' lines")
    raw = match.group(1)
    if len(raw) > MAX_FRONT_MATTER:
        raise InputError(f"front matter is over {MAX_FRONT_MATTER // 1024} KB")
    import yaml  # noqa: PLC0415 (PyYAML costs 11 ms to import; only posts need it)

    try:
        meta = yaml.safe_load(raw) if raw.strip() else {}
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"front matter is not valid YAML: {problem}") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise InputError("front matter is not a mapping of keys to values")
    title = _strings(meta.get("title"))
    published = parse_date(meta.get("date"), tz)
    updated = parse_date(meta.get("updated") or meta.get("lastmod"), tz)
    if meta.get("date") not in (None, "") and published is None:
        raise InputError(f"front matter date {str(meta.get('date'))[:60]!r} is not a date")
    links = [s for key in LINK_KEYS for s in _strings(meta.get(key), 1)]
    images: list[str] = []
    for key in IMAGE_KEYS:
        images.extend(u for u in _strings(meta.get(key), 5) if u not in images)
    categories = [Category(term=c) for c in _strings(meta.get("categories"))]
    categories += [Category(term=t) for t in _strings(meta.get("tags"))]  # no IRI for "tag"
    content = body_html(text[match.end() :])
    summary = _strings(meta.get("description") or meta.get("excerpt"), 1)
    entry_id = next(iter(_strings(meta.get("id"), 1)), None) or (links[0] if links else None)
    if entry_id is None:
        entry_id = stable_post_id(name, title[0] if title else None, published, content)
    langs = _strings(meta.get("lang") or meta.get("language"), 1)
    return Entry(
        id=entry_id,
        title=title[0] if title else None,
        links=(Link(href=links[0]),) if links else (),
        content=content or None,
        summary=summary[0] if summary else None,
        authors=_authors(meta.get("author") or meta.get("authors")),
        categories=tuple(categories),
        published=published,
        updated=updated or published,
        media=tuple(Media(kind="thumbnail", url=url) for url in images),
        lang=langs[0] if langs else None,
    )


def stable_post_id(name: str, title: str | None, date: datetime | None, content: str) -> str:
    """An id from what names the post (its file's stem, title and date), never from the clock.

    The body counts only when the post has neither title nor date: an id made from the body
    would change when a typo is fixed or ``fix-posts`` mends a URL, and readers would show
    the post again as new. The stem keeps two posts with the same title and date apart.
    """
    stem = PurePosixPath(name.replace("\\", "/")).stem
    if title is None and date is None:
        return "urn:feedfix:post:" + digest(stem, content[:4096])
    return "urn:feedfix:post:" + digest(stem, title, date.isoformat() if date else "")


def newest_first(entries: Iterable[Entry]) -> list[Entry]:
    """Posts ordered newest first; undated last; ties broken by title then id for stability."""
    return sorted(
        entries,
        key=lambda e: (
            -(e.date.timestamp() if e.date else float("-inf")),
            e.title or "",
            e.id or "",
        ),
    )
