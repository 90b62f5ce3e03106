"""A real ``redis-server`` for the tests: on a free loopback port, persistence off.

``redis_server`` is a session fixture (re-exported by ``tests/conftest.py``): one
server for the whole run, stopped at the end; each test takes its own key prefix, so tests
never see each other's keys. Without Debian's ``redis-server`` the tests that need it skip,
saying so, unless FEEDFIX_REQUIRE_REDIS is set (as in CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from service_helpers import free_port


@dataclass(frozen=True)
class TLS:
    """A server certificate and the CA file that vouches for it (PEM paths)."""

    cert: Path
    key: Path
    ca: Path


class RedisServer:
    """One redis-server process; ``kill`` and ``start`` again to test an outage and an
    empty restart (no persistence: it comes back with nothing). With ``tls`` it answers only
    TLS (``rediss://``), with ``password`` only clients that give it."""

    def __init__(
        self, executable: str, folder: Path, *, password: str | None = None, tls: TLS | None = None
    ) -> None:
        self.executable = executable
        self.folder = folder
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where it answers, as feedfix's ``[storage] url`` says it (password and CA in it)."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start it and wait until it answers PING."""
        log = (self.folder / "redis.log").open("ab")
        args = [self.executable, "--bind", "127.0.0.1", "--port", str(self.port),
                "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                "--maxmemory-policy", "noeviction"]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls is not None:
            tls = self.tls
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                     "--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key),
                     "--tls-ca-cert-file", str(tls.ca)]  # fmt: skip
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def client(self) -> redis.Redis:
        """A client of database 0 (with the password, over TLS when the server wants it)."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=5, password=self.password,
            ssl=self.tls is not None, ssl_ca_certs=str(self.tls.ca) if self.tls else None,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: an outage (and, without persistence, the loss of every key)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        """Stop it at the end of the session."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def reachable(self) -> bool:
        """It answers on its port."""
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


def redis_executable() -> str:
    """Debian's redis-server (skip, or fail under FEEDFIX_REQUIRE_REDIS, without it)."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("FEEDFIX_REQUIRE_REDIS"):
            pytest.fail(f"{message}; FEEDFIX_REQUIRE_REDIS is set")
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for the session, stopped at its end."""
    server = RedisServer(redis_executable(), tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


def unique_prefix() -> str:
    """A key prefix of its own for one test."""
    return f"t{uuid.uuid4().hex[:10]}:"
