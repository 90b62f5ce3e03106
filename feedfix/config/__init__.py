"""The TOML config: parsed and checked in full, so a typo is an error that names the key.

``schema`` says each section once (frozen dataclasses whose fields carry their checks, from
``checks``); ``load`` turns TOML text and the environment into a ``Config``; ``effective``
says what it means (the image proxy's settings, ``check-config``'s output). Rules are a
``RuleSpec`` (see ``feedfix.core.rules``).
"""

from __future__ import annotations

from feedfix.config.checks import parse_duration, redacted_url, url
from feedfix.config.effective import effective, image_proxy, with_image_proxy
from feedfix.config.load import (
    DEFAULTS_VARIABLE,
    FEED_KEYS,
    NO_FEEDS,
    PACKAGE_DIR,
    PACKAGE_PREFIX,
    SECTION_KEYS,
    Layer,
    defaults_layer,
    env_layer,
    parse_config,
)
from feedfix.config.schema import (
    CleanerKind,
    Config,
    FeedConfig,
    FeedSettings,
    ImagesConfig,
    PollConfig,
    ServerConfig,
    StorageBackend,
    StorageConfig,
)

__all__ = [
    "DEFAULTS_VARIABLE",
    "FEED_KEYS",
    "NO_FEEDS",
    "PACKAGE_DIR",
    "PACKAGE_PREFIX",
    "SECTION_KEYS",
    "CleanerKind",
    "Config",
    "FeedConfig",
    "FeedSettings",
    "ImagesConfig",
    "Layer",
    "PollConfig",
    "ServerConfig",
    "StorageBackend",
    "StorageConfig",
    "defaults_layer",
    "effective",
    "env_layer",
    "image_proxy",
    "parse_config",
    "parse_duration",
    "redacted_url",
    "url",
    "with_image_proxy",
]
