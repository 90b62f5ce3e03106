"""The fast path's request-head parsing, as pure functions: which heads it answers itself, and
that everything unusual is left to aiohttp (``None``) instead of being guessed at."""

from __future__ import annotations

import pytest

from feedfix.service.http.heads import (
    CHUNKED,
    INCOMPLETE,
    MAX_FIELD,
    MAX_HEAD,
    MAX_HEADERS,
    MAX_LINE,
    UNUSUAL,
    FeedRequest,
    body_length,
    head_end,
    parse_head,
)


def _head(*lines: str | bytes) -> bytes:
    return b"\r\n".join(line.encode("latin-1") if isinstance(line, str) else line for line in lines)


GET = "GET /feeds/f.atom HTTP/1.1"


# ---- what the fast path answers ------------------------------------------------------------


def test_a_plain_get_is_a_feed_request() -> None:
    """The usual reader's request: name, GET, kept alive, its validators and encodings."""
    request = parse_head(
        _head(
            GET,
            "Host: example.org",
            'If-None-Match: "abc"',
            "If-Modified-Since: Tue, 01 Dec 2026 07:00:00 GMT",
            "Accept-Encoding: gzip, br",
            "User-Agent: NetNewsWire",
        )
    )
    assert request == FeedRequest(
        name="f",
        fmt="atom",
        body=True,
        keep_alive=True,
        extra=b"",
        if_none_match='"abc"',
        if_modified_since="Tue, 01 Dec 2026 07:00:00 GMT",
        accept_encoding="gzip, br",
    )


@pytest.mark.parametrize(
    ("path", "name", "fmt"),
    [
        ("/feeds/f.rss", "f", "rss"),
        ("/feeds/f.json", "f", "json"),
        ("/feeds/f.atom", "f", "atom"),
        ("/feeds/a.rss.json", "a.rss", "json"),  # a name may hold dots: the last suffix counts
        ("/feeds/v1.2.atom", "v1.2", "atom"),
    ],
)
def test_each_format_is_a_feed_request(path: str, name: str, fmt: str) -> None:
    """``.rss`` and ``.json`` are feed requests like ``.atom``: the name and the format."""
    request = parse_head(_head(f"GET {path} HTTP/1.1", "Host: x"))
    assert request is not None
    assert (request.name, request.fmt) == (name, fmt)


@pytest.mark.parametrize("path", ["/feeds/f.xml", "/feeds/f.rss2", "/feeds/f.JSON", "/feeds/f."])
def test_other_suffixes_are_aiohttps(path: str) -> None:
    """Only the three formats' suffixes, exactly, are feed requests."""
    assert parse_head(_head(f"GET {path} HTTP/1.1", "Host: x")) is None


@pytest.mark.parametrize(
    ("head", "body", "keep_alive", "extra"),
    [
        (_head("HEAD /feeds/f.atom HTTP/1.1", "Host: x"), False, True, b""),
        (_head(GET, "Host: x", "Connection: close"), True, False, b"Connection: close\r\n"),
        (_head(GET, "Host: x", "connection: Close"), True, False, b"Connection: close\r\n"),
        (_head("GET /feeds/f.atom HTTP/1.0"), True, False, b"Connection: close\r\n"),
        (
            _head("GET /feeds/f.atom HTTP/1.0", "Connection: keep-alive"),
            True,
            True,
            b"Connection: keep-alive\r\n",
        ),
    ],
    ids=["head", "close", "close-any-case", "http10", "http10-keep-alive"],
)
def test_method_and_connection(head: bytes, body: bool, keep_alive: bool, extra: bytes) -> None:
    """HEAD has no body; HTTP/1.1 stays open unless told to close, HTTP/1.0 closes unless
    asked to keep alive, and the reply says which when it differs from the default."""
    request = parse_head(head)
    assert request is not None
    assert (request.body, request.keep_alive, request.extra) == (body, keep_alive, extra)


def test_tabs_and_non_ascii_bytes_in_values_are_allowed() -> None:
    """A tab inside a value and bytes over 0x7f (obs-text) are legal field content."""
    request = parse_head(_head(GET, "Host: x", "User-Agent: a\tb \xe9"))
    assert request is not None


def test_field_names_are_case_insensitive_and_values_trimmed() -> None:
    """``HOST`` is Host, ``accept-encoding`` with padding is read without it."""
    request = parse_head(_head(GET, "HOST: x", "accept-encoding:   gzip  "))
    assert request is not None and request.accept_encoding == "gzip"


def test_an_empty_content_length_zero_is_no_body() -> None:
    """One ``Content-Length: 0`` (some clients send it on every request) is still a GET."""
    assert parse_head(_head(GET, "Host: x", "Content-Length: 0")) is not None


@pytest.mark.parametrize("name", ["f", "zaker-tech_1", "a.b", "A" * 100])
def test_feed_names_the_config_allows(name: str) -> None:
    """Names of letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit."""
    request = parse_head(_head(f"GET /feeds/{name}.atom HTTP/1.1", "Host: x"))
    assert request is not None and request.name == name


# ---- what it leaves to aiohttp ---------------------------------------------------------------

HANDED_OVER = {
    # RFC 9112 3.2: a Host exactly once in HTTP/1.1 (aiohttp answers 400 otherwise)
    "no-host": _head(GET, "Accept: */*"),
    "no-fields": _head(GET),
    "two-hosts": _head(GET, "Host: a", "Host: b"),
    "two-hosts-any-case": _head(GET, "Host: a", "host: a"),
    "http10-two-hosts": _head("GET /feeds/f.atom HTTP/1.0", "Host: a", "Host: b"),
    # bodies and smuggling material
    "two-content-lengths": _head(GET, "Host: x", "Content-Length: 0", "Content-Length: 0"),
    "content-length": _head(GET, "Host: x", "Content-Length: 5"),
    "chunked-get": _head(GET, "Host: x", "Transfer-Encoding: chunked"),
    "upgrade": _head(GET, "Host: x", "Upgrade: websocket"),
    "expect": _head(GET, "Host: x", "Expect: 100-continue"),
    "repeated-field": _head(GET, "Host: x", 'If-None-Match: "a"', 'If-None-Match: "b"'),
    # line structure
    "obs-fold": _head(GET, "Host: x", "X-A: 1", " 2"),
    "obs-fold-tab": _head(GET, "Host: x", "X-A: 1", "\t2"),
    "bare-lf": b"GET /feeds/f.atom HTTP/1.1\nHost: x\n",
    "bare-lf-inside": _head(GET, "Host: x\nX-A: 1"),
    "bare-cr-inside": _head(GET, "Host: x\rX-A: 1"),
    "space-before-colon": _head(GET, "Host : x"),
    "no-colon": _head(GET, "Host: x", "garbage"),
    "empty-name": _head(GET, "Host: x", ": value"),
    "leading-blank-line": _head("", GET, "Host: x"),
    "nul-in-value": _head(GET, "Host: x", "X-A: a\0b"),
    "control-in-value": _head(GET, "Host: x", "X-A: a\x01b"),
    "escape-in-value": _head(GET, "Host: x", "X-A: \x1b[31m"),
    "del-in-value": _head(GET, "Host: x", "X-A: a\x7fb"),
    "space-in-name": _head(GET, "Host: x", "X A: 1"),
    "paren-in-name": _head(GET, "Host: x", "X(A): 1"),
    "non-ascii-name": _head(GET, "Host: x", "X-\xe9: 1"),
    # the request line
    "nul-in-path": _head("GET /feeds/f\0.atom HTTP/1.1", "Host: x"),
    "absolute-form": _head("GET http://x/feeds/f.atom HTTP/1.1", "Host: x"),
    "authority-form": _head("CONNECT x:443 HTTP/1.1", "Host: x"),
    "asterisk-form": _head("OPTIONS * HTTP/1.1", "Host: x"),
    "dot-dot-encoded": _head("GET /feeds/%2e%2e.atom HTTP/1.1", "Host: x"),
    "dot-dot-path": _head("GET /feeds/%2e%2e%2f%2e%2e%2fetc%2fpasswd.atom HTTP/1.1", "Host: x"),
    "dot-dot": _head("GET /feeds/...atom HTTP/1.1", "Host: x"),
    "dot-dot-slash": _head("GET /feeds/../f.atom HTTP/1.1", "Host: x"),
    "percent-name": _head("GET /feeds/%66.atom HTTP/1.1", "Host: x"),
    "query": _head("GET /feeds/f.atom?x=1 HTTP/1.1", "Host: x"),
    "name-too-long": _head(f"GET /feeds/{'a' * 101}.atom HTTP/1.1", "Host: x"),
    "other-route": _head("GET /healthz HTTP/1.1", "Host: x"),
    "post": _head("POST /feeds/f.atom HTTP/1.1", "Host: x"),
    "lowercase-method": _head("get /feeds/f.atom HTTP/1.1", "Host: x"),
    "http2-preface": _head("PRI * HTTP/2.0", "", "SM"),
    "http09": _head("GET /feeds/f.atom"),
    "http12": _head("GET /feeds/f.atom HTTP/1.2", "Host: x"),
    "two-spaces": _head("GET  /feeds/f.atom HTTP/1.1", "Host: x"),
    "tab-separated": _head("GET\t/feeds/f.atom\tHTTP/1.1", "Host: x"),
    "request-line-too-long": _head(f"GET /feeds/f.atom?{'a' * MAX_LINE} HTTP/1.1", "Host: x"),
    "field-too-long": _head(GET, "Host: x", "X-A: " + "a" * MAX_FIELD),
    "too-many-fields": _head(GET, "Host: x", *(f"X-{i}: 1" for i in range(MAX_HEADERS))),
    "empty": b"",
}


@pytest.mark.parametrize("head", list(HANDED_OVER.values()), ids=list(HANDED_OVER))
def test_anything_unusual_is_left_to_aiohttp(head: bytes) -> None:
    """Heads that attackers and broken clients send are never answered here: aiohttp's
    stricter parser refuses them (400) or its handlers answer them (404, 200)."""
    assert parse_head(head) is None


def test_the_limits_are_inclusive() -> None:
    """A field of exactly ``MAX_FIELD`` bytes and ``MAX_HEADERS`` fields are still answered."""
    field = "X-A: " + "a" * (MAX_FIELD - 5)
    assert parse_head(_head(GET, "Host: x", field)) is not None
    fields = [f"X-{i}: 1" for i in range(MAX_HEADERS - 1)]
    assert parse_head(_head(GET, "Host: x", *fields)) is not None


# ---- where a head ends --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("buffer", "end"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n", 27),  # pipelined
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST-BODY\n\n", 27),  # what follows is not read
        (b"GET / HTTP/1.1\r\nHost: x\r\n", INCOMPLETE),
        (b"GET / HTTP/1.1\r\nHost: x\r", INCOMPLETE),  # half a CRLF
        (b"GET / HT", INCOMPLETE),
        (b"", INCOMPLETE),
        (b"GET / HTTP/1.1\nHost: x\n\n", UNUSUAL),  # bare LF endings: no CRLF CRLF ever comes
        (b"GET / HTTP/1.1\r\nHost: x\n\n", UNUSUAL),
        (b"GET / HTTP/1.1\r\nHost: x\n\r\n", UNUSUAL),
        (b"GET / HTTP/1.1\r\nHost: x\n", UNUSUAL),  # known at the first bare LF
        (b"GET / HTTP/1.1\rHost: x\r\r", UNUSUAL),  # bare CR
        (b"GET / HTTP/1.1\r\nX-A: " + b"a" * MAX_HEAD, UNUSUAL),  # too big to be finished
    ],
)
def test_head_end(buffer: bytes, end: int) -> None:
    """A head ends past CRLF CRLF; until then it is incomplete, unless a bare LF or CR or its
    size shows it will never be one the fast path answers."""
    assert head_end(buffer) == end
    assert head_end(bytearray(buffer)) == end  # the connection's buffer is a bytearray


def test_parse_head_takes_what_head_end_found() -> None:
    """The two together: the head up to its blank line parses to the feed request."""
    buffer = b"GET /feeds/f.atom HTTP/1.1\r\nHost: x\r\n\r\nGET /next"
    end = head_end(buffer)
    request = parse_head(buffer[: end - 4])
    assert request is not None and request.name == "f"


@pytest.mark.parametrize(
    ("head", "length"),
    [
        (b"POST /inspect HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000", 1_000_000),
        (b"POST /inspect HTTP/1.1\r\ncontent-length:  12 \r\nHost: x", 12),
        (b"POST /inspect HTTP/1.1\r\nTransfer-Encoding: gzip, chunked", CHUNKED),
        (b"GET /feeds/f.atom HTTP/1.1\r\nHost: x", 0),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5", 0),  # aiohttp's 400
        (b"POST / HTTP/1.1\r\nContent-Length: -1", 0),
    ],
)
def test_body_length_tells_the_front_how_much_body_to_count(head: bytes, length: int) -> None:
    """A handed-over request's body is counted, not searched for a head's end: a body that
    holds CRLF CRLF must not restart the header clock (the dripped body of issue 18)."""
    assert body_length(head) == length
