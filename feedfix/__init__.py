"""feedfix: clean RSS/Atom feeds and republish them as valid Atom.

``feedfix.core`` is pure: bytes and a clock value in, bytes out, no network, disk or clock of
its own. ``feedfix.service`` (fetch, poll, store, serve), ``config`` and ``cli`` are the shell.
"""

__version__ = "0.1.0"
