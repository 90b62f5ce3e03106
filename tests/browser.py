"""A real browser that reports script execution: headless Chromium driven by Playwright.

``XssBrowser.render({id: html})`` serves each fragment as the body of its own page on a
loopback HTTP server, loads the pages in batches as iframes of one index page, pokes every
element (clicks links and buttons, fires mouse/focus events) and waits, then returns the hits
per fragment. A hit is any of:

- a call of ``alert``/``confirm``/``prompt``/``print``/``__xss`` (replaced in every frame,
  nested ``srcdoc`` and ``data:`` frames included, by an init script) or a native dialog;
- a frame that navigated away from its page, or a request for a ``/nav-…`` path;
- a document embedded inside a fragment (a nested frame showing ``data:``, ``srcdoc`` or this
  server's pages) or a popup;
- a request to an ``evil.example`` host (the vectors' stand-in for an attacker's server).

Nothing leaves the machine: every request that is not for the loopback server is aborted.
Chromium comes from Debian (``apt-get install chromium``); Playwright is used with
``executable_path`` and never downloads a browser. ``find_chromium`` returns None when either
is missing, so callers can skip.
"""

from __future__ import annotations

import html
import shutil
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Dialog

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Runs first in every frame: record calls of the usual payload functions, stop ordinary
# (http/https) link and form navigation so that only script-driven navigation is left.
INIT_SCRIPT = """
(() => {
  const report = (kind, arg) => {
    try { window.__xssHit(kind + ':' + String(arg)); } catch (e) {}
  };
  window.__xss = (arg) => report('__xss', arg);
  for (const name of ['alert', 'confirm', 'prompt', 'print']) {
    const fake = function (arg) { report(name, arg); return name === 'prompt' ? null : false; };
    try { Object.defineProperty(window, name, {value: fake, writable: true}); } catch (e) {}
  }
  const ordinary = (value) => {
    if (value == null) return false;
    try {
      const url = new URL(String(value), document.baseURI);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch (e) { return false; }
  };
  const XLINK = 'http://www.w3.org/1999/xlink';
  window.addEventListener('click', (event) => {
    for (const node of event.composedPath()) {
      if (!node || !node.getAttribute) continue;
      const href = node.getAttribute('href') ?? node.getAttributeNS(XLINK, 'href');
      if (href !== null) { if (ordinary(href)) event.preventDefault(); return; }
    }
  }, true);
  window.addEventListener('submit', (event) => {
    const submitter = event.submitter;
    const action = (submitter && submitter.getAttribute('formaction')) ??
      event.target.getAttribute('action') ?? document.baseURI;
    if (ordinary(action)) event.preventDefault();
  }, true);
})();
"""

# Run in every frame after load: make every element do what a curious reader might.
POKE_SCRIPT = """
() => {
  const events = ['mouseover', 'mouseenter', 'mousedown', 'mouseup', 'pointerover',
                  'pointerdown', 'focus', 'focusin', 'mousemove', 'dblclick', 'contextmenu',
                  'keydown', 'keypress', 'keyup', 'input', 'change', 'wheel'];
  const all = Array.from(document.querySelectorAll('*'));
  for (const el of all) {
    for (const type of events) {
      try { el.dispatchEvent(new Event(type, {bubbles: true, cancelable: true})); } catch (e) {}
    }
    try { if (el.focus) el.focus(); } catch (e) {}
  }
  for (const el of all) {
    try {
      if (typeof el.click === 'function') el.click();
      else el.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}));
    } catch (e) {}
  }
  return all.length;
}
"""


def find_chromium() -> str | None:
    """The Chromium executable, when both it and the Playwright package are installed."""
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


# After the fragment: the browser serializes what it parsed and parses it again into another
# element (as a reader's script that copies or rewrites entry HTML would), so a fragment that
# only turns dangerous on a second parse (mutation XSS) is caught as well.
ROUND_TRIP = (
    "<div id='__copy'></div><script>(() => { const a = document.getElementById('__entry');"
    " if (a) document.getElementById('__copy').innerHTML = a.innerHTML; })();</script>"
)


def page_html(fragment: str, title: str) -> str:
    """A standards-mode page whose body is the fragment, as a reader would show an entry."""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><article id='__entry'>"
        f"{fragment}</article>{ROUND_TRIP}</body></html>"
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pages: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []  # (path, referer)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Referer") or ""))
        body = self.server.pages.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class XssBrowser:
    """One Chromium for many renders; see the module docstring for what counts as a hit."""

    def __init__(self, executable: str, *, batch: int = 75, settle_ms: int = 1000) -> None:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415

        self.batch = batch
        self.settle_ms = settle_ms
        self.server = _Server()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._pw = sync_playwright().start()
        try:
            self.browser = self._pw.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_FLAGS
            )
            self.version = self.browser.version
        except Exception:
            self._pw.stop()
            raise
        self.hits: dict[str, list[str]] = defaultdict(list)
        self._renders = 0

    def close(self) -> None:
        """Close the browser, Playwright and the server."""
        try:
            self.browser.close()
        finally:
            self._pw.stop()
            self.server.shutdown()
            self.server.server_close()

    # -- one render ---------------------------------------------------------------------------

    def render(self, fragments: Mapping[str, str]) -> dict[str, list[str]]:
        """Hits per fragment id (every id present, most with an empty list)."""
        self._renders += 1
        prefix = f"/r{self._renders}"
        ids = list(fragments)
        hits: dict[str, list[str]] = {i: [] for i in ids}
        for start in range(0, len(ids), self.batch):
            chunk = ids[start : start + self.batch]
            for key, value in self._render_batch(prefix, start, chunk, fragments).items():
                hits.setdefault(key, []).extend(value)
        return hits

    def _render_batch(
        self, prefix: str, number: int, ids: list[str], fragments: Mapping[str, str]
    ) -> dict[str, list[str]]:
        paths = {i: f"{prefix}/v/{number}-{index}" for index, i in enumerate(ids)}
        by_name = {f"v{index}": i for index, i in enumerate(ids)}
        for i, path in paths.items():
            self.server.pages[path] = page_html(fragments[i], i).encode("utf-8")
        frames = "".join(
            f'<iframe name="v{index}" src="{paths[i]}" width="300" height="150"></iframe>'
            for index, i in enumerate(ids)
        )
        index_path = f"{prefix}/index/{number}"
        self.server.pages[index_path] = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{frames}</body></html>"
        ).encode()
        found: dict[str, list[str]] = defaultdict(list)
        with self._page(found, by_name) as page:
            requests_before = len(self.server.requests)
            page.goto(self.origin + index_path, wait_until="load", timeout=30_000)
            page.wait_for_timeout(200)
            for frame in list(page.frames):
                if frame is page.main_frame or frame.is_detached():
                    continue
                try:
                    frame.evaluate(POKE_SCRIPT)
                except Exception:  # noqa: S112 - a frame that navigated or closed meanwhile
                    continue
            page.wait_for_timeout(self.settle_ms)
            self._check_frames(page, paths, by_name, index_path, found)
            owners = {self.origin + path: i for i, path in paths.items()}
            for path, referer in self.server.requests[requests_before:]:
                if path.startswith("/nav-"):
                    owner = owners.get(referer, "(unattributed)")
                    found[owner].append(f"navigation request {path}")
        for path in paths.values():
            self.server.pages.pop(path, None)
        self.server.pages.pop(index_path, None)
        return found

    @contextmanager
    def _page(self, found: dict[str, list[str]], by_name: Mapping[str, str]) -> Iterator[Any]:
        context = self.browser.new_context(java_script_enabled=True, viewport=None)
        try:
            context.add_init_script(INIT_SCRIPT)

            def on_hit(source: dict[str, Any], message: str) -> None:
                found[self._owner(source.get("frame"), by_name)].append(f"called {message}")

            context.expose_binding("__xssHit", on_hit)

            def route(route: Any) -> None:
                url = route.request.url
                if url.startswith(self.origin + "/"):
                    route.continue_()
                    return
                host = (urlsplit(url).hostname or "").lower()
                if host.endswith("evil.example"):
                    owner = self._owner(route.request.frame, by_name)
                    found[owner].append(f"request to {url[:120]}")
                route.abort()

            context.route("**/*", route)
            page = context.new_page()

            def dialog(d: Dialog) -> None:
                found["(dialog)"].append(f"dialog {d.type}")
                d.dismiss()

            page.on("dialog", dialog)
            context.on("page", lambda p: found["(popup)"].append(f"popup {p.url}"))
            yield page
        finally:
            context.close()

    @staticmethod
    def _owner(frame: Any, by_name: Mapping[str, str]) -> str:
        """The fragment id whose iframe contains ``frame`` (walking up nested frames)."""
        try:
            while frame is not None and frame.parent_frame is not None:
                if frame.parent_frame.parent_frame is None:
                    return by_name.get(frame.name, f"(frame {frame.name!r})")
                frame = frame.parent_frame
        except Exception:  # noqa: S110 - a detached frame: fall through
            pass
        return "(main page)"

    def _check_frames(
        self,
        page: Any,
        paths: Mapping[str, str],
        by_name: Mapping[str, str],
        index_path: str,
        found: dict[str, list[str]],
    ) -> None:
        if page.main_frame.url != self.origin + index_path:
            found["(main page)"].append(f"main page navigated to {page.main_frame.url[:120]}")
        for frame in page.frames:
            if frame is page.main_frame or frame.is_detached():
                continue
            owner = self._owner(frame, by_name)
            url = frame.url
            if frame.parent_frame is page.main_frame:
                expected = self.origin + paths.get(owner, "?")
                if url != expected:
                    found[owner].append(f"frame navigated to {url[:120]}")
            elif url.startswith(("data:", "about:srcdoc", "javascript:", self.origin)):
                found[owner].append(f"embedded document {url[:120]}")
