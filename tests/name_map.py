"""A fake name server for the address guard's tests: names resolve to scripted addresses
(hostile ones included) without any DNS traffic, and nothing is ever connected to them."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Mapping, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult


class NameMap(AbstractResolver):
    """A fake name server: each name answers the next address of its list at each lookup
    (the last one repeats), so a test can script a name that turns inward (DNS rebinding).
    Unknown names fail as a real resolver would; nothing leaves the machine."""

    def __init__(self, names: Mapping[str, Sequence[str]]) -> None:
        self.names = {k: list(v) for k, v in names.items()}
        self.lookups: Counter[str] = Counter()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The scripted answer for ``host``."""
        if host not in self.names:
            raise OSError(f"unknown test name {host}")
        answers = self.names[host]
        address = answers[min(self.lookups[host], len(answers) - 1)]
        self.lookups[host] += 1
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            {"hostname": host, "host": address, "port": port, "family": fam, "proto": 0,
             "flags": socket.AI_NUMERICHOST}
        ]  # fmt: skip

    async def close(self) -> None:
        """Nothing to close."""
