"""Write the encoded variants of the hand-written pairs: CRLF, UTF-8 with BOM, GBK.

The variants are bytes a text editor cannot be trusted to keep, so they are made from
``default/*/quoted.md`` by this script (run it from this folder) and committed.
"""

from collections.abc import Callable
from pathlib import Path

VARIANTS: dict[str, Callable[[str], bytes]] = {
    "crlf.md": lambda text: text.replace("\n", "\r\n").encode("utf-8"),
    "bom.md": lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
    "gbk.markdown": lambda text: text.encode("gbk"),
    "bom-crlf.html": lambda text: b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"),
}
SOURCES = {"crlf.md": "quoted.md", "bom.md": "quoted.md", "gbk.markdown": "quoted.md",
           "bom-crlf.html": "page.html"}  # fmt: skip

for side in ("before", "after"):
    folder = Path("default") / side
    for name, make in VARIANTS.items():
        text = (folder / SOURCES[name]).read_text(encoding="utf-8")
        (folder / name).write_bytes(make(text))
