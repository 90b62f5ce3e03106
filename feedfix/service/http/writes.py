"""Writing an answer on a connection the front serves: the ``Date`` header, head and body
with no copy joining them, and a file's bytes by ``sendfile``."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from email.utils import formatdate


class _Clock:
    """The ``Date`` header's value, formatted once a second."""

    second = -1
    value = b""


def date_header() -> bytes:
    """``Date: …\\r\\n`` for now (formatted at most once a second)."""
    now = int(time.time())
    if now != _Clock.second:
        _Clock.second = now
        _Clock.value = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
    return _Clock.value


def send_joined(fd: int, transport: asyncio.Transport, head: bytes, body: bytes) -> None:
    """Head and body in one ``writev`` on the socket ``fd`` (-1: none to write around),
    with no copy joining them (200 KB each time).

    Only while the transport has nothing queued, so that nothing overtakes it; what the
    socket does not take at once is queued on the transport as usual.
    """
    if fd < 0 or transport.get_write_buffer_size():
        transport.writelines((head, body))
        return
    try:
        sent = os.writev(fd, (head, body))
    except OSError:  # would block, or the peer left: the transport finds out which
        sent = 0
    if sent < len(head):
        transport.writelines((head[sent:], body))
    elif sent < len(head) + len(body):
        transport.write(memoryview(body)[sent - len(head) :])


def send_file(
    sock: socket.socket | None,
    transport: asyncio.Transport,
    head: bytes,
    file: tuple[int, int, int],
) -> None:
    """The head, then the body (``file``: descriptor, start, count) straight from the page
    cache with ``sendfile`` while the socket takes it; what it does not take at once is read
    and queued on the transport (a copy, but only of what a slow or far reader leaves behind).

    The head goes with ``MSG_MORE``, so that it leaves in the body's first segment
    instead of a small packet of its own (what nginx's ``tcp_nopush`` does): on loopback
    that took a 200 KB image from 0.72x to about nginx's rate (bench_images.py).
    """
    fd, start, count = file
    written = sent = 0
    if sock is not None and not transport.get_write_buffer_size():
        try:
            written = sock.send(head, socket.MSG_MORE)
            if written == len(head):
                sent = os.sendfile(sock.fileno(), fd, start, count)
        except (BlockingIOError, InterruptedError):
            pass  # the socket is full: the rest goes through the transport
        except OSError:
            return  # the reader left: the transport finds out
    if written < len(head):
        transport.write(head[written:])
    if sent < count:
        transport.write(os.pread(fd, count - sent, start + sent))
