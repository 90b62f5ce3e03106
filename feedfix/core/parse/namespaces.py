"""The vocabularies feedfix reads, by namespace, and the spellings of them found in the wild.

Feeds misspell namespaces (no trailing slash, ``https``, another case: ``http://www.itunes.com/
DTDs/Podcast-1.0.dtd``), use historical ones for RSS (``http://backend.userland.com/rss2``,
Netscape's RDF 0.9), or use a well-known prefix with a namespace nobody else uses. Every
namespace is read as its canonical one: first by its spelling (case, scheme and trailing ``/``
or ``#`` ignored), then, for one that is not known at all, by the prefix it was written with
(as feedparser does). A prefix used without any declaration (``itunes:summary`` in a feed that
never declares ``itunes``) is read the same way when lxml had to recover it.
"""

from __future__ import annotations

ATOM = "http://www.w3.org/2005/Atom"
ATOM03 = "http://purl.org/atom/ns#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RSS10 = "http://purl.org/rss/1.0/"
RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
RSS11 = "http://purl.org/net/rss1.1#"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
MEDIA = "http://search.yahoo.com/mrss/"
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
GOOGLEPLAY = "http://www.google.com/schemas/play-podcasts/1.0"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XHTML = "http://www.w3.org/1999/xhtml"

RSS_NAMESPACES = frozenset({"", RSS10, RSS090, RSS11})
ATOM_NAMESPACES = frozenset({ATOM, ATOM03})

# Spellings (after ``_key``) of each canonical namespace; "" is plain RSS 2.0.
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "": (
        "backend.userland.com/rss",
        "backend.userland.com/rss2",
        "backend.userland.com/rss2.1",
        "blogs.law.harvard.edu/tech/rss",
        "channel.netscape.com/rdf/simple/0.9",
        "purl.org/rss/1.0/modules/rss091",
    ),
    RSS090: ("my.netscape.com/rdf/simple/0.9",),
    ATOM: ("www.w3.org/2005/atom", "w3.org/2005/atom"),
    ATOM03: ("purl.org/atom/ns",),
    CONTENT: ("purl.org/rss/1.0/modules/content",),
    DC: ("purl.org/dc/elements/1.1", "purl.org/dc/elements/1.0", "purl.org/dc/elements"),
    DCTERMS: ("purl.org/dc/terms",),
    MEDIA: ("search.yahoo.com/mrss", "video.search.yahoo.com/mrss", "www.rssboard.org/media-rss"),
    ITUNES: ("www.itunes.com/dtds/podcast-1.0.dtd", "example.com/dtds/podcast-1.0.dtd"),
    GOOGLEPLAY: ("www.google.com/schemas/play-podcasts/1.0",),
}
_BY_KEY = {spelling: canonical for canonical, all in _SPELLINGS.items() for spelling in all}
# Prefixes that name one vocabulary whatever namespace a feed binds them to.
PREFIXES = {
    "content": CONTENT,
    "dc": DC,
    "dcterms": DCTERMS,
    "media": MEDIA,
    "itunes": ITUNES,
    "googleplay": GOOGLEPLAY,
    "atom": ATOM,
}
_KNOWN = frozenset(_SPELLINGS) | {RDF, RSS10, RSS11, XHTML, XML_NS}


def _key(ns: str) -> str:
    key = ns.strip().lower()
    for scheme in ("http://", "https://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
            break
    return key.rstrip("/#")


def canonical(ns: str, prefix: str | None) -> str:
    """The namespace ``ns`` (written with ``prefix``) stands for."""
    if ns in _KNOWN:
        return ns
    found = _BY_KEY.get(_key(ns))
    if found is not None:
        return found
    return PREFIXES.get((prefix or "").lower(), ns)


def is_known(ns: str) -> bool:
    """True when ``ns`` is read as what it says whatever its prefix (no prefix fallback)."""
    return ns in _KNOWN or _key(ns) in _BY_KEY
