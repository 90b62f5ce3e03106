"""What to do about a failing feed, in one line for the index and the 503 body.

The last error says what went wrong ("cannot connect: Connection refused"); a newcomer also
needs to be told what to change. The advice depends only on the feed's config and the kind
of the failure (``FetchError.kind``, or "bad-feed"), so it is made here, without I/O.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from feedfix.config import FeedConfig


def advice(feed: FeedConfig, kind: str | None) -> str | None:
    """The next step for a feed whose last poll failed with ``kind`` (None: it did not)."""
    if kind is None:
        return None
    name = feed.name
    if feed.url is None:
        if kind == "bad-feed":
            return (
                f"{feed.shown_source} is not a feed feedfix can read: fix the file, "
                f"or change `path` of feed {name!r} in the config"
            )
        if kind == "too-large":
            return f"{feed.shown_source} is over max_size: raise `max_size` of feed {name!r}"
        return (
            f"source unreadable: create {feed.path} (a feed file or a folder of posts), "
            f"or change `path` of feed {name!r} in the config"
        )
    parts = urlsplit(feed.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if kind in {"connect", "timeout", "network"}:
        return (
            f"upstream unreachable: start RSSHub (or whatever serves this feed) at {origin}, "
            f"or change `url` of feed {name!r} in the config"
        )
    if kind == "http":
        return (
            f"the upstream answered with an error: check that {feed.url} opens in a browser, "
            f"or change `url` of feed {name!r}"
        )
    if kind == "bad-feed":
        return (
            f"the upstream's answer is not a feed (an error page?): check that {feed.url} "
            f"is a feed's address, or change `url` of feed {name!r}"
        )
    if kind == "too-large":
        return f"the feed is over max_size: raise `max_size` of feed {name!r}"
    if kind in {"redirect", "redirects"}:
        return f"a redirect was refused: change `url` of feed {name!r} to where it leads"
    return None
