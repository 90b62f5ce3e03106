"""sanitize's tree pass case by case, and its URL and CSS checks on their own.

Expected HTML is written by hand; both sides go through the same parser (``normalized``) so
that only the meaning is compared, not attribute order or quoting.
"""

from __future__ import annotations

import pytest
from rulecheck import apply, normalized

from feedfix.core.rules.sanitize import Sanitize, is_allowed_url, is_dangerous_style

SANITIZE_CASES = [
    ("script", "<p>a</p><script>alert(1)</script><p>b</p>", "<p>a</p><p>b</p>"),
    ("style element", "<style>p{}</style><p>b</p>", "<p>b</p>"),
    (
        "bare onclick",
        '<div class="img_box" onclick><p>t</p></div>',
        '<div class="img_box"><p>t</p></div>',
    ),
    ("mixed-case handler", '<p OnMouseOver="x()">t</p>', "<p>t</p>"),
    ("javascript: href", '<a href="javascript:alert(1)">t</a>', "<a>t</a>"),
    ("entity-encoded javascript:", '<a href="&#106;avascript:alert(1)">t</a>', "<a>t</a>"),
    ("tab inside javascript:", '<a href="java&#9;script:alert(1)">t</a>', "<a>t</a>"),
    ("leading whitespace", '<a href="  \njavascript:alert(1)">t</a>', "<a>t</a>"),
    ("vbscript:", '<a href="VBScript:msgbox(1)">t</a>', "<a>t</a>"),
    ("data:text/html", '<a href="data:text/html;base64,PHNjcmlwdD4=">t</a>', "<a>t</a>"),
    ("data image goes", '<img src="data:image/png;base64,iVBORw0KGgo=">', "<img>"),
    ("form unwrapped, text kept", '<form action="/x">Name: <input name="n"></form>', "Name: "),
    ("object keeps fallback text", '<object data="x.swf">fallback</object>', "fallback"),
    ("embed", '<p>a</p><embed src="x.swf"><p>b</p>', "<p>a</p><p>b</p>"),
    ("unknown iframe", '<iframe src="https://evil.example/x"></iframe><p>b</p>', "<p>b</p>"),
    (
        "allowed iframe is sandboxed",
        '<iframe src="https://player.bilibili.com/player.html?bvid=1"></iframe>',
        '<iframe src="https://player.bilibili.com/player.html?bvid=1" '
        'sandbox="allow-scripts allow-same-origin allow-popups allow-presentation"></iframe>',
    ),
    (
        "srcdoc",
        '<iframe src="https://www.youtube.com/embed/x" srcdoc="<script>"></iframe>',
        '<iframe src="https://www.youtube.com/embed/x" '
        'sandbox="allow-scripts allow-same-origin allow-popups allow-presentation"></iframe>',
    ),
    ("style expression", '<p style="width: expression(alert(1))">t</p>', "<p>t</p>"),
    ("harmless style stays", '<p style="color: red">t</p>', '<p style="color: red">t</p>'),
    (
        "meta refresh",
        '<meta http-equiv="refresh" content="0;url=javascript:x"><p>t</p>',
        "<p>t</p>",
    ),
    ("base href", '<base href="https://evil.example/"><p>t</p>', "<p>t</p>"),
    (
        "svg animate to javascript",
        '<p>a</p><svg><animate attributeName="href" values="javascript:alert(1)"/></svg>',
        "<p>a</p>",
    ),
    (
        "referrerpolicy stays",
        '<img src="http://a.example/x.jpg" referrerpolicy="no-referrer">',
        '<img src="http://a.example/x.jpg" referrerpolicy="no-referrer">',
    ),
]


@pytest.mark.parametrize(
    ("case", "before", "after"), SANITIZE_CASES, ids=[c[0] for c in SANITIZE_CASES]
)
def test_sanitize(case: str, before: str, after: str) -> None:
    """sanitize's tree pass removes active content and keeps everything harmless."""
    result, _ = apply(Sanitize(), before)
    assert result == normalized(after), case


@pytest.mark.parametrize(
    "url",
    [
        "javascript:x",
        " JAVASCRIPT:x",
        "jav\tascript:x",
        "&#x6A;avascript:x",
        "&amp;#106;avascript:x",
        "vbscript:x",
        "data:text/html,x",
        "DATA:image/svg+xml,<svg onload=x>",
        "data:image/png;base64,AA==",
        "java\u200bscript:x",
        "ftp://a.example/x",
        "file:///etc/passwd",
    ],
)
def test_urls_outside_the_schemes(url: str) -> None:
    """Every scheme but http, https, mailto and tel is refused, in every disguise."""
    assert not is_allowed_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://a.example/javascript:x",
        "HTTPS://a.example/x",
        "/path?x=javascript:y",
        "x.jpg#a:b",
        "mailto:a@b.c",
        "tel:+86-10-1234",
    ],
)
def test_allowed_urls(url: str) -> None:
    """Ordinary URLs, relative ones and those that merely contain the words are kept."""
    assert is_allowed_url(url)


def test_dangerous_style_escapes() -> None:
    """CSS escapes and comments cannot hide expression() or javascript:."""
    assert is_dangerous_style("width: e\\78 pression(alert(1))")
    assert is_dangerous_style("background: url(java/**/script:alert(1))")
    assert not is_dangerous_style("margin: 0 auto; color: #333")
