"""What a parsed config means for its users: the image proxy's settings, and every
effective setting as plain data, with where each came from (``feedfix check-config``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from feedfix.config.checks import keys, redacted_url
from feedfix.config.schema import SECTIONS, Config
from feedfix.core.errors import ConfigError
from feedfix.core.rules import RuleSpec, ruleset
from feedfix.core.rules.proxy_images import HostRule, ImageProxySettings


def image_proxy(config: Config, key: str | None = None) -> ImageProxySettings | None:
    """The proxy step's settings (None when ``[images] proxy`` is off), signed with ``key``,
    else ``[images] key``; ConfigError when there is neither."""
    images = config.images
    if images.proxy == "off" or config.server.base_url is None:
        return None
    signing = key or images.key
    if signing is None:
        raise ConfigError("images.key: missing (set it, or FEEDFIX_IMAGES__KEY)")
    return ImageProxySettings(images.proxy, config.server.base_url, signing.encode(), images.hosts)


def with_image_proxy(config: Config, proxy: ImageProxySettings | None) -> Config:
    """The config with the proxy step in every rule spec (its own ``[rules]`` and each
    feed's), so that the cleaning worker, which builds rules from the spec, runs it last."""
    if proxy is None:
        return config
    feeds = tuple(replace(f, rules=replace(f.rules, images=proxy)) for f in config.feeds)
    return replace(config, rules=replace(config.rules, images=proxy), feeds=feeds)


def effective(config: Config) -> dict[str, Any]:
    """The config with every default filled in, as plain data (for ``check-config``)."""

    def plain(obj: object) -> Any:
        return dict(obj) if isinstance(obj, tuple) else obj  # headers: pairs -> table

    def section(obj: object) -> dict[str, Any]:
        return {k: plain(getattr(obj, k)) for k in keys(type(obj))}

    def rules(spec: RuleSpec) -> dict[str, dict[str, Any]]:
        """The active rules in running order, each with the options set for it."""
        options = spec.table()
        return {name: options.get(name, {}) for name in ruleset(spec).names}

    images = config.images
    shown_images = {
        **{k: getattr(images, k) for k in ("proxy", "max_size", "cache_size", "user_agent")},
        "allow_private": list(images.allow_private),
        "key": "(set)" if images.key else "(made at first start, kept in the store)",
        "old_keys": len(images.old_keys),  # keys are secrets: never printed
        "hosts": {r.pattern: _host_plain(r) for r in images.hosts},
    }

    feeds = [
        {
            "name": f.name,
            **({"url": f.url} if f.url is not None else {"path": f.path}),
            **f.own_metadata,
            **section(f),
            "rules": rules(f.rules),
        }
        for f in config.feeds
    ]
    server = section(config.server)
    if server["admin_token"]:
        server["admin_token"] = "***"  # noqa: S105 (a mask: check-config never prints it)
    storage = section(config.storage)
    if storage["url"]:
        storage["url"] = redacted_url(storage["url"])
    return {
        "server": server,
        "storage": storage,
        "poll": section(config.poll),
        "images": shown_images,
        "rules": rules(config.rules),
        "feeds": feeds,
        # where each section key's value came from: file, environment, or a default
        "origins": {key: config.origin(key) for key in sorted(origin_keys())},
    }


def origin_keys() -> list[str]:
    """Every section key, as ``Config.origins`` names it (``"server.port"``)."""
    return [f"{name}.{key}" for name, section in SECTIONS.items() for key in keys(section)]


def _host_plain(rule: HostRule) -> dict[str, Any]:
    """A host rule as ``[images.hosts]`` would write it."""
    out: dict[str, Any] = {}
    if rule.referer is not None:
        out["referer"] = rule.referer.url if rule.referer.kind == "fixed" else rule.referer.kind
    if rule.https is not None:
        out["https"] = rule.https
    return out
