"""The image URLs of a mended post, as spans of its text, and the edits that point them home.

``--save-images`` fetches and rewrites these and nothing else: front matter values that are
one URL under an image key (``headimg``, ``thumbnail``, ``cover``… or any key whose URL ends
like an image file); ``<img>`` ``src``, ``srcset`` and the lazy-loading ``data-*`` sources;
a ``<picture>``'s ``<source>``; ``<video poster>``; Markdown ``![](…)`` and the reference
definitions that ``![][id]`` uses (not inside fenced code). Links (``<a href>``, ``[](…)``)
are left alone: they lead somewhere, they are not shown.

Found with the span engine's own tokenizers (core.mend), on the text after mending, so an
unwrapped URL is seen as the origin URL it now is.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from feedfix.core.mend import Edit, kind_of
from feedfix.core.mend.edits import splice
from feedfix.core.mend.front_matter import locate_front_matter, segments
from feedfix.core.mend.markup import Tag, tags, text_regions
from feedfix.core.rules.fix_lazy_images import LAZY_SOURCES
from feedfix.core.rules.unwrap_proxies import TEXT_URL
from feedfix.files.image_names import IMAGE_SUFFIXES, fetch_url, suffix_of, url_path

SAVE = "save-images"  # the rule name its edits and counts go under
# Front matter keys whose URL is an image, compared without case, "-" or "_".
IMAGE_KEYS = frozenset(
    {
        "headimg", "headerimg", "headerimage", "thumbnail", "thumb", "cover", "coverimg",
        "coverimage", "image", "images", "img", "banner", "bannerimg", "photo", "photos",
        "gallery", "topimg", "featuredimage", "featureimage", "feature", "ogimage",
        "background", "bgimg", "poster",
    }
)  # fmt: skip
_IMG_URLS: tuple[str, ...] = ("src", *LAZY_SOURCES)
_SRCSETS: tuple[str, ...] = ("srcset", "data-srcset")
_KEY_HEAD = re.compile(
    r"[ \t]*(?P<dashes>(?:-[ \t]+)*)"
    r"(?:(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"|(?P<plain>[^#'\"\s\[\]{}][^\r\n]*?))"
    r"[ \t]*:[ \t]*)?['\"]?\Z"
)
_MD_IMAGE = re.compile(r"!\[(?:[^\[\]\\\n]|\\.|\[[^\[\]\n]*\])*\]\([ \t]*(?P<angle><)?")
_MD_IMAGE_REF = re.compile(
    r"!\[(?P<alt>(?:[^\[\]\\\n]|\\.)*)\](?:\[(?P<label>(?:[^\[\]\\\n]|\\.)*)\])?(?!\()"
)
_MD_DEFINITION = re.compile(
    r"^[ ]{0,3}\[(?P<label>(?:[^\[\]\\\n]|\\.)+)\]:[ \t]*\n?[ \t]*(?P<angle><)?", re.M
)
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})", re.M)
_ENDS_PLAIN = frozenset(" \t\r\n)\"'")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image URL at ``text[start:end]`` (``url`` is its value, entities decoded)."""

    start: int
    end: int
    url: str


def image_refs(text: str, *, html_file: bool, prefix: str) -> list[ImageRef]:
    """The images of a post or HTML page to bring home, in order (those already under
    ``prefix`` and those that are not absolute http(s) URLs left out)."""
    kind = kind_of(text, html_file=html_file)
    if kind is None:
        return []
    refs: list[ImageRef] = []
    body = 0
    front = locate_front_matter(text) if kind == "post" else None
    if front is not None:
        refs.extend(_front_matter_refs(text, front[0], front[1]))
        body = front[2]
    tokens = list(tags(text, body, len(text)))
    if kind == "post":  # Markdown: images in its syntax too, and none inside fenced code
        fences = _fenced_code(text, body)

        def outside_code(ref: ImageRef) -> bool:
            return bisect_right(fences, ref.start) % 2 == 0

        markdown = _markdown_refs(text, tokens, body, outside_code)
        refs.extend(filter(outside_code, [*_tag_refs(text, tokens), *markdown]))
    else:
        refs.extend(_tag_refs(text, tokens))
    home = prefix + "/"
    return sorted(
        (r for r in refs if fetch_url(r.url) is not None and not r.url.startswith(home)),
        key=lambda r: r.start,
    )


def _front_matter_refs(text: str, start: int, end: int) -> Iterator[ImageRef]:
    """Whole scalar values that are one image URL; a list's items take the list's key."""
    list_key = ""
    for segment in segments(text, start, end):
        if not segment.whole:
            continue
        line = text.rfind("\n", 0, segment.start) + 1
        head = _KEY_HEAD.match(text, line, segment.start)
        if head is None:
            continue
        key = head.group("single") or head.group("double") or head.group("plain") or ""
        value = text[segment.start : segment.end]
        if key and not value:
            list_key = key
            continue
        if key and not head.group("dashes"):
            list_key = ""
        key = key or (list_key if head.group("dashes") else "")
        if segment.style == "single":
            value = value.replace("''", "'")
        elif segment.style == "double" and "\\" in value:
            continue
        if value != value.strip() or fetch_url(value) is None:
            continue
        normal = key.lower().replace("-", "").replace("_", "")
        if normal in IMAGE_KEYS or _looks_like_image(value):
            yield ImageRef(segment.start, segment.end, value)


def _looks_like_image(url: str) -> bool:
    return suffix_of(urlsplit(url).path) in IMAGE_SUFFIXES


def _tag_refs(text: str, tokens: list[Tag]) -> Iterator[ImageRef]:
    pictures = 0
    for tag in tokens:
        if tag.name == "picture":
            pictures = pictures + 1 if tag.kind == "start" else max(0, pictures - 1)
            continue
        if tag.kind != "start":
            continue
        if tag.name == "img":
            singles, multiples = _IMG_URLS, _SRCSETS
        elif tag.name == "source" and pictures:
            singles, multiples = ("src",), ("srcset",)
        elif tag.name == "video":
            singles, multiples = ("poster",), ()
        else:
            continue
        for attr in tag.attributes(text):
            if attr.quote == "none":
                continue
            if attr.name in singles:
                yield ImageRef(attr.value_start, attr.value_end, attr.value.strip())
            elif attr.name in multiples:
                for s, e in srcset_urls(attr.raw):
                    raw = attr.raw[s:e]
                    url = html.unescape(raw) if "&" in raw else raw
                    yield ImageRef(attr.value_start + s, attr.value_start + e, url)


def srcset_urls(value: str) -> Iterator[tuple[int, int]]:
    """The spans of a srcset's URLs, as HTML reads them: a URL runs to the next space (its
    trailing commas end the candidate), its descriptors to the next comma."""
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        j = i
        while j < n and not value[j].isspace():
            j += 1
        end = j
        while end > i and value[end - 1] == ",":
            end -= 1
        if end > i:
            yield i, end
        if end < j:
            i = j
            continue
        comma = value.find(",", j)
        i = n if comma < 0 else comma + 1


def _markdown_refs(
    text: str, tokens: list[Tag], body: int, outside_code: Callable[[ImageRef], bool]
) -> Iterator[ImageRef]:
    """``![](…)`` and the definitions of the labels ``![][label]`` uses (outside code)."""
    labels: set[str] = set()
    regions = list(text_regions(tokens, body, len(text)))
    for r0, r1 in regions:
        for match in _MD_IMAGE.finditer(text, r0, r1):
            ref = _url_at(text, match.end(), r1, angle=match.group("angle") is not None)
            if ref is not None:
                yield ref
        for match in _MD_IMAGE_REF.finditer(text, r0, r1):
            if outside_code(ImageRef(match.start(), match.end(), "")):
                labels.add(_label(match.group("label") or match.group("alt")))
    if not labels:
        return
    for r0, r1 in regions:
        for match in _MD_DEFINITION.finditer(text, r0, r1):
            if _label(match.group("label")) in labels:
                ref = _url_at(text, match.end(), r1, angle=match.group("angle") is not None)
                if ref is not None:
                    yield ref


def _url_at(text: str, start: int, limit: int, *, angle: bool) -> ImageRef | None:
    """The URL starting at ``start`` if it is whole there (what follows ends it)."""
    match = TEXT_URL.match(text, start, limit)
    if match is None:
        return None
    after = text[match.end() : match.end() + 1]
    if (after != ">") if angle else (after and after not in _ENDS_PLAIN):
        return None
    return ImageRef(match.start(), match.end(), match.group(0))


def _label(label: str) -> str:
    return " ".join(label.split()).casefold()


def _fenced_code(text: str, start: int) -> list[int]:
    """Sorted bounds of the fenced code blocks: ``[open, close, open, close…]``."""
    bounds: list[int] = []
    opening: re.Match[str] | None = None
    for match in _FENCE.finditer(text, start):
        fence = match.group(1)
        if opening is None:
            opening = match
            bounds.append(match.start())
        elif fence[0] == opening.group(1)[0] and len(fence) >= len(opening.group(1)):
            bounds.append(match.end())
            opening = None
    if opening is not None:
        bounds.append(len(text))
    return bounds


def home_edits(refs: Sequence[ImageRef], home: Mapping[str, str], prefix: str) -> list[Edit]:
    """Edits pointing each ref whose URL is in ``home`` (URL to path in DIR) at PREFIX/path."""
    return [
        Edit(r.start, r.end, f"{prefix}/{url_path(home[r.url])}", SAVE)
        for r in refs
        if r.url in home
    ]


def compose(first: Sequence[Edit], second: Sequence[Edit], middle: str) -> list[Edit]:
    """Edits of the original text that do what ``first`` and then ``second`` do (``second``'s
    spans are of ``middle``, the text ``first`` made), for one diff of both.

    A ``second`` edit that touches a ``first`` edit's new text is merged with it; the others
    are moved back by the length the ``first`` edits before them changed.
    """
    spans: list[tuple[int, int, Edit]] = []  # first's edits at their place in ``middle``
    shifts: list[int] = []  # how much longer ``middle`` is than the original after each
    shift = 0
    for edit in sorted(first, key=lambda e: (e.start, e.end)):
        start = edit.start + shift
        spans.append((start, start + len(edit.new), edit))
        shift += len(edit.new) - (edit.end - edit.start)
        shifts.append(shift)
    starts, ends = [s[0] for s in spans], [s[1] for s in spans]

    def original(position: int, *, end: bool) -> int:
        """Where a ``middle`` position outside every ``first`` span was in the original: a
        group's start after the edits that end there, its end before those that start."""
        index = (bisect_left(starts, position) if end else bisect_right(ends, position)) - 1
        return position - (shifts[index] if index >= 0 else 0)

    groups: list[tuple[int, int, set[int], list[Edit]]] = []
    for edit in sorted(second, key=lambda e: (e.start, e.end)):
        near = range(bisect_left(ends, edit.start), bisect_right(starts, edit.end))
        touched = {i for i in near if _meet(*spans[i][:2], edit.start, edit.end)}
        lo = min([edit.start, *(spans[i][0] for i in touched)])
        hi = max([edit.end, *(spans[i][1] for i in touched)])
        if groups and (lo < groups[-1][1] or touched & groups[-1][2]):
            g_lo, g_hi, g_touched, g_edits = groups.pop()
            lo, hi, touched = min(lo, g_lo), max(hi, g_hi), touched | g_touched
            groups.append((lo, hi, touched, [*g_edits, edit]))
        else:
            groups.append((lo, hi, touched, [edit]))
    merged = {i for group in groups for i in group[2]}
    # (start, end, order): edits at one place keep the order they take in ``middle``
    out = [(e.start, e.end, float(i), e) for i, (_, _, e) in enumerate(spans) if i not in merged]
    for lo, hi, touched, edits in groups:
        shifted = [Edit(e.start - lo, e.end - lo, e.new, e.rule) for e in edits]
        start = min([original(lo, end=False), *(spans[i][2].start for i in touched)])
        end = max([original(hi, end=True), *(spans[i][2].end for i in touched)])
        order = min(touched) if touched else bisect_right(ends, lo) - 0.5
        new = splice(middle[lo:hi], shifted)
        out.append((start, end, order, Edit(start, end, new, edits[0].rule)))
    return [edit for *_, edit in sorted(out, key=lambda item: item[:3])]


def _meet(a0: int, a1: int, b0: int, b1: int) -> bool:
    """Whether two spans share a character, or an empty one sits inside or on the other."""
    if a0 == a1 or b0 == b1:
        return b0 <= a0 <= b1 if a0 == a1 else a0 <= b0 <= a1
    return a0 < b1 and b0 < a1
