"""Redis as deployments run it: behind a password, over TLS (``rediss://``).

A real redis-server with ``--requirepass`` and a TLS port only, its certificate from a
throwaway CA (trustme), and ``feedfix serve`` given nothing but the URL
(``rediss://:PASSWORD@host:port/0?ssl_ca_certs=CA.pem``): it stores, serves and shares
as on plain Redis, and the password shows nowhere. A wrong password is the store being
down, said in words, with the password masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import upstream as up
from redis_helpers import TLS, RedisServer, redis_executable, unique_prefix
from service_helpers import Service, wait_for

PASSWORD = "s3cret-Redis-pw"  # noqa: S105  # a throwaway server's, planted to be looked for


@pytest.fixture
def tls(tmp_path: Path) -> TLS:
    """A CA and a certificate for 127.0.0.1 that it signed, as PEM files."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    made = TLS(tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(made.cert))
    issued.private_key_pem.write_to_path(str(made.key))
    ca.cert_pem.write_to_path(str(made.ca))
    return made


@pytest.fixture
def alpha() -> Iterator[up.Upstream]:
    """An upstream serving one ZAKER-shaped feed."""
    with up.Upstream() as upstream:
        upstream.script("/alpha", up.feed(up.zaker_rss(range(1, 4))))
        yield upstream


def _on_redis(tmp: Path, upstream: up.Upstream, url: str, prefix: str) -> Service:
    env = {"FEEDFIX_STORAGE__BACKEND": "redis", "FEEDFIX_STORAGE__URL": url,
           "FEEDFIX_STORAGE__PREFIX": prefix}  # fmt: skip
    return Service(tmp, [{"name": "alpha", "url": upstream.url("/alpha")}], env=env)


def _nowhere(service: Service, secret: str) -> None:
    """``secret`` is in no page, no JSON, no log line."""
    for path in ("/", "/?format=json", "/healthz", "/feeds/alpha", "/metrics"):
        assert secret not in service.get(path).text(), path
    assert secret not in service.log_text()


def test_a_password_and_tls_in_the_url_are_all_it_takes(
    tmp_path: Path, tls: TLS, alpha: up.Upstream
) -> None:
    """Over TLS with a password: the feed is stored in Redis and served, the store is up, and
    a second replica given the same URL serves the same bytes."""
    server = RedisServer(redis_executable(), tmp_path, password=PASSWORD, tls=tls).start()
    try:
        prefix = unique_prefix()
        assert server.url.startswith(f"rediss://:{PASSWORD}@127.0.0.1:")
        with (
            _on_redis(tmp_path / "a", alpha, server.url, prefix) as first,
            _on_redis(tmp_path / "b", alpha, server.url, prefix) as second,
        ):
            served = first.wait_served("alpha")
            assert up.titles(range(1, 4))[0] in served.text()
            client = server.client()
            wait_for(lambda: client.exists(f"{prefix}feed:alpha:pub"), 10, "the output stored")
            assert first.health()["store"]["ok"] and second.health()["store"]["ok"]
            wait_for(lambda: second.feed("alpha").body == served.body, 10, "the same bytes")
            _nowhere(first, PASSWORD)
    finally:
        server.stop()


def test_a_wrong_password_is_the_store_down_in_words_never_the_password(
    tmp_path: Path, alpha: up.Upstream
) -> None:
    """The server wants another password: feedfix still starts and answers, /healthz says
    the store does not answer and why (authentication), and neither password shows."""
    server = RedisServer(redis_executable(), tmp_path, password=PASSWORD).start()
    try:
        wrong = "not-the-Redis-pw"
        url = f"redis://:{wrong}@127.0.0.1:{server.port}/0"
        with _on_redis(tmp_path / "a", alpha, url, unique_prefix()) as service:
            store = service.health()["store"]  # known from the start: the first check is at once
            assert not store["ok"] and "username-password" in store["error"], store
            assert "Shared store unreachable" in service.get("/").text()
            _nowhere(service, wrong)
            _nowhere(service, PASSWORD)
    finally:
        server.stop()
