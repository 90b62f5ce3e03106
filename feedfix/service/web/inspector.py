"""The inspector and the playground: entries as received and as cleaned, side by side.

Nothing here fetches anything: the playground converts only the bytes it is given, and the
inspector the entries the store kept from the last poll. The work that cleans entries runs
in the pages' worker process (``offload.py``), so serving never waits on it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from feedfix.core.entry_ids import settle_ids
from feedfix.core.errors import FeedfixError
from feedfix.core.inspect import Inspection, entry_html, inspect_entry, without
from feedfix.core.model import Entry
from feedfix.core.parse import ParseOptions, parse_document
from feedfix.core.pipeline import ConvertOptions, convert_feed, with_metadata
from feedfix.core.rules import RuleSet, RuleSpec, build_ruleset, ruleset
from feedfix.service.image_archive import STATE_WORDS
from feedfix.service.masking import mask_url, without_credentials
from feedfix.service.store import SOURCES_KEPT
from feedfix.service.web import views
from feedfix.service.web.offload import TooSlow
from feedfix.service.web.site import PLAYGROUND_MAX, SRCDOC_HEAD, WEB, error_page, render

INSPECT_SHOWN = 10  # entries of the last poll on the inspector page (and read for it)
PLAYGROUND_SHOWN = 50  # entries shown side by side in the playground
ATOM_SHOWN = 200_000  # characters of the playground's Atom shown on the page
TOO_LARGE = f"the document is larger than the {PLAYGROUND_MAX // 1000} kB the playground takes"


@dataclass(frozen=True)
class Shown:
    """One entry in the side-by-side view."""

    inspection: Inspection
    source_doc: str  # srcdoc of the sandboxed frames
    cleaned_doc: str


_TAG = re.compile(r"<[A-Za-z]")
_HANDLER = re.compile(r"([\s/\"'])(on[A-Za-z])")


def inert(markup: str) -> str:
    """The source as the rendered view shows it: every ``on…`` attribute renamed
    (``data-inert-onclick``). The sandbox already keeps them from running; renamed, they
    do not even ask to (a browser logs each handler a sandbox refuses).

    One pass: each tag, from its ``<`` to its ``>`` (or the end of the text), is renamed in
    once, and the next is looked for after it."""
    out: list[str] = []
    done = 0
    while (tag := _TAG.search(markup, done)) is not None:
        end = markup.find(">", tag.end())
        end = len(markup) if end < 0 else end
        out += (markup[done : tag.end()], _HANDLER.sub(r"\1data-inert-\2", markup[tag.end() : end]))
        done = end
    return "".join(out) + markup[done:]


def _shown(inspection: Inspection) -> Shown:
    return Shown(
        inspection,
        SRCDOC_HEAD + inert(inspection.source),
        SRCDOC_HEAD + inert(inspection.cleaned),
    )


def _shown_count(text: str | None) -> int:
    """``?show=N``: how many entries to show (and read), from 1 to ``SOURCES_KEPT``."""
    try:
        wanted = int(text) if text else INSPECT_SHOWN
    except ValueError:
        wanted = INSPECT_SHOWN
    return max(1, min(wanted, SOURCES_KEPT))


def _within(entries: list[Entry]) -> list[Entry]:
    """The first entries whose HTML adds up to at most what the playground takes (the first
    one always): ``?show=100`` must not make a page's work a hundred times a document's."""
    kept: list[Entry] = []
    total = 0
    for entry in entries:
        total += len(entry_html(entry))
        if kept and total > PLAYGROUND_MAX:
            break
        kept.append(entry)
    return kept


def chosen_rules(request: web.Request, available: RuleSet) -> tuple[RuleSet, set[str]]:
    """The rules the page's toggles leave on (all of them until the form is sent)."""
    if "toggled" not in request.query:
        return available, set()
    on = set(request.query.getall("on", []))
    off = {name for name in available.names if name not in on}
    return without(available, off), off


def inspect_entries(entries: list[Entry], rules: RuleSet, base: str | None) -> list[Shown]:
    """Every entry through the rules, one rule at a time."""
    return [_shown(inspect_entry(entry, rules, base)) for entry in entries]


def inspect_stored(
    entries: list[Entry], spec: RuleSpec, off: frozenset[str], base: str | None
) -> list[Shown]:
    """``inspect_entries`` with the feed's rules as their spec (in the pages' worker, where
    they are built: compiled rules do not travel between processes)."""
    return inspect_entries(entries, without(ruleset(spec), off), base)


async def inspector(request: web.Request) -> web.Response:
    """``GET /inspect/{name}``: the last poll's entries, as received and as cleaned."""
    site = request.app[WEB]
    name = request.match_info["name"]
    feed = site.feed(name)
    if feed is None:
        return error_page(request, 404, f"no feed named {name!r}")
    loop = asyncio.get_running_loop()
    show = _shown_count(request.query.get("show"))
    sources = _within(await loop.run_in_executor(None, site.backend.store.sources, name, show))
    available = ruleset(feed.rules)
    _, off = chosen_rules(request, available)
    try:
        base = without_credentials(feed.url) if feed.url else None  # as republished
        shown = await site.offload.run(inspect_stored, sources, feed.rules, frozenset(off), base)
    except TooSlow as exc:
        return error_page(request, 503, f"inspecting {name}'s entries {exc}; try ?show=1")
    upstream = mask_url(feed.url) if feed.url else feed.shown_source
    images = None
    if site.archive is not None:  # each entry's images, as the archive keeps them
        ids = [entry.id or "" for entry in settle_ids(sources, feed.url)[0]]
        found = await site.archive.entry_images(name, ids)
        masker = site.masker
        images = [[replace(r, url=masker.text(r.url)) for r in found.get(i, [])] for i in ids]
    return render(
        request,
        "inspect.html",
        images=images,
        state_words=STATE_WORDS,
        name=name,
        show=show,
        upstream=upstream,
        entries=shown,
        available=available.names,
        off=off,
        descriptions={n: views.described(n) for n in available.names},
    )


@dataclass(frozen=True)
class Converted:
    """What the playground made of a document."""

    atom: str
    truncated: bool
    explain: str
    entries: list[Shown]
    warnings: tuple[str, ...]


def convert_document(data: bytes, name: str, off: frozenset[str]) -> Converted:
    """Parse, clean (the default rules but ``off``) and render a pasted document, and
    inspect its first entries (in the pages' worker). Parsing is the core's: it reads no URL
    and fetches nothing."""
    rules = without(build_ruleset(), off)
    options = ConvertOptions(rules=rules, parse=ParseOptions())
    parsed = with_metadata(parse_document(data, name, options.parse), options)
    result = convert_feed(parsed, options)
    atom = result.atom.decode("utf-8")
    shown = inspect_entries(list(parsed.entries[:PLAYGROUND_SHOWN]), rules, None)
    return Converted(
        atom=atom[:ATOM_SHOWN],
        truncated=len(atom) > ATOM_SHOWN,
        explain=views.explain(result.report),
        entries=shown,
        warnings=result.warnings,
    )


def _playground(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    available = build_ruleset()
    context.setdefault("off", set())
    context.setdefault("text", "")
    context.setdefault("result", None)
    context.setdefault("error", None)
    return render(
        request,
        "playground.html",
        status=status,
        available=available.names,
        descriptions={n: views.described(n) for n in available.names},
        max_size=views.size(PLAYGROUND_MAX),
        **context,
    )


async def playground(request: web.Request) -> web.Response:
    """``GET /inspect``: the form."""
    return _playground(request)


async def playground_post(request: web.Request) -> web.Response:
    """``POST /inspect``: convert what was pasted or uploaded (never a URL: nothing is fetched)."""
    site = request.app[WEB]
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        return _playground(request, 413, error=TOO_LARGE)
    token = form.get("csrf")
    refused = site.csrf.check(request, token if isinstance(token, str) else None)
    if refused:
        return error_page(request, 403, refused)
    upload = form.get("file")
    text = form.get("text")
    text = text if isinstance(text, str) else ""
    if isinstance(upload, web.FileField) and upload.filename:
        data, name = upload.file.read(PLAYGROUND_MAX + 1), upload.filename
    else:
        # a browser sends a textarea's lines ending in CRLF; the post as written had LF
        data, name = text.replace("\r\n", "\n").encode("utf-8"), "pasted"
    available = build_ruleset()
    on = set(form.getall("on", []))
    off = {n for n in available.names if n not in on}
    if len(data) > PLAYGROUND_MAX:
        return _playground(request, 413, text=text, off=off, error=TOO_LARGE)
    if not data.strip():
        return _playground(
            request, 400, text=text, off=off, error="paste a feed or a post, or choose a file"
        )
    try:
        result = await site.offload.run(convert_document, data, name, frozenset(off))
    except (FeedfixError, TooSlow) as exc:
        return _playground(request, 422, text=text, off=off, error=f"{name}: {exc}")
    return _playground(request, text=text, off=off, result=result)
