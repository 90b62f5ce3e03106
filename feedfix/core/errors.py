"""One error root, so the shell can turn every expected failure into a one-line message."""

from __future__ import annotations


class FeedfixError(Exception):
    """Base of every error feedfix expects and explains to its user."""


class InputError(FeedfixError):
    """The input cannot be read as a feed or post: empty, binary, an HTML page, not a feed."""


class InputTooLarge(InputError):
    """The input is over the configured size limit, so it is refused before parsing."""


class DamagedInput(InputError):
    """A feed that could only be read in part; raised instead of a warning under ``--strict``."""


class ConfigError(FeedfixError):
    """A config file or option is invalid; the message names the file and the key."""
