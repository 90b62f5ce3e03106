"""Feeds out of the model: deterministic bytes (Atom 1.0 today).

``atom`` writes Atom, ``incremental`` writes it again copying what did not change, and the
formats share ``values`` (what a value may be where it goes) and ``xml`` (writing XML by hand).
Everything here is a function of the model: the same feed always renders to the same bytes.
"""

from feedfix.core.render.atom import render_atom, render_chunks, render_entry, render_header
from feedfix.core.render.incremental import Rendering, rerender
from feedfix.core.render.values import FALLBACK_UPDATED, DropCounter, Dropped, FeedFacts

__all__ = [
    "FALLBACK_UPDATED",
    "DropCounter",
    "Dropped",
    "FeedFacts",
    "Rendering",
    "render_atom",
    "render_chunks",
    "render_entry",
    "render_header",
    "rerender",
]
