"""The image proxy's settings: ``[images]`` as the config parsed it, with the keys in force
and the cache folder (the two things the service decides, not the file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from feedfix.config import ImagesConfig

# A current desktop browser's User-Agent: some image hosts refuse anything else.
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


@dataclass(frozen=True)
class ImageSettings:
    """Everything the proxy needs besides the metadata file; every limit is explicit.

    ``keys``: the signing key first, then old keys still accepted. ``limits``: the parsed
    ``[images]`` table (``allow_private``: host names, exact or ``*.`` globs, and IP
    addresses or networks the proxy may reach although they are internal).
    """

    keys: tuple[bytes, ...]
    cache_dir: Path
    limits: ImagesConfig = field(default_factory=ImagesConfig)

    def __post_init__(self) -> None:
        if not self.keys or not all(self.keys):
            raise ValueError("images: at least one non-empty key is needed")
        if self.limits.max_size > self.limits.cache_size:
            raise ValueError("images: max_size can't exceed cache_size")

    @property
    def user_agent(self) -> str:
        """``[images] user_agent``, else a browser's."""
        return self.limits.user_agent or BROWSER_UA
