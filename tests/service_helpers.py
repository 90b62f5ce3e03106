"""Run `feedfix serve` exactly as a user does, and talk to it over HTTP.

`Service` writes a TOML config (a free port, a SQLite file in the test's tmp_path, or the
`[storage]` keys given, e.g. Redis), starts `python -m feedfix serve --config FILE` as a
subprocess, waits until `/healthz` answers, and stops it with SIGTERM (asserting exit 0
within 10 s and that every stderr line is a JSON log record). Its stderr goes to a file, read
back as parsed JSON lines, so tests can wait for poll events (the log is read incrementally
and may be read from several threads at once). Every wait polls a condition against a
deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import pty
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import redis

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")

# Fast, predictable polling for tests: no jitter, short backoff and timeouts, no host limit.
TEST_POLL: dict[str, Any] = {
    "jitter": 0,
    "max_backoff": "2s",
    "timeout": "2s",
    "connect_timeout": "1s",
    "concurrency": 32,
    "per_host": 32,
}


# ---- config ---------------------------------------------------------------------------------


def toml_value(value: object) -> str:
    """A Python value as TOML (strings, numbers, booleans, lists and inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_key(key: str) -> str:
    """A bare key when TOML allows one, else a quoted key."""
    ok = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if ok else json.dumps(key)


def render_config(
    sections: Mapping[str, Mapping[str, Any]], feeds: Sequence[Mapping[str, Any]]
) -> str:
    """A config file: ``[section]`` tables, then one ``[[feeds]]`` table per feed."""
    lines: list[str] = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
        lines.append("")
    for row in feeds:
        lines.append("[[feeds]]")
        lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in row.items())
        lines.append("")
    return "\n".join(lines)


def ephemeral_ports() -> range:
    """The kernel's range for port 0 and outgoing connections (Linux's default elsewhere)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def port_slice(worker: int, workers: int, ephemeral: range | None = None) -> range:
    """The ports ``free_port`` hands out in pytest-xdist's worker ``worker`` of ``workers``:
    a slice of its own, below the ephemeral range, so that no other worker, no outgoing
    connection and no ``bind(0)`` of another test run can be given the same port between
    the moment it is chosen and the moment a child process listens on it."""
    ephemeral = ephemeral or ephemeral_ports()
    pool = (
        range(10000, ephemeral.start) if ephemeral.start > 12000 else range(ephemeral.stop, 65536)
    )
    size = len(pool) // max(workers, 1)
    return pool[worker * size : (worker + 1) * size]


def _this_worker() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker; (0, 1) without xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return int(name.removeprefix("gw") or 0), count


class PortAllocator:
    """Hands out the ports of one slice in turn, from a random start (two test runs on one
    machine seldom meet), each one checked free when it is handed out."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self.next = random.randrange(len(ports))  # noqa: S311 (a spread, not a secret)
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            for _ in range(len(self.ports)):
                port = self.ports[self.next % len(self.ports)]
                self.next += 1
                if port_is_free(port):
                    return port
        raise AssertionError(f"no free port in {self.ports}")


_ALLOCATOR: PortAllocator | None = None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now, and that no other test of this run
    (another xdist worker included) is given while this one may still be about to use it."""
    global _ALLOCATOR  # noqa: PLW0603 (one per process, made at first use)
    if _ALLOCATOR is None:
        _ALLOCATOR = PortAllocator(port_slice(*_this_worker()))
    return _ALLOCATOR()


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound right now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ---- HTTP -----------------------------------------------------------------------------------


@dataclass
class Response:
    """One HTTP response, read in full."""

    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        """A response header by case-insensitive name."""
        return self.headers.get(name)

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def text(self) -> str:
        """The body as UTF-8 text (gzip taken off when it was sent gzipped)."""
        body = self.body
        if (self.header("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        return body.decode("utf-8")


def http_request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    """Send one request with the path exactly as given (no normalisation); read the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        answer = conn.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        conn.close()


def wait_for(
    condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Call ``condition`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ---- the service ----------------------------------------------------------------------------


class Service:
    """One `feedfix serve` subprocess with its config, database and log, under ``tmp``."""

    def __init__(
        self,
        tmp: Path,
        feeds: Sequence[Mapping[str, Any]],
        *,
        poll: Mapping[str, Any] | None = None,
        server: Mapping[str, Any] | None = None,
        rules: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        storage: Mapping[str, Any] | None = None,
    ) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.config_path = tmp / "feedfix.toml"
        self.db = tmp / "feedfix.db"
        self.port = free_port()
        self.feeds = [dict(f) for f in feeds]
        self.poll = dict(TEST_POLL if poll is None else poll)
        self.server = dict(server or {})
        self.rules = dict(rules or {})
        self.env = dict(env or {})
        # More [storage] keys (e.g. backend = "redis", url, prefix); the SQLite path is default.
        self.storage = dict(storage or {})
        self.command: list[str] | None = None  # feedfix's arguments; default: serve --config
        self.cwd = REPO  # the folder it runs in
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_path = tmp / "service-0.log"
        # Run in the child before it execs (e.g. to set a resource limit); None: nothing.
        self.preexec_fn: Callable[[], None] | None = None
        self._log_lock = threading.Lock()
        self._log_read: tuple[Path, int, list[dict[str, Any]]] = (self.log_path, 0, [])

    # -- config

    def config_text(self) -> str:
        """The config file this service runs with."""
        sections: dict[str, Mapping[str, Any]] = {
            "server": {"host": "127.0.0.1", "port": self.port, **self.server},
            "storage": {"path": str(self.db), **self.storage},
            "poll": self.poll,
        }
        if self.rules:
            sections["rules"] = self.rules
        return render_config(sections, self.feeds)

    def write_config(self, text: str | None = None) -> None:
        """Write the config (``text``, or the one made from this object's settings)."""
        self.config_path.write_text(self.config_text() if text is None else text, "utf-8")

    # -- life cycle

    def start(self, timeout: float = 20.0) -> Service:
        """Start the process and wait until /healthz answers (a new port if it was taken).

        Already running (``with Service(...)`` starts it): nothing to do. Starting a second
        process would orphan the first, polling the same database on another port.
        """
        if self.proc is not None and self.proc.poll() is None:
            return self
        for _attempt in range(3):
            self.write_config()
            self.runs += 1
            self.log_path = self.tmp / f"service-{self.runs}.log"
            with self.log_path.open("wb") as log:
                args = self.command or ["serve", "--config", str(self.config_path)]
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "feedfix", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self.cwd,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                    preexec_fn=self.preexec_fn,  # noqa: PLW1509  # a test hook (setrlimit)
                )
            if self._wait_healthy(timeout):
                return self
            if "cannot listen" not in self.log_text():
                break
            self.port = free_port()  # taken since free_port() chose it: try another
        raise AssertionError(f"feedfix serve did not come up:\n{self.log_text()[-3000:]}")

    def _wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.get("/healthz", timeout=2).status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    @property
    def running(self) -> bool:
        """The process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal to the process."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def reload(self) -> None:
        """SIGHUP: re-read the config file."""
        self.signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM; assert exit 0 within ``timeout`` and that stderr held only JSON log lines."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                stopping = "logged" if self.events("stopping") else "never logged"
                raise AssertionError(
                    f"feedfix serve did not stop within {timeout:g} s of SIGTERM "
                    f'("stopping" {stopping}):\n{self.log_text()[-2000:]}'
                ) from None
        else:
            code = self.proc.returncode
        self.proc = None
        assert code == 0, f"feedfix serve exited {code}:\n{self.log_text()[-3000:]}"
        bad = [line for line in self.log_text().splitlines() if not _is_json_object(line)]
        assert not bad, f"stderr lines that are not JSON log records: {bad[:5]}"

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM killer would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        """Teardown: make sure no process is left behind (no assertions)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    # -- HTTP

    @property
    def base_url(self) -> str:
        """Where the service answers."""
        return f"http://127.0.0.1:{self.port}"

    def get(
        self,
        path: str,
        headers: Mapping[str, str] | None = None,
        *,
        method: str = "GET",
        timeout: float = 10.0,
    ) -> Response:
        """One request to the service."""
        return http_request(self.port, path, method=method, headers=headers, timeout=timeout)

    def feed(
        self, name: str, headers: Mapping[str, str] | None = None, fmt: str = "atom"
    ) -> Response:
        """``GET /feeds/{name}.atom`` (or ``.rss``, ``.json``: ``fmt``)."""
        return self.get(f"/feeds/{name}.{fmt}", headers)

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` as JSON (asserting a 200)."""
        answer = self.get("/healthz")
        assert answer.status == 200, f"/healthz answered {answer.status}"
        data: dict[str, Any] = answer.json()
        return data

    def health_row(self, name: str) -> dict[str, Any]:
        """The /healthz row of one feed."""
        rows = {row["name"]: row for row in self.health()["feeds"]}
        assert name in rows, f"/healthz has no row for {name!r}: {sorted(rows)}"
        row: dict[str, Any] = rows[name]
        return row

    def wait_served(self, name: str, timeout: float = 15.0) -> Response:
        """Wait until ``/feeds/{name}.atom`` answers 200; return that response."""

        def served() -> Response | None:
            answer = self.feed(name)
            return answer if answer.status == 200 else None

        return wait_for(served, timeout, f"/feeds/{name}.atom to answer 200")

    # -- logs

    def log_text(self) -> str:
        """This run's stderr so far."""
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def logs(self) -> list[dict[str, Any]]:
        """This run's JSON log records so far (a partly written last line is skipped).

        Read incrementally: only the bytes added since the last call are parsed."""
        with self._log_lock:
            path, offset, records = self._log_read
            if path != self.log_path:
                path, offset, records = self.log_path, 0, []
            try:
                with path.open("rb") as log:
                    log.seek(offset)
                    data = log.read()
            except FileNotFoundError:
                data = b""
            end = data.rfind(b"\n") + 1  # complete lines only
            for raw in data[:end].splitlines():
                line = raw.decode("utf-8", "replace")
                if _is_json_object(line):
                    records.append(json.loads(line))
            self._log_read = (path, offset + end, records)
            return list(records)

    def events(self, event: str) -> list[dict[str, Any]]:
        """Log records with this ``event``."""
        return [r for r in self.logs() if r.get("event") == event]

    def polls(self, feed: str) -> list[dict[str, Any]]:
        """The ``"event": "poll"`` records of one feed, oldest first."""
        return [r for r in self.events("poll") if r.get("feed") == feed]

    def wait_for_poll(
        self,
        feed: str,
        *,
        after: int = 0,
        status: str | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Wait for a poll record of ``feed`` beyond the first ``after`` ones that matches."""

        def found() -> dict[str, Any] | None:
            for record in self.polls(feed)[after:]:
                if (status is None or record.get("status") == status) and (
                    where is None or where(record)
                ):
                    return record
            return None

        label = f"a poll of {feed!r}" + (f" with status {status!r}" if status else "")
        return wait_for(found, timeout, label)

    # -- storage

    def history(self, feed: str, limit: int = 20) -> list[dict[str, Any]]:
        """The poll records the service stored for ``feed`` (newest first), read from its
        SQLite file or its Redis: ``started`` (epoch seconds), ``status``, ``duration``…"""
        if self.storage.get("backend") == "redis":
            return self._redis_history(feed, limit)
        db = sqlite3.connect(self.db, timeout=10)
        try:
            rows = db.execute(
                "SELECT record FROM polls WHERE name = ? ORDER BY id DESC LIMIT ?", (feed, limit)
            ).fetchall()
        finally:
            db.close()
        return [json.loads(row[0]) for row in rows]

    def _redis_history(self, feed: str, limit: int) -> list[dict[str, Any]]:
        """The poll records in Redis: the list ``{prefix}feed:{name}:polls``, newest first."""
        prefix = self.storage.get("prefix", "feedfix:")
        client = redis.Redis.from_url(self.storage["url"], socket_timeout=5)
        try:
            rows: list[bytes] = client.lrange(f"{prefix}feed:{feed}:polls", 0, limit - 1)  # type: ignore[assignment]
        finally:
            client.close()
        return [json.loads(row) for row in rows]

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> Any:
    """``python -m feedfix ARGS`` as a subprocess; the CompletedProcess with text output."""
    return subprocess.run(
        [sys.executable, "-m", "feedfix", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
        stdin=subprocess.DEVNULL,
    )


Reply = tuple[bytes, dict[str, str], bytes]  # status line, headers, body


def read_responses(
    sock: socket.socket, sent: bytes, count: int, buffer: bytes = b""
) -> tuple[list[Reply], bytes]:
    """Read ``count`` responses to the requests in ``sent`` (by Content-Length; none after a
    HEAD or a 304), and what was read past them."""
    out: list[Reply] = []
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        headers = {
            k.decode().lower(): v.decode().strip()
            for k, _, v in (line.partition(b":") for line in lines)
        }
        length = int(headers.get("content-length", "0"))
        is_head = sent.split(b"\r\n\r\n")[len(out)].startswith(b"HEAD")
        if is_head or status.split(b" ")[1] == b"304":
            length = 0
        while len(buffer) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-body"
            buffer += chunk
        body, buffer = buffer[:length], buffer[length:]
        out.append((status, headers, body))
    return out, buffer


def run_with_terminal_stderr(args: Sequence[str], cwd: Path | None = None) -> tuple[int, bytes]:
    """Run ``python -m feedfix ARGS`` with stderr on a pseudo-terminal (as a person runs it);
    its exit code and everything it drew there."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "feedfix", *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    ) as proc:
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closes when the child exits
                break
            if not chunk:
                break
            drawn += chunk
        code = proc.wait(timeout=60)
    os.close(leader)
    return code, drawn
