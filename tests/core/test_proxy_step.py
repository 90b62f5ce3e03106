"""The proxy step in the rule set: last, once, picklable, and in the rules' fingerprint."""

from __future__ import annotations

import pickle
from dataclasses import replace

from feedfix.core.imagesign import verify
from feedfix.core.pipeline import ConvertOptions, convert
from feedfix.core.rules import RuleSpec, ruleset
from feedfix.core.rules.proxy_images import ImageProxySettings

KEY = b"k" * 32
BASE = "https://feeds.example.com"
PROXY = ImageProxySettings("http", BASE, KEY)
WRAPPED = "https://cors.zfour.workers.dev/?http://zkres1.myzaker.com/202611/a.jpg"
RSS = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<link>http://www.myzaker.com/</link><description>d</description>
<item><title>one</title><link>http://www.myzaker.com/a/1</link><guid>g1</guid>
<description><![CDATA[<p>x</p><img class="lazy" data-original="http://zkres1.myzaker.com/202611/a.jpg"
 src="{WRAPPED}"><img src="{BASE}/img/v1/already/n/eA">]]></description></item>
</channel></rss>""".encode()


def test_the_proxy_runs_last_and_only_when_on() -> None:
    """Off (no settings, or mode off): the rule set is today's; on: proxy-images is appended."""
    plain = ruleset(RuleSpec()).names
    assert ruleset(RuleSpec(images=replace(PROXY, mode="off"))).names == plain
    assert ruleset(RuleSpec(images=PROXY)).names == (*plain, "proxy-images")
    disabled = RuleSpec(images=PROXY).disabling(["sanitize"])
    assert disabled.images == PROXY  # --no-rule keeps the proxy


def test_a_wrapped_image_is_unwrapped_then_proxied_once() -> None:
    """unwrap-proxies and fix-lazy-images run first: the signed URL names the origin image;
    a URL already on the proxy is left alone; --explain counts the step."""
    result = convert(RSS, "t.xml", ConvertOptions(rules=ruleset(RuleSpec(images=PROXY))))
    content = result.feed.entries[0].content or ""
    assert "cors.zfour" not in content
    assert content.count(f"{BASE}/img/") == 2
    signed = content.split('src="')[1].split('"')[0].replace("&amp;", "&")
    assert verify(signed.removeprefix(BASE), [KEY]).url == (
        "http://zkres1.myzaker.com/202611/a.jpg"
    )
    assert f'src="{BASE}/img/v1/already/n/eA"' in content
    assert result.report.counts["proxy-images"].changes == 1


def test_the_settings_travel_to_a_worker_process_and_key_its_cache() -> None:
    """The spec pickles with its settings (the process worker gets it in a job), and an equal
    spec builds the one cached rule set."""
    spec = RuleSpec(images=PROXY)
    back = pickle.loads(pickle.dumps(spec))  # noqa: S301 (our own bytes)
    assert back == spec and hash(back) == hash(spec)
    assert ruleset(back) is ruleset(spec)


def test_the_fingerprint_is_unchanged_while_off_and_changes_with_mode_base_or_key() -> None:
    """Off: the stored fingerprints stay as they were (no re-clean); on: mode, base URL and key
    each change it, and the key never shows in it, nor in the spec's repr."""
    assert RuleSpec().fingerprint == repr(sorted([("disable", "[]")]))
    on = RuleSpec(images=PROXY).fingerprint
    assert on.startswith(RuleSpec().fingerprint) and on != RuleSpec().fingerprint
    others = [
        replace(PROXY, mode="all"),
        replace(PROXY, base_url="https://other.example"),
        replace(PROXY, key=b"j" * 32),
    ]
    assert len({on, *(RuleSpec(images=o).fingerprint for o in others)}) == 4
    assert "k" * 32 not in on
    assert "k" * 32 not in repr(RuleSpec(images=PROXY))  # nor in a log line or traceback
    assert RuleSpec(images=PROXY).fingerprint == on  # same key, same fingerprint, same bytes
