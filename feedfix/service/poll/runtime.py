"""What the poller keeps in memory for one feed between polls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from feedfix.config import FeedConfig
from feedfix.service.poll.decide import Memory


@dataclass
class FeedRuntime:
    """One feed's config, what it holds (``memory``: state and served copy), its task."""

    config: FeedConfig
    memory: Memory
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # "poll now" from the web pages
    has_sources: bool = False  # the store holds the window's sources (for the inspector)
    error_kind: str | None = None  # of the last poll, when it failed (for the advice shown)
    ttl_noted: bool = False  # said once that the upstream's ttl lengthens the interval
