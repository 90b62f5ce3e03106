"""Secrets masked (feedfix/service/masking.py): userinfo, credential query values, configured
header values and the admin token, in URLs and in any text that quotes them."""

from __future__ import annotations

import time

import pytest

from feedfix.config import parse_config
from feedfix.service.masking import Masker, mask_url, masker_for, without_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@host/feed", "https://***@host/feed"),
        ("https://rsshub.example/zaker?key=abc&limit=5", "https://rsshub.example/zaker?key=***&limit=5"),
        ("https://h/x?Token=1&KEY=2&code=3&access_key=4&sig=5&password=6&secret=7",
         "https://h/x?Token=***&KEY=***&code=***&access_key=***&sig=***&password=***&secret=***"),
        ("https://h/x?api_key=1&client_secret=2&page=3", "https://h/x?api_key=***&client_secret=***&page=3"),
        ("https://h/plain?q=1", "https://h/plain?q=1"),
    ],
)  # fmt: skip
def test_mask_url(url: str, shown: str) -> None:
    """Only credentials go; the rest of the URL stays readable."""
    assert mask_url(url) == shown


def test_masker_finds_urls_and_configured_secrets_in_text() -> None:
    """An error message quoting a URL, or a header value, comes out masked."""
    config = parse_config(
        '[server]\nadmin_token = "tok-12345"\n[[feeds]]\nname = "a"\n'
        'url = "https://me:hunter22@h/f?key=sekrit"\nheaders = { Cookie = "session=xyz1" }\n'
    )
    masker = masker_for(config)
    text = masker.text(
        "https://me:hunter22@h/f?key=sekrit: HTTP 500; cookie session=xyz1 tok-12345"
    )
    for secret in ("hunter22", "sekrit", "session=xyz1", "tok-12345", "me:"):
        assert secret not in text
    assert text.startswith("https://***@h/f?key=***: HTTP 500")
    assert Masker(["ab"]).text("ab cd") == "ab cd"  # too short to search for


def test_log_lines_are_masked() -> None:
    """A log field that quotes a credentialed URL or a configured secret is masked."""
    import logging  # noqa: PLC0415

    from feedfix.service import logs  # noqa: PLC0415

    record = logging.LogRecord("feedfix", logging.WARNING, "x", 1, "poll", None, None)
    record.fields = {"error": "https://u:pw-1234@h/f?token=tok-9876: HTTP 500 hdr-5555", "n": 3}
    try:
        logs.use_masker(Masker(["hdr-5555"]))
        line = logs.JsonFormatter().format(record)
    finally:
        logs.use_masker(Masker())
    assert "pw-1234" not in line and "tok-9876" not in line and "hdr-5555" not in line
    assert '"n": 3' in line and "HTTP 500" in line


def test_without_credentials_drops_them() -> None:
    """What stands in for a feed's URL where readers see it (its base, its id): no userinfo,
    no credential parameter, the rest as it was."""
    assert (
        without_credentials("http://bob:pw@h:8/f.xml?key=K&x=1&token=T") == "http://h:8/f.xml?x=1"
    )
    assert without_credentials("https://h/f?q=1") == "https://h/f?q=1"
    assert without_credentials("http://[::1/x") == "http://[::1/x"  # not a URL: left alone


@pytest.mark.parametrize(
    "text",
    ["a" * 200_000, "://" * 100_000, "a1" * 100_000 + "://", "http://x/" + "." * 200_000 + "a"],
    ids=["letters", "separators", "scheme run", "punctuation"],
)
def test_masking_a_hostile_text_is_linear(text: str) -> None:
    """Errors quote what upstreams send (a redirect's Location, a page's feed link), and the
    open /healthz masks them at every request: 200 KB must take well under a second."""
    started = time.process_time()
    Masker().text(text)
    assert time.process_time() - started < 0.5


def test_check_config_shows_a_referer_but_no_credential_header() -> None:
    """``masker_for(every_header=False)``: Authorization, Cookie and X-Api-Key values are
    secrets; a Referer is not."""
    config = parse_config(
        '[[feeds]]\nname = "a"\nurl = "https://h/f"\n'
        'headers = { Authorization = "Bearer abcd", Cookie = "s=efgh", X-Api-Key = "ijkl", '
        'Referer = "https://ref.example/" }\n'
    )
    text = masker_for(config, every_header=False).text(
        "Bearer abcd s=efgh ijkl https://ref.example/"
    )
    assert text == "*** *** *** https://ref.example/"
