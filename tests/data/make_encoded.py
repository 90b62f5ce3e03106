"""Write the byte-exact fixtures that a text editor would mangle: encoded feeds and a binary file.

Run from the repository root with `python tests/data/make_encoded.py`; the files it writes are
checked in, and tests/test_golden.py asserts they still match what this script produces.
Each feed is the same small RSS 2.0 document, declared in (and encoded with) its own encoding.
"""

from __future__ import annotations

import codecs
from pathlib import Path

HERE = Path(__file__).resolve().parent

TEMPLATE = """<?xml version="1.0" encoding="{declared}"?>
<rss version="2.0">
<channel>
<title>{feed_title}</title>
<link>https://enc.example.org/{slug}/</link>
<description>{feed_title}</description>
<item>
<title>{title}</title>
<link>https://enc.example.org/{slug}/1</link>
<guid>https://enc.example.org/{slug}/1</guid>
<pubDate>Sun, 02 Apr 2023 03:04:05 GMT</pubDate>
<description><![CDATA[<p>{paragraph}</p>]]></description>
</item>
</channel>
</rss>
"""

# name: (declared encoding, codec, BOM, feed title, item title, paragraph)
FEEDS: dict[str, tuple[str, str, bytes, str, str, str]] = {
    "gbk.rss.xml": (
        "GBK",
        "gbk",
        b"",
        "编码测试：简体中文",
        "朱镕基与喆字：GBK 独有的汉字",
        "这段文字用 GBK 编码保存，其中“镕”和“喆”不在 GB2312 字符集里。",
    ),
    "gb2312-declared-gbk.rss.xml": (
        "gb2312",
        "gbk",
        b"",
        "声明为 GB2312 的订阅源",
        "声明 GB2312 实为 GBK：镕",
        "很多中文网站声明 GB2312，实际输出的是 GBK，例如这个“镕”字。",
    ),
    "big5.rss.xml": (
        "Big5",
        "big5",
        b"",
        "編碼測試：繁體中文",
        "臺灣與香港常用的 Big5 編碼",
        "這段文字以 Big5 編碼儲存，標點與「引號」都應該完整保留。",
    ),
    "utf16le-bom.rss.xml": (
        "UTF-16",
        "utf-16-le",
        codecs.BOM_UTF16_LE,
        "UTF-16 little endian",
        "UTF-16 測試 🎉 with a surrogate pair",
        "Text stored as UTF-16 LE with a BOM: 中文, ünïcödé and 🎉 must all survive.",
    ),
    "utf16be-bom.rss.xml": (
        "UTF-16",
        "utf-16-be",
        codecs.BOM_UTF16_BE,
        "UTF-16 big endian",
        "Big endian 大端 with a BOM",
        "Text stored as UTF-16 BE with a BOM: 大端字节序 and ß.",
    ),
    "utf16le-nobom.rss.xml": (
        "UTF-16LE",
        "utf-16-le",
        b"",
        "UTF-16 without BOM",
        "No BOM 无字节序标记 here",
        "Text stored as UTF-16 LE without a BOM, declared UTF-16LE: 无标记。",
    ),
    "gb18030.rss.xml": (
        "GB18030",
        "gb18030",
        b"",
        "编码测试：GB18030",
        "四字节字符 𠀀 与欧元符号 €",
        "GB18030 能编码 GBK 之外的字符，例如扩展 B 区的“𠀀”（U+20000）。",
    ),
    "latin1.rss.xml": (
        "ISO-8859-1",
        "latin-1",
        b"",
        "Café Latin-1",
        "Crème brûlée à la façon de Zoë",
        "Stored as ISO-8859-1: 25 °C, ½ portion, ×2, ¿sí?, Ærøskøbing.",
    ),
    "utf8-bom.rss.xml": (
        "UTF-8",
        "utf-8",
        codecs.BOM_UTF8,
        "UTF-8 with BOM",
        "BOM first: ünïcödé 中文 ✓",
        "A UTF-8 byte order mark precedes the XML declaration of this feed.",
    ),
}


def feed_bytes(name: str) -> bytes:
    """The exact bytes of one encoded fixture."""
    declared, codec, bom, feed_title, title, paragraph = FEEDS[name]
    text = TEMPLATE.format(
        declared=declared,
        feed_title=feed_title,
        slug=name.split(".", maxsplit=1)[0],
        title=title,
        paragraph=paragraph,
    )
    return bom + text.encode(codec)


def binary_bytes() -> bytes:
    """A deterministic non-text file: a PNG signature followed by bytes 0..255, NULs included."""
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16


def all_fixtures() -> dict[str, bytes]:
    """File name (relative to tests/data) -> exact bytes, for every generated fixture."""
    files = {name: feed_bytes(name) for name in FEEDS}
    files["binary.bin"] = binary_bytes()
    return files


def main() -> None:
    """Write every generated fixture next to this script."""
    for name, data in all_fixtures().items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
