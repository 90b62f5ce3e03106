"""Issue 18, class 5: no secret on an open route or in the output.

Credentials are planted where users put them (a URL's userinfo, ``key=``/``token=``/
``access_key=`` query parameters, ``Authorization`` and ``Cookie`` headers), each a unique
marker, and every open answer (the feed in each format, its 503, ``/healthz``) and
``check-config``'s output is searched for the markers. ``check-config --show-secrets`` is a
proposed flag: the issue asks for a way to show them when a user asks.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from security_helpers import ImagesService, atom_root, image_origin, proxied_urls, rss, rss_item
from security_helpers import run_feedfix as run

from service_helpers import Service
from upstream import Upstream, error, feed

ATOM_ID = "{http://www.w3.org/2005/Atom}id"
ADMIN = "admin-token-" + "0" * 20
MARKERS = ("PASSWORD1", "ACCESSKEY2", "KEYSECRET3", "TOKENSECRET4", "AUTHSECRET5", "COOKIE6")


def _leaks(text: str | bytes) -> list[str]:
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [marker for marker in MARKERS if marker in body]


def test_a_failing_feed_s_open_503_masks_its_upstream(tmp_path: Path) -> None:
    """Attack: with ``admin_token`` set, ``/feeds/NAME.atom`` stays open (readers need it),
    and while a feed has no good copy its 503 body shows the upstream URL in clear:
    ``http://bob:PASSWORD1@…`` and ``?access_key=…``.

    Must hold: every open answer about such a feed (``.atom``; ``.rss`` and ``.json`` once
    they are served, 404 in this build; ``/healthz``) masks the URL's userinfo and
    credential parameters, as the pages do."""
    with Upstream() as upstream:
        upstream.script("/down.xml", error(500))
        port = upstream.port
        feeds = [
            {"name": "userinfo", "url": f"http://bob:PASSWORD1@127.0.0.1:{port}/down.xml"},
            {"name": "access", "url": f"http://127.0.0.1:{port}/down.xml?access_key=ACCESSKEY2"},
            {"name": "key", "url": f"http://127.0.0.1:{port}/down.xml?key=KEYSECRET3&x=1"},
            {"name": "token", "url": f"http://127.0.0.1:{port}/down.xml?token=TOKENSECRET4"},
        ]
        with Service(tmp_path, feeds, server={"admin_token": ADMIN}) as service:
            for row in feeds:
                service.wait_for_poll(str(row["name"]), status="error", timeout=20)
            answers = {}
            for row in feeds:
                for ext in ("atom", "rss", "json"):
                    path = f"/feeds/{row['name']}.{ext}"
                    answer = service.get(path)
                    answers[path] = (answer.status, answer.body)
            answers["/healthz"] = (200, service.get("/healthz").body)
    assert answers["/feeds/userinfo.atom"][0] == 503
    leaked = {path: _leaks(body) for path, (_, body) in answers.items() if _leaks(body)}
    assert not leaked, f"credentials shown on open routes: {leaked}"


def test_a_feed_without_id_or_link_gets_no_credential_in_its_id(tmp_path: Path) -> None:
    """Attack: an upstream feed with no id and no link gets its Atom ``<id>`` from the fetch
    URL, ``?key=KEYSECRET3&token=TOKENSECRET4`` and all: every reader of the public feed
    sees the key.

    Must hold: the published feed (Atom, RSS, JSON) carries no credential anywhere; its id is
    derived from the masked URL or from the feed's name and ``base_url``, stays the same
    across a restart, and is the same for a replica with its own store."""
    with Upstream() as upstream:
        upstream.script("/f.xml", feed(rss(rss_item(), channel_link=None)))
        url = upstream.url("/f.xml?key=KEYSECRET3&token=TOKENSECRET4")
        rows = [{"name": "keyed", "url": url}]
        ids = []
        bodies = []
        for replica in ("one", "two"):
            service = Service(
                tmp_path / replica, rows, server={"base_url": "https://feeds.example"}
            )
            with service:
                for ext in ("atom", "rss", "json"):
                    bodies.append(service.wait_served("keyed").body if ext == "atom"
                                  else service.get(f"/feeds/keyed.{ext}").body)  # fmt: skip
                ids.append(atom_root(service.feed("keyed").body).findtext(ATOM_ID))
            if replica == "one":  # the same store again: a restart
                with service:
                    ids.append(atom_root(service.wait_served("keyed").body).findtext(ATOM_ID))
    leaked = [_leaks(body) for body in bodies if _leaks(body)]
    assert not leaked, f"credentials in the published feed: {leaked}; ids {ids}"
    assert len(set(ids)) == 1, f"the feed's id changed across restart or replica: {ids}"


def _config_with_secrets(tmp_path: Path) -> Path:
    config = tmp_path / "feedfix.toml"
    config.write_text(
        "[[feeds]]\n"
        'name = "a"\n'
        'url = "http://bob:PASSWORD1@127.0.0.1:9/x.xml?access_key=ACCESSKEY2&key=KEYSECRET3"\n'
        'headers = { Authorization = "Bearer AUTHSECRET5", Cookie = "sid=COOKIE6", '
        'Referer = "https://ref.example/" }\n'
        "[[feeds]]\n"
        'name = "b"\n'
        'url = "http://127.0.0.1:9/y.xml?token=TOKENSECRET4"\n',
        "utf-8",
    )
    return config


def test_check_config_masks_secrets_unless_asked(tmp_path: Path) -> None:
    """Attack: ``feedfix check-config`` (run in CI logs, pasted into issues) prints header
    values (``Authorization``, ``Cookie``) and URL credentials in clear.

    Must hold: they are masked as the pages mask them (the ``Referer`` and the rest of the
    URL stay readable); with the proposed ``--show-secrets`` flag they are shown."""
    config = _config_with_secrets(tmp_path)
    masked = run(["check-config", str(config)], timeout=30)
    assert masked.returncode == 0, masked.err
    assert _leaks(masked.out + masked.err) == [], "shown in clear"
    assert "https://ref.example/" in masked.out
    assert "127.0.0.1:9/x.xml" in masked.out
    shown = run(["check-config", "--show-secrets", str(config)], timeout=30)
    assert shown.returncode == 0, shown.err
    assert set(_leaks(shown.out)) == set(MARKERS), shown.out


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_and_the_image_folder_are_private(tmp_path: Path) -> None:
    """Attack: the SQLite store, which holds the image proxy's signing key (and feed
    credentials in its poll records), is created 0644 under the usual umask 022: any local
    user can read the key and sign URLs for the proxy.

    Must hold: under umask 022 the store (and its ``-wal``/``-shm`` files) is created 0600 and
    the image folder 0700; nothing feedfix creates there is readable by others."""
    with image_origin() as origin, Upstream() as upstream:
        upstream.script("/p.xml", feed(rss(rss_item(
            f'<img src="{origin.url("/plain/a.png")}">'))))  # fmt: skip
        service = ImagesService(
            tmp_path / "run",
            [{"name": "p", "url": upstream.url("/p.xml")}],
            {"proxy": "all", "allow_private": ["127.0.0.1"]},
        )
        service.preexec_fn = lambda: (os.umask(0o022), None)[1]
        with service:
            for path in proxied_urls(service.wait_served("p").body):
                assert service.get(path, timeout=15).status == 200
            # the store's files and the image folder (what is inside a 0700 folder is
            # unreachable to others whatever its own mode)
            created = [p for p in (tmp_path / "run").iterdir() if p.name.startswith("feedfix")]
            created = [p for p in created if p.name != "feedfix.toml"]
            modes = {p.name: oct(_mode(p)) for p in created}
    assert any(p.name == "feedfix.db" for p in created), modes
    assert any(p.is_dir() for p in created), f"no image folder: {modes}"
    readable = {name: mode for name, mode in modes.items() if int(mode, 8) & 0o077}
    assert not readable, f"readable by group or others: {readable}"


def test_check_config_never_prints_the_image_key(tmp_path: Path) -> None:
    """Guard (holds today): the image proxy's key and old keys, and a Redis password, never
    appear in ``check-config``'s output, masked or not asked."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[storage]\nbackend = "redis"\nurl = "redis://:REDISPASS7@127.0.0.1:6379/0"\n'
        '[images]\nkey = "IMAGEKEY8-0123456789abcdefghijklmnopqrs"\n'
        '[[feeds]]\nname = "a"\nurl = "http://127.0.0.1:9/x.xml"\n',
        "utf-8",
    )
    result = run(["check-config", str(config)], timeout=30)
    assert result.returncode == 0, result.err
    assert not re.search(r"REDISPASS7|IMAGEKEY8", result.out + result.err), result.out
