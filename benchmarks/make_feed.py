"""Generate a deterministic RSS 2.0 feed shaped like RSSHub's ZAKER channel output.

Usage: ``make_feed.py N OUT`` (N items, written to OUT), or ``from make_feed import make_feed``.

The markup mimics what RSSHub serves for ZAKER (CDATA title/description, lazy-load images
wrapped in the ``cors.zfour.workers.dev`` proxy, bare ``onclick``, empty trailer divs); the
text is pseudo-random CJK characters from a fixed seed, so the same N always gives the same
bytes. Each item is about 5 KB, so 1,000 items are about 5 MB.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

CORS_PREFIX = "https://cors.zfour.workers.dev/?"
SEED = 20220810
IMAGES_PER_ITEM = 8
ITEM_TARGET_BYTES = 5100  # whole <item>, UTF-8 (1,000 items ~ 5.0 MB)
START = datetime(2022, 8, 10, 23, 54, 0, tzinfo=UTC)

# CJK Unified Ideographs actually in common use sit mostly in this range.
_CJK_LO, _CJK_HI = 0x4E00, 0x9FA5
_LATIN_WORDS = ["AMD", "Intel", "Linux", "CPU", "GPU", "SoC", "5G", "AI", "Wi-Fi", "USB-C"]
_PUNCT = ["，", "，", "，", "、", "。", "：", "；"]
_AUTHORS = ["晨风科技", "数码前沿", "极客观察", "芯片周刊", "云端日报", "移动视界"]

_TRAILER = '<p></p><div id="recommend_bottom"></div><div id="article_bottom"></div>'


def _hex24(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


def _word(rng: random.Random) -> str:
    if rng.random() < 0.04:
        return f" {rng.choice(_LATIN_WORDS)} "
    return "".join(chr(rng.randint(_CJK_LO, _CJK_HI)) for _ in range(rng.randint(1, 4)))


def _sentence(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(3, 8)):
        parts.append(_word(rng))
        parts.append(rng.choice(_PUNCT) if rng.random() < 0.3 else "")
    return "".join(parts).rstrip("，、：；") + "。"


def _paragraph(rng: random.Random, max_chars: int) -> str:
    text = ""
    while len(text) < max_chars:
        text += _sentence(rng)
    return text


def _image(rng: random.Random, index: int) -> tuple[str, str]:
    host = f"zkres{rng.randint(1, 4)}"
    url = f"http://{host}.myzaker.com/202208/{_hex24(rng)}_1024.jpg"
    width = rng.choice([640, 700, 760, 926, 1080, 1260])
    height = rng.randint(200, 900)
    markup = (
        f'<p></p><div class="img_box" id="id_imagebox_{index}" onclick>'
        '<div class="content_img_div perview_img_div">'
        f'<img class="lazy opacity_0 " id="img_{index}" data-original="{url}" '
        f'data-height="{height}" data-width="{width}" src="{CORS_PREFIX}{url}" '
        'referrerpolicy="no-referrer"></div></div>'
    )
    return markup, url


def _description(rng: random.Random, text_budget: int) -> tuple[str, list[str]]:
    """About ``text_budget`` bytes of paragraphs, interleaved with the 8 image boxes."""
    images = [_image(rng, i) for i in range(IMAGES_PER_ITEM)]
    n_paras = IMAGES_PER_ITEM + 2
    per_para_chars = max(8, text_budget // 3 // n_paras)  # ~3 UTF-8 bytes per CJK character
    out: list[str] = []
    lead = _paragraph(rng, per_para_chars // 3)
    out.append(f"<p><strong>{lead}</strong>{_paragraph(rng, per_para_chars // 2)}</p>")
    for i in range(n_paras - 1):
        out.append(f"<p>{_paragraph(rng, rng.randint(per_para_chars // 2, per_para_chars))}</p>")
        if i < IMAGES_PER_ITEM:
            out.append(images[i][0])
    out.append(_TRAILER)
    return "".join(out), [url for _, url in images]


def _item(rng: random.Random, when: datetime) -> tuple[str, list[str]]:
    article = f"http://www.myzaker.com/article/{_hex24(rng)}"
    title = "".join(_word(rng) for _ in range(rng.randint(5, 9)))
    author = rng.choice(_AUTHORS)
    head = f"<item>\n<title><![CDATA[{title}]]></title>\n<description><![CDATA["
    tail = (
        "]]></description>\n"
        f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>\n"
        f'<guid isPermaLink="false">{article}</guid>\n'
        f"<link>{article}</link>\n"
        f"<author><![CDATA[{author}]]></author>\n"
        "</item>\n"
    )
    fixed = len((head + tail).encode()) + IMAGES_PER_ITEM * 420 + len(_TRAILER)
    description, urls = _description(rng, max(600, ITEM_TARGET_BYTES - fixed))
    return head + description + tail, urls


def make_feed_with_images(n: int, seed: int = SEED) -> tuple[bytes, list[list[str]]]:
    """The feed bytes, and per item (in order) the origin image URLs it contains."""
    rng = random.Random(seed)  # noqa: S311 -- test data, not crypto: must be reproducible
    when = START
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">\n<channel>\n'
        "<title><![CDATA[ZAKER 科技]]></title>\n"
        "<link>http://www.myzaker.com/channel/13</link>\n"
        '<atom:link href="http://rsshub.example/zaker/channel/13" rel="self" '
        'type="application/rss+xml" />\n'
        "<description><![CDATA[ZAKER 科技 - Made with love by RSSHub"
        "(https://github.com/DIYgod/RSSHub)]]></description>\n"
        "<generator>RSSHub</generator>\n<language>zh-cn</language>\n"
        f"<lastBuildDate>{format_datetime(START, usegmt=True)}</lastBuildDate>\n"
        "<ttl>5</ttl>\n"
    ]
    all_urls: list[list[str]] = []
    for _ in range(n):
        item, urls = _item(rng, when)
        parts.append(item)
        all_urls.append(urls)
        when -= timedelta(seconds=rng.randint(60, 3600))  # strictly decreasing: distinct dates
    parts.append("</channel>\n</rss>\n")
    return "".join(parts).encode("utf-8"), all_urls


def make_feed(n: int, seed: int = SEED) -> bytes:
    """RSS 2.0 bytes with ``n`` ZAKER-shaped items; deterministic for a given (n, seed)."""
    return make_feed_with_images(n, seed)[0]


def write_feed(n: int, out: Path, seed: int = SEED) -> int:
    """Write the feed to ``out``; returns its size in bytes."""
    data = make_feed(n, seed)
    out.write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: make_feed.py N OUT", file=sys.stderr)
        return 2
    size = write_feed(int(args[0]), Path(args[1]))
    print(f"wrote {args[1]}: {args[0]} items, {size:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
