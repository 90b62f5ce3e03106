"""A stand-in for the whole web, for browser tests: an HTTP proxy on 127.0.0.1 that answers
every request (http, or https through CONNECT with a throwaway self-signed certificate) with
a 1x1 GIF, and records what was asked.

Chromium is started with ``--proxy-server`` pointing here, so an article's images (and a
hostile entry's requests) never leave the machine and never fail: even requests from
sandboxed ``srcdoc`` frames, which Playwright's request routing does not see, come here. The
service under test, on 127.0.0.1, is reached directly (Chromium never proxies loopback).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path

GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nCache-Control: no-store\r\n"
    b"Content-Length: " + str(len(GIF)).encode() + b"\r\nConnection: close\r\n\r\n" + GIF
)


def _head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class StandIn:
    """The proxy; ``requested`` lists ``host path`` for every request answered."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        cert, key = workdir / "standin.crt", workdir / "standin.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=standin", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.requested: list[str] = []
        self._lock = threading.Lock()
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = int(self.server.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def flag(self) -> str:
        """The Chromium switch that sends every non-loopback request here."""
        return f"--proxy-server=http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            head = _head(conn)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            if len(parts) < 2:
                return
            if parts[0] == "CONNECT":
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                with self.tls.wrap_socket(conn, server_side=True) as inner:
                    request = _head(inner).split(b"\r\n", 1)[0].decode("latin-1").split(" ")
                    self._record(f"https://{parts[1]}{request[1] if len(request) > 1 else ''}")
                    inner.sendall(REPLY)
                return
            self._record(parts[1])
            conn.sendall(REPLY)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def _record(self, url: str) -> None:
        with self._lock:
            self.requested.append(url)

    def close(self) -> None:
        """Stop listening."""
        self.server.close()
