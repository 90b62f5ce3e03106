"""``feedfix convert --image-proxy BASE_URL``: a one-shot conversion pointing at a service."""

from __future__ import annotations

import os
import re
from pathlib import Path

from feedfix.core.imagesign import verify
from service_helpers import run_cli

KEY = "convert-test-key-0123456789abcdefghijkl"
BASE = "https://feeds.example.com"


def test_images_point_at_the_service_signed_with_the_environment_key() -> None:
    """With FEEDFIX_IMAGES__KEY: every image of the example is a /img/ URL that the service
    (same key) verifies back to the origin image; --explain counts the step."""
    done = run_cli("convert", "--example", "--image-proxy", BASE, "--explain",
                   env={"FEEDFIX_IMAGES__KEY": KEY})  # fmt: skip
    assert done.returncode == 0, done.stderr
    urls = re.findall(rf'{re.escape(BASE)}(/img/[^"&\s<]+)', done.stdout)
    assert len(urls) == 4
    assert all(verify(u, [KEY.encode()]).url.startswith("http://zkres") for u in urls)
    assert "proxy-images: 4 images in 3 entries" in done.stderr


def test_the_key_and_mode_from_a_config_file(tmp_path: Path) -> None:
    """--config gives the key, the mode and the host rules (a host rule's Referer is signed
    into the URL's policy)."""
    config = tmp_path / "c.toml"
    config.write_text(
        f"[images]\nkey = '{KEY}'\n[images.hosts]\n'zkres*.myzaker.com' = "
        "{ referer = 'https://www.myzaker.com/' }\n",
        "utf-8",
    )
    done = run_cli("convert", "--example", "--config", str(config), "--image-proxy", BASE)
    assert done.returncode == 0, done.stderr
    path = re.findall(rf'{re.escape(BASE)}(/img/[^"&\s<]+)', done.stdout)[0]
    assert verify(path, [KEY.encode()]).referer.url == "https://www.myzaker.com/"


def test_without_a_key_it_is_one_line_saying_where_to_put_one() -> None:
    """Neither --config nor the environment: exit 2, one line, no output."""
    assert "FEEDFIX_IMAGES__KEY" not in os.environ
    done = run_cli("convert", "--example", "--image-proxy", BASE)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "feedfix: --image-proxy: no signing key: set [images] key in --config FILE or "
        "FEEDFIX_IMAGES__KEY (the running service's key, or its URLs won't verify)"
    ]


def test_a_bad_base_url_is_refused() -> None:
    """Not an http(s) URL: one line naming the option."""
    done = run_cli("convert", "--example", "--image-proxy", "feeds.example.com",
                   env={"FEEDFIX_IMAGES__KEY": KEY})  # fmt: skip
    assert done.returncode == 2
    assert "--image-proxy: expected an http(s) URL, got 'feeds.example.com'" in done.stderr


def test_the_flag_gives_the_base_url_a_config_with_the_proxy_on_lacks(tmp_path: Path) -> None:
    """A service's config (``proxy = "all"``, a key, no ``base_url``) given to convert: the
    ``--image-proxy`` URL is the base URL it lacked (it failed: "server.base_url: required"),
    and the flag wins over a base_url the config does give."""
    config = tmp_path / "c.toml"
    config.write_text(f"[images]\nproxy = 'all'\nkey = '{KEY}'\n", "utf-8")
    done = run_cli("convert", "--example", "--config", str(config), "--image-proxy", BASE)
    assert done.returncode == 0, done.stderr
    assert len(re.findall(rf"{re.escape(BASE)}/img/", done.stdout)) == 4
    config.write_text(
        f"[server]\nbase_url = 'https://old.example'\n[images]\nproxy = 'all'\nkey = '{KEY}'\n",
        "utf-8",
    )
    done = run_cli("convert", "--example", "--config", str(config), "--image-proxy", BASE)
    assert done.returncode == 0, done.stderr
    assert "old.example" not in done.stdout and f"{BASE}/img/" in done.stdout
