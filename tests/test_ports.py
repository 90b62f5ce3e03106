"""The tests' port allocator (``service_helpers.free_port``): with pytest-xdist every worker
hands out ports of its own slice, below the kernel's ephemeral range, so no two workers, no
outgoing connection and no ``bind(0)`` elsewhere is given a port a child process is about to
listen on."""

from __future__ import annotations

import os
import socket

from service_helpers import PortAllocator, ephemeral_ports, free_port, port_slice


def test_the_workers_slices_are_disjoint_and_below_the_ephemeral_range() -> None:
    """Two, four or eight workers: slices that share no port, each over a thousand ports,
    none in the range the kernel gives port 0 and outgoing connections."""
    ephemeral = ephemeral_ports()
    for workers in (1, 2, 4, 8):
        slices = [set(port_slice(w, workers)) for w in range(workers)]
        assert all(len(s) >= 1000 for s in slices)
        assert len(set().union(*slices)) == sum(len(s) for s in slices)  # disjoint
        assert not any(port in ephemeral for s in slices for port in s)
    high = port_slice(0, 2, range(1024, 20000))  # a kernel whose range starts low
    assert high.start >= 20000 and high.stop <= 65536


def test_two_workers_never_hand_out_the_same_port() -> None:
    """Allocators of worker 0 and 1 of 2, each asked 2,000 times: every port is free when
    handed out, each worker's are distinct until its slice wraps, and no port is both's."""
    first, second = PortAllocator(port_slice(0, 2)), PortAllocator(port_slice(1, 2))
    ones = [first() for _ in range(2000)]
    twos = [second() for _ in range(2000)]
    assert len(set(ones)) == len(ones) and len(set(twos)) == len(twos)
    assert not set(ones) & set(twos)


def test_a_port_in_use_is_skipped() -> None:
    """A port something listens on is never handed out; the next one is. (The port is the
    allocator's next one that this test could bind: under xdist, another worker's server
    may hold the first one it tries, or a closed connection keep it in TIME_WAIT.)"""
    allocator = PortAllocator(port_slice(0, 1))
    with socket.socket() as taken:
        while True:
            port = allocator.ports[allocator.next % len(allocator.ports)]
            try:
                taken.bind(("127.0.0.1", port))
                break
            except OSError:
                allocator.next += 1
        taken.listen()
        assert allocator() != port


def test_free_port_is_this_workers() -> None:
    """``free_port`` hands out ports of this process's slice (worker 0 of 1 without xdist)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    assert free_port() in port_slice(worker, count)
