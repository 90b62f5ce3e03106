"""feedfix: clean RSS/Atom feeds and republish them as valid Atom.

The core (``model``, ``parse``, ``html``, ``rules``, ``render``, ``pipeline``) is pure: bytes and
options in, bytes out, no network, disk or clock. The CLI is the thin shell around it.
"""

__version__ = "0.1.0"
