"""The catalog's content negotiation: which representation a request's headers ask for."""

from __future__ import annotations

import pytest

from feedfix.service.catalog import accepts_gzip


@pytest.mark.parametrize(
    "header",
    [
        "gzip",
        "GZIP",  # content-codings are case-insensitive (RFC 9110 8.4.1)
        "Gzip, deflate",
        "br, GZip;q=0.5",
        "x-gzip",
        "X-GZIP",
        "*",
        "deflate, *;q=0.1",
        "gzip;Q=1",
        " gzip ; q=0.001 ",
    ],
)
def test_gzip_is_accepted(header: str) -> None:
    """gzip named (any case), or ``*``, with a q-value above zero."""
    assert accepts_gzip(header)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "identity",
        "br, deflate",
        "gzip;q=0",
        "GZIP;Q=0",
        "gzip;q=0.000",
        "*;q=0",
        "gzip;q=0, *",  # gzip refused by name: the wildcard does not bring it back
        "gzip;q=nonsense",
        "gzipx",
    ],
)
def test_gzip_is_not_accepted(header: str) -> None:
    """No gzip when it is not asked for, or refused with q=0."""
    assert not accepts_gzip(header)
