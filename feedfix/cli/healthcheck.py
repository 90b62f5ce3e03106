"""The container's health check: ``python -m feedfix.cli.healthcheck``.

It asks ``/healthz`` where the running service listens: the config read as ``feedfix serve``
reads it (``FEEDFIX_CONFIG``, the image's defaults file, the environment), so a port set in
the mounted config file is the one checked. Exit 0 for a 200; 1, with one line saying why,
for anything else (no answer, another status, a config that cannot be read). Proxies are
bypassed: an ``HTTP_PROXY`` in the container must not intercept a loopback check.
"""

from __future__ import annotations

import os
import sys
import urllib.request

from feedfix.core.errors import ConfigError
from feedfix.files.config_file import config_path, load_config

TIMEOUT = 4.0  # seconds; the image's HEALTHCHECK allows 5
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 (read, not bound)


def health_url(host: str, port: int) -> str:
    """Where to ask: the listening address, its loopback form when it listens on all."""
    address = ANY_ADDRESS.get(host, host)
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{port}/healthz"


def main() -> int:
    """Ask once; the exit status is the answer."""
    try:
        config = load_config(config_path(None, os.environ), os.environ)
        url = health_url(config.server.host, config.server.port)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=TIMEOUT) as answer:
            if answer.status == 200:
                return 0
            print(f"feedfix healthcheck: {url} answered {answer.status}", file=sys.stderr)
    except (ConfigError, OSError) as exc:
        print(f"feedfix healthcheck: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
