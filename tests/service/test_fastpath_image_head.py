"""``parse_image_head``: which ``/img/`` heads the fast path may answer, held to the feed
heads' rules (anything unusual is aiohttp's)."""

from __future__ import annotations

import pytest

from feedfix.service.http.heads import parse_head, parse_image_head

PATH = b"/img/v1/Qmez_Hd-Wjl1/u.aHR0cHM6Ly93ZWliby5jb20v/aHR0cDovL3prcmVz"


def test_a_plain_get_with_its_validators() -> None:
    """Method, path, keep-alive, and only the fields an image answer depends on."""
    fields = b'Host: x\r\nIf-None-Match: "e"\r\nRange: bytes=0-9\r\nIf-Range: "e"\r\n'
    head = b"GET " + PATH + b" HTTP/1.1\r\n" + fields + b"Cookie: s=1\r\nReferer: https://a/"
    request = parse_image_head(head)
    assert request is not None
    assert (request.method, request.path, request.keep_alive) == ("GET", PATH.decode(), True)
    assert request.headers == {"If-None-Match": '"e"', "Range": "bytes=0-9", "If-Range": '"e"'}
    assert parse_head(head) is None  # not a feed


def test_head_and_http_1_0_close() -> None:
    """HEAD is answered; HTTP/1.0 without keep-alive closes with a Connection header."""
    request = parse_image_head(b"HEAD " + PATH + b" HTTP/1.0")
    assert request is not None and request.method == "HEAD"
    assert (request.keep_alive, request.extra) == (False, b"Connection: close\r\n")


@pytest.mark.parametrize(
    "head",
    [
        b"GET " + PATH + b"?x=1 HTTP/1.1\r\nHost: x",  # a query
        b"GET /img/v1/a%2Fb/n/eA HTTP/1.1\r\nHost: x",  # percent-encoding
        b"GET /img/ HTTP/1.1\r\nHost: x",  # nothing after the prefix
        b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0",
        b"GET " + PATH + b" HTTP/1.1",  # HTTP/1.1 without Host
        b"GET " + PATH + b" HTTP/1.1\r\nHost: x\r\nHost: y",  # twice
        b"GET " + PATH + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked",
        b"GET " + PATH + b" HTTP/1.1\r\nHost: x\nRange: bytes=0-1",  # a bare LF
        b"GET http://x" + PATH + b" HTTP/1.1\r\nHost: x",  # absolute form
        b"GET /imgx/v1/a/n/eA HTTP/1.1\r\nHost: x",
    ],
)
def test_anything_unusual_is_left_to_aiohttp(head: bytes) -> None:
    """None: aiohttp's parser and handler answer it."""
    assert parse_image_head(head) is None
