"""What a ``feedfix convert`` process loads: only what converting an RSS feed needs.

Start-up is a tenth of converting a 1,000-entry feed (``benchmarks/bench_convert.py``), and
these modules cost it 9 ms together (``farm-bench``, 40 runs of a one-item feed): the image
proxy's signing (hashlib, hmac), JSON Feed (json), and email.utils for RFC 822 dates (which
brings socket and random). Each is imported where it is used; this holds them there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

NOT_NEEDED = ("hashlib", "hmac", "json", "email.utils", "socket", "random", "aiohttp")

_PROBE = """
import sys
from feedfix.cli import main
status = main(["convert", sys.argv[1], "-o", sys.argv[2]])
loaded = [name for name in sys.argv[3:] if name in sys.modules]
print(status, " ".join(loaded))
"""

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>http://www.myzaker.com/</link>
<item><title>a</title><link>http://www.myzaker.com/article/1</link>
<pubDate>Wed, 10 Aug 2022 23:54:00 GMT</pubDate>
<description><![CDATA[<p>x</p><img data-original="http://zkres2.myzaker.com/1.jpg"
 src="https://cors.zfour.workers.dev/?http://zkres2.myzaker.com/1.jpg">]]></description>
</item></channel></rss>
"""


def test_converting_an_rss_feed_loads_no_signing_json_or_email_modules(tmp_path: Path) -> None:
    """The output is written (the date read, the image unwrapped) and none of them loaded."""
    source, output = tmp_path / "in.xml", tmp_path / "out.xml"
    source.write_text(FEED, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(source), str(output), *NOT_NEEDED],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status, _, loaded = result.stdout.strip().partition(" ")
    assert status == "0", result.stderr
    atom = output.read_text(encoding="utf-8")
    assert "2022-08-10T23:54:00Z" in atom
    assert 'src="http://zkres2.myzaker.com/1.jpg"' in atom
    assert loaded == "", f"convert loaded {loaded}"
