"""Where an image URL is kept inside ``--save-images DIR``: a stable, readable name that
cannot leave DIR.

``http://zkres2.myzaker.com/202112/61b1befc_1024.jpg`` is kept as
``zkres2.myzaker.com/202112/61b1befc_1024.jpg``: the host (``_PORT`` after it when the port is
not the scheme's own), then the path's segments percent-decoded. That plain form is used only
when it says exactly which URL it came from: every segment safe on Linux, macOS and Windows, no
escaped delimiter (``%2F``, ``%3F``…), no query, an image suffix. Any other URL (a query
string, ``..``, ``%2f``, NUL, a Windows-reserved name such as ``CON``, a very long path, no
image suffix) gets the hashed form: the same folders and name made safe, then ``~`` and 16 hex
digits of the SHA-256 of the URL, so two URLs never share a file, and then a suffix from the
fetched type when the URL has none (``…/640~3f2a…e1.jpg``). A plain name never holds ``~``; a
file name always ends in an image suffix and a folder name never does, so no name is both.

The scheme and a fragment are not part of the name: ``http://`` and ``https://`` of one URL
are one image. Pure: nothing here touches the disk.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

# The suffix a file gets for each type the fetcher lets through (media.py's table).
TYPE_SUFFIXES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/avif": ".avif",
    "image/bmp": ".bmp",
    "image/x-icon": ".ico",
    "image/svg+xml": ".svg",
}
IMAGE_SUFFIXES = frozenset({*TYPE_SUFFIXES.values(), ".jpeg", ".jpe", ".jfif", ".apng"})
HASH_MARK = "~"
HASH_DIGITS = 16  # 64 bits: two URLs of one blog never meet by chance
MAX_SEGMENT = 120  # bytes of UTF-8 in a plain name's segment (file systems allow 255)
SHORT_SEGMENT = 60  # bytes kept of each segment in the hashed form
MAX_DEPTH = 12  # folders below the host; the hashed form keeps the first ones
DEFAULT_PORTS = {"http": 80, "https": 443}

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{d}{n}" for d in ("COM", "LPT") for n in "0123456789¹²³"}
)
_UNSAFE_CHARACTERS = frozenset('/\\:*?"<>|%~#')
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True)
class ImageName:
    """An image's place inside DIR: ``folders/stem + suffix``; ``suffix`` is empty when the
    fetched type decides it (``path_for``)."""

    folders: tuple[str, ...]
    stem: str
    suffix: str

    def path_for(self, media_type: str | None = None) -> str:
        """The relative path (``/``-separated) for an image of ``media_type`` (needed when
        there is no suffix)."""
        suffix = self.suffix or TYPE_SUFFIXES.get(media_type or "", "")
        if not suffix:
            raise ValueError(f"no file suffix for {media_type!r}")
        return "/".join((*self.folders, self.stem + suffix))

    def candidates(self) -> list[str]:
        """Every path the image may have been stored under (one per type without a suffix)."""
        if self.suffix:
            return [self.path_for()]
        return [self.path_for(t) for t in TYPE_SUFFIXES]


def fetch_url(url: str) -> str | None:
    """The URL to fetch for an image written ``url`` in a post (``//host/…`` as https), or
    None when it is not an absolute http(s) URL with a host."""
    if url.startswith("//"):
        url = "https:" + url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here, not later
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    return url


def name_for(url: str) -> ImageName | None:
    """The name of the image at ``url`` (see the module's docstring); None when ``url`` is
    not an absolute http(s) URL."""
    absolute = fetch_url(url)
    if absolute is None:
        return None
    parts = urlsplit(absolute)
    scheme, host, port = parts.scheme.lower(), parts.hostname or "", parts.port
    host_folder, plain_host = _host_folder(host)
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host_folder += f"_{port}"
    raw = parts.path.split("/")[1:] or [""]
    decoded = [_decoded(s) for s in raw]
    suffix = suffix_of(decoded[-1] or "")
    plain = (
        plain_host
        and not parts.query
        and len(raw) <= MAX_DEPTH + 1
        and all(d is not None and _plain(d) for d in decoded)
        and suffix in IMAGE_SUFFIXES
        and not _has_image_suffix_folder(decoded[:-1])
    )
    if plain:
        name = decoded[-1] or ""
        cut = len(name) - len(suffix)
        return ImageName((host_folder, *(d or "" for d in decoded[:-1])), name[:cut], name[cut:])
    canonical = f"{host}:{port or DEFAULT_PORTS[scheme]}{parts.path}?{parts.query}"
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    readable = [unquote(s, errors="replace") for s in raw]  # only to be made safe below
    last = readable[-1]
    keep_suffix = suffix_of(last)
    keep_suffix = keep_suffix if keep_suffix in IMAGE_SUFFIXES else ""
    stem = _safe(last[: len(last) - len(keep_suffix)] or "image", SHORT_SEGMENT, folder=False)
    folders = [_safe(r, SHORT_SEGMENT, folder=True) for r in readable[:-1] if r not in ("", ".")]
    return ImageName(
        (_safe(host_folder, SHORT_SEGMENT, folder=True), *folders[:MAX_DEPTH]),
        f"{stem}{HASH_MARK}{digest[:HASH_DIGITS]}",
        keep_suffix,
    )


def url_path(path: str) -> str:
    """The relative path as it is written after ``--images-url``: percent-encoded UTF-8,
    so that it stands as it is in YAML, an HTML attribute and a Markdown link."""
    return quote(path, safe="/~")


def suffix_of(name: str) -> str:
    """A file name's suffix, lower-cased (``posixpath``: a ``PurePath`` per name would
    intern every name for good, which grew a 80,000-image run by megabytes)."""
    return posixpath.splitext(name)[1].lower()


def _host_folder(host: str) -> tuple[str, bool]:
    """The host as a folder name (IDNA for a non-ASCII name), and whether it is plain."""
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host, False
    plain = (
        _HOST.fullmatch(ascii_host) is not None
        and len(ascii_host) <= 253
        and suffix_of(ascii_host) not in IMAGE_SUFFIXES
        and ascii_host.split(".", 1)[0].upper() not in _WINDOWS_RESERVED
    )
    return ascii_host, plain


def _decoded(segment: str) -> str | None:
    """A path segment percent-decoded, or None when decoding would lose what it says: an
    escaped delimiter (``%2F`` is not ``/``) or bytes that are not UTF-8."""
    for escape in _ESCAPE.findall(segment):
        byte = int(escape, 16)
        if byte < 0x80 and chr(byte) not in _UNRESERVED:
            return None
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None


def _plain(segment: str) -> bool:
    """Whether a decoded segment can be a name as it is, on every file system."""
    return (
        bool(segment)
        and len(segment.encode("utf-8", "surrogatepass")) <= MAX_SEGMENT
        and segment[0] not in ". "
        and segment[-1] not in ". "
        and not any(c in _UNSAFE_CHARACTERS for c in segment)
        and not any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in segment)
        and segment.split(".", 1)[0].rstrip(" ").upper() not in _WINDOWS_RESERVED
    )


def _has_image_suffix_folder(folders: list[str | None]) -> bool:
    return any(suffix_of(f or "") in IMAGE_SUFFIXES for f in folders)


def _safe(segment: str, limit: int, *, folder: bool) -> str:
    """``segment`` made a safe name: unsafe characters become ``_``, no leading dot, no
    trailing dot or space, no reserved name, at most ``limit`` bytes of UTF-8; a folder
    name that ends like an image file gets a ``_`` after it."""
    out = "".join(
        "_" if c in _UNSAFE_CHARACTERS or unicodedata.category(c) in _UNSAFE_CATEGORIES else c
        for c in segment
    )
    encoded = out.encode("utf-8", "surrogatepass")
    if len(encoded) > limit:
        out = encoded[:limit].decode("utf-8", "ignore")
    out = out.strip(" ")
    if out.startswith("."):
        out = "_" + out[1:]
    out = out.rstrip(". ") or "_"
    head, dot, rest = out.partition(".")
    if head.rstrip(" ").upper() in _WINDOWS_RESERVED:
        out = f"{head}_{dot}{rest}"
    if folder and suffix_of(out) in IMAGE_SUFFIXES:
        out += "_"
    return out
