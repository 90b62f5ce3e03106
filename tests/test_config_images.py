"""``[images]``: the image proxy's config, checked in full like every other section."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedfix.config import effective, image_proxy, parse_config, with_image_proxy
from feedfix.core.errors import ConfigError
from feedfix.core.imagesign import Referer
from feedfix.core.rules.proxy_images import DEFAULT_HOST_RULES
from service_helpers import run_cli

KEY = "k" * 40
FEED = "[[feeds]]\nname = 'z'\nurl = 'https://rsshub.example/z'\n"
ON = "[server]\nbase_url = 'https://feeds.example.com'\n[images]\nproxy = 'http'\n"

BAD = [
    ("[images]\nproxy = 'all'\n",
     'server.base_url: required when [images] proxy = "all" '
     "(the proxied image URLs point at it)"),
    ("[images]\nproxy = 'some'\n",
     "images.proxy: expected one of 'off', 'http', 'all', got 'some'"),
    ("[images]\nkey = 'short'\n",
     "images.key: too short (5 characters, at least 32; make one with "
     '`python -c "import secrets; print(secrets.token_urlsafe(32))"`)'),
    (f"[images]\nold_keys = ['{KEY}', 'x']\n", "images.old_keys[1]: too short (1 characters, "
     'at least 32; make one with `python -c "import secrets; print(secrets.token_urlsafe(32))"`)'),
    ("[images]\nallow_private = ['127.0.0.1', 'not a host']\n",
     "images.allow_private[1]: expected a host name, an IP address or a network, got 'not a host'"),
    ("[images]\nmax_size = '2GB'\ncache_size = '1GB'\n",
     "images.max_size: 2000000000 bytes can't exceed images.cache_size (1000000000 bytes)"),
    ("[images.hosts]\n'*.x.cn' = { referer = 'weibo' }\n",
     "images.hosts.*.x.cn.referer: expected \"none\", \"origin\" or an http(s) URL, got 'weibo'"),
    ("[images.hosts]\n'*.x.cn' = { cookie = 'a' }\n",
     "images.hosts.*.x.cn: unknown option 'cookie' (options: https, referer)"),
    ("[images.hosts]\n'*.x.cn' = 'none'\n", "images.hosts.*.x.cn: expected a table"),
    ("[images]\nmax_redirects = 21\n",
     "images.max_redirects: expected a whole number from 0 to 20, got 21"),
    ("[images]\nper_host = 0\n", "images.per_host: expected a whole number from 1 to 256, got 0"),
    ("[images]\ntimeout = '0s'\n", "images.timeout: must be more than zero, got '0s'"),
    ("[images]\nremember_failures = 'soon'\n",
     "images.remember_failures: expected a duration such as 600 or \"10m\", got 'soon'"),
    ("[images]\nsvg = 'yes'\n", "images.svg: expected true or false, got 'yes'"),
    ("[images]\nsurprise = 1\n", "images.surprise: unknown key (known keys: allow_private, "
     "archive, archive_days, archive_retry_for, archive_size, cache_size, connect_timeout, "
     "hosts, key, max_redirects, max_size, old_keys, path, per_host, proxy, "
     "remember_failures, svg, timeout, user_agent)"),
    ("[images]\narchive = true\n",
     'images.archive: needs [images] proxy = "http" or "all" (the archive keeps the images '
     "the proxy serves)"),
    ("[images]\narchive = 'yes'\n", "images.archive: expected true or false, got 'yes'"),
    ("[images]\narchive_days = -1\n",
     "images.archive_days: expected a number from 0 to 36500, got -1"),
    ("[images]\narchive_size = 'big'\n",
     "images.archive_size: expected a size such as 50MB or 1048576, got 'big'"),
    ("[images]\narchive_retry_for = 0\n",
     "images.archive_retry_for: must be more than zero, got 0"),
    ("[images]\npath = ' '\n", "images.path: expected a file's path, got an empty string"),
    ("[storage]\nbackend = 'redis'\nurl = 'redis://127.0.0.1/0'\n[server]\n"
     "base_url = 'https://f.example'\n[images]\nproxy = 'all'\narchive = true\n",
     'images.path: required with archive = true and [storage] backend = "redis": a folder '
     "every replica mounts (each serves every image the others archived)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_images_section_is_one_line_naming_file_key_and_problem(
    text: str, message: str
) -> None:
    """Each mistake: the file, the key, what is wrong."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text + FEED, "c.toml")
    assert str(caught.value) == f"c.toml: {message}"


def test_off_by_default_and_the_output_rules_unchanged() -> None:
    """No [images]: proxy off, no settings for the step, the feeds' specs untouched."""
    config = parse_config(FEED)
    assert config.images.proxy == "off"
    assert image_proxy(config) is None
    assert with_image_proxy(config, image_proxy(config)) == config


def test_the_key_from_the_environment_and_host_rules_before_the_defaults() -> None:
    """FEEDFIX_IMAGES__KEY sets the key; configured host rules come first, defaults after
    unless a configured rule names the same pattern."""
    text = ON + "[images.hosts]\n'*.sinaimg.cn' = { referer = 'origin' }\n'a.cn' = {https = true}\n"
    config = parse_config(text + FEED, "c.toml", {"FEEDFIX_IMAGES__KEY": KEY})
    proxy = image_proxy(config)
    assert proxy is not None and proxy.key == KEY.encode() and proxy.mode == "http"
    assert [r.pattern for r in proxy.hosts[:2]] == ["*.sinaimg.cn", "a.cn"]
    assert proxy.hosts[0].referer == Referer("origin")
    assert len(proxy.hosts) == 1 + len(DEFAULT_HOST_RULES)  # sinaimg replaced, a.cn added
    wired = with_image_proxy(config, proxy)
    assert wired.feeds[0].rules.images == proxy and wired.rules.images == proxy


def test_a_key_too_short_in_the_environment_names_the_variable() -> None:
    """A bad override names the variable it came from."""
    with pytest.raises(ConfigError, match=r"images\.key \(set by FEEDFIX_IMAGES__KEY\): too short"):
        parse_config(FEED, "c.toml", {"FEEDFIX_IMAGES__KEY": "abc"})


def test_check_config_shows_images_but_never_a_key() -> None:
    """The effective view has every [images] key; keys are shown as set or not, never."""
    keys = f"key = '{KEY}'\nold_keys = ['{KEY}o']\n"
    view = effective(parse_config(ON + keys + FEED))
    images = view["images"]
    assert images["proxy"] == "http" and images["key"] == "(set)" and images["old_keys"] == 1
    assert KEY not in repr(view)
    assert images["hosts"]["*.sinaimg.cn"] == {"referer": "https://weibo.com/"}
    unset = effective(parse_config(ON + FEED))["images"]["key"]
    assert unset == "(made at first start, kept in the store)"


def test_check_config_says_base_url_is_required(tmp_path: Path) -> None:
    """`feedfix check-config` on a file with the proxy on and no base_url: exit 2, one line
    naming the file and the key."""
    config = tmp_path / "c.toml"
    config.write_text("[images]\nproxy = 'http'\n" + FEED, "utf-8")
    done = run_cli("check-config", str(config))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f'feedfix: {config}: server.base_url: required when [images] proxy = "http" '
        "(the proxied image URLs point at it)"
    )


def test_the_archive_keys_their_defaults_and_a_relative_folder() -> None:
    """Archive off by default, kept while published (0 days), no size bound, retried three
    days; ``path`` relative to the config file's folder; check-config shows them."""
    plain = parse_config(ON + FEED).images
    assert (plain.archive, plain.archive_days, plain.archive_size) == (False, 0.0, None)
    assert plain.archive_retry_for == 3 * 86400 and plain.path is None
    text = ON + "archive = true\narchive_days = 7\narchive_size = '2GB'\npath = 'img'\n"
    config = parse_config(text + FEED, "c.toml", base_dir="/srv/feedfix")
    images = config.images
    assert (images.archive, images.archive_days, images.archive_size) == (True, 7.0, 2 * 10**9)
    assert images.path == "/srv/feedfix/img"
    shown = effective(config)["images"]
    assert shown["archive"] is True and shown["path"] == "/srv/feedfix/img"
