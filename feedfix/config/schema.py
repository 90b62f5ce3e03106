"""The config's schema: each section a frozen dataclass whose fields carry their default and
their check (``checks.setting``), so the keys a section accepts, the environment overrides
and ``check-config``'s output are all read off these fields: the schema is said once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from feedfix import __version__
from feedfix.config import checks
from feedfix.core.rules import RuleSpec
from feedfix.core.rules.proxy_images import DEFAULT_HOST_RULES, HostRule, Mode
from feedfix.core.sizes import parse_size

CleanerKind = Literal["thread", "process"]


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the service answers HTTP."""

    host: str = checks.setting("127.0.0.1", checks.string)
    port: int = checks.setting(8080, checks.whole(0, 65535))
    # public URL of the service, for the feeds' self links
    base_url: str | None = checks.setting(None, checks.http_url)
    # Cache-Control max-age ceiling for served feeds
    cache_max_age: float = checks.setting(300.0, checks.parse_duration)
    # open connections; more are closed at once
    max_connections: int = checks.setting(1024, checks.whole(1, 100_000))
    # a request's headers must arrive within this
    header_timeout: float = checks.setting(10.0, checks.parse_duration)
    # an idle kept-alive connection closes after this
    keepalive_timeout: float = checks.setting(75.0, checks.parse_duration)
    # a request's body must all have arrived within this of its headers (however it trickles)
    body_timeout: float = checks.setting(30.0, checks.parse_duration)
    # the share of max_connections one client address may hold (1: no limit per address)
    client_share: float = checks.setting(0.5, checks.number(0.001, 1.0))
    # when set, the web pages and /metrics ask for it (feeds and /healthz stay open)
    admin_token: str | None = checks.setting(None, checks.string)


@dataclass(frozen=True)
class ImagesConfig:
    """``[images]``: the signed, caching image proxy (off unless ``proxy`` says otherwise)."""

    # "off": origin URLs as they are; "http": http:// images and those a host rule names;
    # "all": every image
    proxy: Mode = checks.setting("off", checks.choice("off", "http", "all"))  # noqa: RUF009 (a str)
    # the signing key (or FEEDFIX_IMAGES__KEY); None: made at first start, kept in the store
    key: str | None = checks.setting(None, checks.signing_key)
    # keys still accepted while links signed with them are in readers' caches
    old_keys: tuple[str, ...] = checks.setting((), checks.signing_keys)
    # hosts or networks the proxy may reach though they are loopback or private
    allow_private: tuple[str, ...] = checks.setting((), checks.private_hosts)
    max_size: int = checks.setting(20_000_000, parse_size)
    # on disk beside the store, least recently used out first
    cache_size: int = checks.setting(1_000_000_000, parse_size)
    # None: a current desktop browser's (some image hosts refuse anything else)
    user_agent: str | None = checks.setting(None, checks.string)
    # fetching an origin image: to connect, and in all (body included)
    connect_timeout: float = checks.setting(5.0, checks.parse_duration)
    timeout: float = checks.setting(20.0, checks.parse_duration)
    max_redirects: int = checks.setting(5, checks.whole(0, 20))  # each hop checked again
    per_host: int = checks.setting(4, checks.whole(1, 256))  # fetches at once from one origin host
    # an origin's failure (403, 404, 5xx, timeout) is answered from memory for this long
    remember_failures: float = checks.setting(60.0, checks.parse_duration)
    # SVG is served (with a CSP that forbids scripts) only when this is true
    svg: bool = checks.setting(False, checks.boolean)
    # [images.hosts]: "glob" = { referer = "none" | "origin" | URL, https = true | false }
    hosts: tuple[HostRule, ...] = checks.setting(DEFAULT_HOST_RULES, checks.host_table)
    # the image folder (cache and archive); None: "{store}-images" beside the store file
    path: str | None = checks.setting(None, checks.file_path)
    # fetch every image of an entry when a poll first cleans it; keep it while it is published
    archive: bool = checks.setting(False, checks.boolean)
    # keep an entry's images at least this many days after it leaves the published feed
    archive_days: float = checks.setting(0.0, checks.number(0, 36500))
    # None: no bound; past it, the oldest entries' images are unpinned first
    archive_size: int | None = checks.setting(None, parse_size)
    # a failing image is tried again (1 min, doubling, at most 6 h apart) for this long
    archive_retry_for: float = checks.setting(3 * 86400.0, checks.parse_duration)


StorageBackend = Literal["sqlite", "redis"]


@dataclass(frozen=True)
class StorageConfig:
    """Where the service keeps its state (``:memory:`` keeps nothing across restarts)."""

    # a relative path starts at the config file's folder
    path: str = checks.setting("feedfix.db", checks.file_path)
    # "sqlite" (the file at path) or "redis" (url; several replicas can share it)
    backend: StorageBackend = checks.setting("sqlite", checks.choice(*get_args(StorageBackend)))  # noqa: RUF009 (a str)
    # for backend = "redis": redis://[:password@]host:port/db, rediss:// for TLS
    url: str | None = checks.setting(None, checks.redis_url)
    # for backend = "redis": every key starts with this (one Redis, several deployments)
    prefix: str = checks.setting("feedfix:", checks.string)
    # for backend = "redis": how long a replica holds a feed's poll before another may take it
    lease: float = checks.setting(15.0, checks.parse_duration)
    # for backend = "redis": how often a replica compares its copies with the store's
    sync_every: float = checks.setting(30.0, checks.parse_duration)


@dataclass(frozen=True, kw_only=True)
class FeedSettings:
    """What each feed may set for itself; ``[poll]`` gives the defaults."""

    interval: float = checks.setting(600.0, checks.parse_duration)
    timeout: float = checks.setting(30.0, checks.parse_duration)
    connect_timeout: float = checks.setting(10.0, checks.parse_duration)
    max_size: int = checks.setting(10 * 1000 * 1000, parse_size)
    user_agent: str = checks.setting(f"feedfix/{__version__}", checks.string)
    headers: tuple[tuple[str, str], ...] = checks.setting((), checks.headers)
    keep_entries: int = checks.setting(100, checks.whole(0, 100_000))
    keep_days: float = checks.setting(30.0, checks.number(0, 36500))


@dataclass(frozen=True, kw_only=True)
class PollConfig(FeedSettings):
    """``[poll]``: the feeds' defaults, plus limits that apply to the poller as a whole."""

    concurrency: int = checks.setting(8, checks.whole(1, 1000))
    per_host: int = checks.setting(2, checks.whole(1, 100))
    jitter: float = checks.setting(0.1, checks.number(0, 0.5))
    max_backoff: float = checks.setting(6 * 3600.0, checks.parse_duration)
    max_redirects: int = checks.setting(5, checks.whole(0, 20))
    # a redirect may lead from the feed's host inward
    allow_private_redirects: bool = checks.setting(False, checks.boolean)
    # where parsing and cleaning run
    cleaner: CleanerKind = checks.setting("thread", checks.choice(*get_args(CleanerKind)))  # noqa: RUF009 (a str)


@dataclass(frozen=True, kw_only=True)
class FeedConfig(FeedSettings):
    """One upstream feed to poll and republish, with its effective settings.

    Plain frozen data (the rules as their spec, not compiled), so it hashes, compares and
    pickles: a job for the cleaning worker carries it as it is.
    """

    name: str
    url: str | None = None  # an upstream to poll over HTTP, or
    path: str | None = None  # a local file or folder of posts (absolute once parsed)
    rules: RuleSpec = field(default_factory=RuleSpec)
    # the feed's own title, site link and id (a posts folder has none; they override a url
    # feed's), and the pattern of a posts folder's post URLs below ``link``
    title: str | None = None
    link: str | None = None
    id: str | None = None
    permalink: str | None = None

    @property
    def own_metadata(self) -> dict[str, str]:
        """The title, link, id and permalink this feed's config sets."""
        keys = ("title", "link", "id", "permalink")
        return {k: v for k in keys if (v := getattr(self, k)) is not None}

    @property
    def source(self) -> str:
        """Where the feed comes from, for messages and the index: its URL or its path."""
        return self.url or self.path or ""

    @property
    def shown_source(self) -> str:
        """The source as the pages show it: a file shipped in the package as the config
        names it (``feedfix:examples/…``, not a long ``site-packages`` path)."""
        return self.url or checks.shown_path(self.path or "")


@dataclass(frozen=True)
class Config:
    """The whole config; every part has defaults except the feeds."""

    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    poll: PollConfig = field(default_factory=PollConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    rules: RuleSpec = field(default_factory=RuleSpec)
    feeds: tuple[FeedConfig, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # "section.key" -> where its value came from: "default", "default: FEEDFIX_DEFAULTS=…",
    # "file: …", "environment: FEEDFIX_SECTION__KEY", "command line: --option"
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    def origin(self, key: str) -> str:
        """Where ``section.key``'s value came from (``"default"`` when nobody set it)."""
        return self.origins.get(key, "default")


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "storage": StorageConfig,
    "poll": PollConfig,
    "images": ImagesConfig,
}
