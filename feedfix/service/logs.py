"""Structured logs: one JSON object per line on stderr, easy to grep and to ship."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from feedfix.service.masking import Masker

LOGGER = logging.getLogger("feedfix")
MASKER = [Masker()]  # the config's secrets, set by ``use_masker``; URLs are always masked


def use_masker(masker: Masker) -> None:
    """Mask these secrets (and every URL's credentials) in every log line from now on."""
    MASKER[0] = masker


class JsonFormatter(logging.Formatter):
    """``{"time": …, "level": …, "event": …, …fields}``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record and its ``fields`` extra as one JSON line."""
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        masker = MASKER[0]
        for key, value in getattr(record, "fields", {}).items():
            data[key] = masker.text(value) if isinstance(value, str) else value
        if record.exc_info and record.levelno >= logging.ERROR:
            data["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(data, ensure_ascii=False, default=str)


def setup(level: str = "info") -> None:
    """Send feedfix's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log an event with fields."""
    LOGGER.log(level, event, extra={"fields": fields})
