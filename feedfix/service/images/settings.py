"""The image proxy's settings: one frozen value, built by the config loader (``[images]``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# A current desktop browser's User-Agent: some image hosts refuse anything else.
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


@dataclass(frozen=True)
class ImageSettings:
    """Everything the proxy needs besides the metadata file; every limit is explicit.

    ``keys``: the signing key first, then old keys still accepted. ``allow_private``: host
    names (exact, or ``*.`` globs) and IP addresses or networks the proxy may reach although
    they are loopback, private or otherwise internal.
    """

    keys: tuple[bytes, ...]
    cache_dir: Path
    cache_size: int = 1_000_000_000
    max_size: int = 20_000_000
    connect_timeout: float = 5.0
    timeout: float = 20.0
    max_redirects: int = 5
    per_host: int = 4
    negative_seconds: float = 60.0
    user_agent: str = BROWSER_UA
    allow_private: tuple[str, ...] = ()
    svg: bool = False

    def __post_init__(self) -> None:
        if not self.keys or not all(self.keys):
            raise ValueError("images: at least one non-empty key is needed")
        for name in ("cache_size", "max_size", "per_host"):
            if getattr(self, name) <= 0:
                raise ValueError(f"images: {name} must be positive")
        for name in ("connect_timeout", "timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"images: {name} must be positive")
        if self.max_size > self.cache_size:
            raise ValueError("images: max_size can't exceed cache_size")
        if self.max_redirects < 0 or self.negative_seconds < 0:
            raise ValueError("images: max_redirects and negative_seconds can't be negative")
