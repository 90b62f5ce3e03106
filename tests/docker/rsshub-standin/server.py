"""RSSHub's ZAKER route, stood in for: /zaker/channel/13 answers feed.xml, /healthz answers ok.

Standard library only (it runs in the stand-in base image); listens on 127.0.0.1 only, port
1200 (RSSHub's) unless RSSHUB_PORT says otherwise.
"""

from __future__ import annotations

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FEED = Path(__file__).with_name("feed.xml").read_bytes()
ROUTES = {
    "/zaker/channel/13": (b"application/rss+xml; charset=utf-8", FEED),
    "/healthz": (b"text/plain", b"ok\n"),
}


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the two routes; 404 for anything else."""

    def do_GET(self) -> None:
        """Answer a route with its body."""
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        """Answer a route without its body."""
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        content_type, body = ROUTES.get(self.path, (b"text/plain", b""))
        self.send_response(200 if self.path in ROUTES else 404)
        self.send_header("Content-Type", content_type.decode())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)


if __name__ == "__main__":
    # PID 1 in a container: without a handler SIGTERM would be ignored until docker kills it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = int(os.environ.get("RSSHUB_PORT", "1200"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
