"""The config: one schema, exact error messages, environment overrides, and the rule spec.

Every mistake in a config is one line that names the file, the key and the problem; the
rules a config asks for travel as a frozen ``RuleSpec`` that hashes, pickles, and builds one
shared rule set per process however many feeds ask for it.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import fields
from pathlib import Path

import pytest

from feedfix.config import (
    FEED_KEYS,
    SECTION_KEYS,
    FeedConfig,
    effective,
    parse_config,
    parse_duration,
)
from feedfix.core.errors import ConfigError
from feedfix.core.rules import RULESET_CACHE, RuleSpec, build_ruleset, ruleset

REPO = Path(__file__).resolve().parents[1]
FEED = '[[feeds]]\nname = "z"\nurl = "http://127.0.0.1:9/feed"\n'
EXAMPLE = REPO / "feedfix" / "examples" / "zaker-channel.rss.xml"
RULES = "filter, limit, unwrap-proxies, fix-lazy-images, sanitize, remove, drop-empty-junk"


def _config(extra: str = "") -> str:
    return FEED + extra


# ---- errors ----------------------------------------------------------------------------------

BAD_CONFIGS = [
    ("surprise = 1\n",
     "surprise: unknown key (known keys: feeds, images, poll, rules, server, storage)"),
    ("[server]\nprot = 1\n",
     "server.prot: unknown key (known keys: admin_token, base_url, body_timeout, "
     "cache_max_age, client_share, header_timeout, host, keepalive_timeout, max_connections, "
     "port)"),
    ("[server]\nport = 70000\n",
     "server.port: expected a whole number from 0 to 65535, got 70000"),
    ("[server]\nport = true\n",
     "server.port: expected a whole number from 0 to 65535, got True"),
    ("[server]\nbase_url = 'feeds.example.com'\n",
     "server.base_url: expected an http(s) URL, got 'feeds.example.com'"),
    ("[server]\nheader_timeout = '-5s'\n",
     "server.header_timeout: expected a duration such as 600 or \"10m\", got '-5s'"),
    ("server = 3\n", "server: expected a table"),
    ("[storage]\npath = 5\n", "storage.path: expected a string, got 5"),
    ("[poll]\ninterval = 0\n", "poll.interval: must be more than zero, got 0"),
    ("[poll]\nmax_size = 'lots'\n",
     "poll.max_size: expected a size such as 50MB or 1048576, got 'lots'"),
    ("[poll]\njitter = 0.9\n", "poll.jitter: expected a number from 0 to 0.5, got 0.9"),
    ("[poll]\nconcurrency = 0\n",
     "poll.concurrency: expected a whole number from 1 to 1000, got 0"),
    ("[poll]\ncleaner = 'fork'\n",
     "poll.cleaner: expected one of 'thread', 'process', got 'fork'"),
    ("[poll]\nallow_private_redirects = 'yes'\n",
     "poll.allow_private_redirects: expected true or false, got 'yes'"),
    ("[poll]\nheaders = { 'Bad Header' = 'x' }\n",
     "poll.headers.Bad Header: not a valid HTTP header"),
    ("feeds = 3\n", "feeds: expected an array of tables ([[feeds]])"),
    ("[[feeds]]\nurl = 'http://x/'\n",
     "feeds[0].name: missing (every feed needs a name, and a url or a path)"),
    ("[[feeds]]\nname = 'a'\n",
     "feeds[0] ('a'): give exactly one of url (an http(s) feed) and path (a local file or "
     "folder of posts), not neither"),
    ("[[feeds]]\nname = 'a'\nurl = 'http://x/'\npath = 'feed.xml'\n",
     "feeds[0] ('a'): give exactly one of url (an http(s) feed) and path (a local file or "
     "folder of posts), not both"),
    ("[[feeds]]\nname = 'a'\npath = ''\n",
     "feeds[0].path: expected a file or folder, got an empty string"),
    ("[[feeds]]\nname = 'a'\npath = 3\n", "feeds[0].path: expected a string, got 3"),
    ("[[feeds]]\nname = 'a'\npath = 'feedfix:../../etc/passwd'\n",
     "feeds[0].path: 'feedfix:../../etc/passwd' must name a file inside the feedfix package"),
    ("[[feeds]]\nname = 'a'\nurll = 'http://x/'\n",
     "feeds[0].urll: unknown key (known keys: connect_timeout, headers, id, interval, "
     "keep_days, keep_entries, link, max_size, name, path, permalink, rules, timeout, title, "
     "url, user_agent)"),
    ("[[feeds]]\nname = 'a/b'\nurl = 'http://x/'\n",
     "feeds[0].name: 'a/b' must be letters, digits, '.', '_' or '-' (it becomes a URL)"),
    ("[[feeds]]\nname = 'a'\nurl = 'ftp://x/'\n",
     "feeds[0].url: expected an http(s) URL, got 'ftp://x/'"),
    ("[[feeds]]\nname = 'a'\nurl = 'http://x/'\n[[feeds]]\nname = 'a'\nurl = 'http://y/'\n",
     "feeds[1].name: 'a' is used by another feed"),
    (FEED + "intervall = '10m'\n",
     "feeds[0].intervall: unknown key (known keys: connect_timeout, headers, id, interval, "
     "keep_days, keep_entries, link, max_size, name, path, permalink, rules, timeout, title, "
     "url, user_agent)"),
    (FEED + "interval = 'soon'\n",
     "feeds[0].interval: expected a duration such as 600 or \"10m\", got 'soon'"),
    (FEED + "rules = 3\n", "feeds[0].rules: expected a table"),
    ("[rules.limt]\ncount = 1\n", f"rules.limt: unknown rule (rules: {RULES})"),
    ("[rules]\nlimit = 3\n", "rules.limit: expected a table of the rule's options"),
    ("[rules.limit]\ncont = 1\n", "rules.limit.cont: unknown option (options: count)"),
    ("[rules.limit]\ncount = 'x'\n", "rules.limit: option 'count' must be a whole number"),
    ("[rules.limit]\nenabled = 'yes'\n", "rules.limit.enabled: expected true or false, got 'yes'"),
    ("[rules.limit]\ncount = { n = 1 }\n",
     "rules.limit.count: expected a string, a number, true/false or an array, got a table"),
    ("[rules]\ndisable = 'sanitize'\n", "rules.disable: expected a list of rule names"),
    ("[rules]\ndisable = ['sanitise']\n",
     f"rules.disable: unknown rule 'sanitise' (rules: {RULES})"),
    ("[rules.filter]\ndrop = '(unclosed'\n",
     "rules.filter: option 'drop': bad regular expression: missing ): (unclosed (patterns run "
     "with RE2, in time linear in the text: no backreferences, look-around or possessive "
     "quantifiers)"),
    ("[rules.unwrap-proxies]\nwrappers = ['https://x.example/${whatever}']\n",
     "rules.unwrap-proxies: wrapper 'https://x.example/${whatever}' is not a known form: use "
     "'…${href}' (prefix), '…?param=${href_ue}' (query) or '…/${host}${pathname}' (host and "
     "path)"),
    (FEED + "[feeds.rules.limt]\ncount = 1\n",
     f"feeds[0].rules.limt: unknown rule (rules: {RULES})"),
    (FEED + "[feeds.rules]\ndisable = ['nope']\n",
     f"feeds[0].rules.disable: unknown rule 'nope' (rules: {RULES})"),
    (FEED + "[feeds.rules.filter]\nkeep = '['\n",
     "feeds[0].rules.filter: option 'keep': bad regular expression: missing ]: [ (patterns run "
     "with RE2, in time linear in the text: no backreferences, look-around or possessive "
     "quantifiers)"),
    ("not toml = = 1",
     "not valid TOML: Expected '=' after a key in a key/value pair (at line 1, column 5)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_a_bad_config_is_one_exact_line_naming_file_key_and_problem(
    text: str, message: str
) -> None:
    """Each mistake gives exactly this message: the file, the key, what is wrong."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.toml")
    assert str(caught.value) == f"c.toml: {message}"


# ---- the environment -------------------------------------------------------------------------


def test_env_overrides_any_section_key_read_as_toml_or_as_text() -> None:
    """FEEDFIX_SECTION__KEY sets [section] key: TOML values keep their type, anything else is
    a string; other variables, and ours without a ``__``, are left alone."""
    env = {
        "FEEDFIX_SERVER__PORT": "9090",
        "FEEDFIX_SERVER__HOST": "0.0.0.0",
        "FEEDFIX_STORAGE__PATH": "/data/feedfix.db",
        "FEEDFIX_POLL__HEADERS": '{ Referer = "https://www.myzaker.com/" }',
        "FEEDFIX_POLL__CLEANER": "process",
        "FEEDFIX_POLL__KEEP_DAYS": "7",
        "FEEDFIX_CONFIG": "/elsewhere.toml",
        "HOME": "/root",
    }
    config = parse_config(_config("keep_entries = 5\n"), "c.toml", env)
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9090)
    assert config.storage.path == "/data/feedfix.db"
    assert config.poll.cleaner == "process"
    feed = config.feeds[0]
    assert feed.headers == (("Referer", "https://www.myzaker.com/"),)
    assert (feed.keep_days, feed.keep_entries) == (7.0, 5)  # the feed's own value still wins


def test_env_overrides_a_value_the_file_sets() -> None:
    """The environment wins over the file."""
    config = parse_config("[server]\nport = 1\n", "c.toml", {"FEEDFIX_SERVER__PORT": "2"})
    assert config.server.port == 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FEEDFIX_SERVER__PROT": "1"},
         "environment variable FEEDFIX_SERVER__PROT: no such setting [server] prot"),
        ({"FEEDFIX_NOPE__PORT": "1"},
         "environment variable FEEDFIX_NOPE__PORT: no such setting [nope] port"),
        ({"FEEDFIX_RULES__DISABLE": "[]"},
         "environment variable FEEDFIX_RULES__DISABLE: no such setting [rules] disable"),
        ({"FEEDFIX_SERVER__PORT": "x"},
         "server.port (set by FEEDFIX_SERVER__PORT): expected a whole number from 0 to 65535, "
         "got 'x'"),
        ({"FEEDFIX_POLL__CLEANER": "fork"},
         "poll.cleaner (set by FEEDFIX_POLL__CLEANER): expected one of 'thread', 'process', "
         "got 'fork'"),
    ],
)  # fmt: skip
def test_a_bad_environment_override_names_the_variable(env: dict[str, str], message: str) -> None:
    """An unknown variable, or a bad value in one, is an error that names the variable."""
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(), "c.toml", env)
    assert str(caught.value) == f"c.toml: {message}"


# ---- the schema, said once -------------------------------------------------------------------


def test_every_key_of_the_schema_is_documented_in_the_example() -> None:
    """config.example.toml documents every key (set or commented out) and parses."""
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, re.M))
    for section, checks in SECTION_KEYS.items():
        missing = set(checks) - documented
        assert not missing, f"[{section}] keys missing from config.example.toml: {missing}"
    assert parse_config(text, "config.example.toml").feeds


def test_the_keys_are_the_dataclass_fields() -> None:
    """What a section accepts is read off its dataclass: every field but the feed's own."""
    own = {"name", "url", "path", "rules", "title", "link", "id", "permalink"}
    assert set(FEED_KEYS) == {f.name for f in fields(FeedConfig)} - own
    assert set(FEED_KEYS) < set(SECTION_KEYS["poll"])


def test_effective_config_fills_every_default() -> None:
    """check-config's view: every key of every section, and each feed's active rules."""
    view = effective(parse_config(_config("[feeds.rules.limit]\ncount = 2\n")))
    assert set(view["server"]) == set(SECTION_KEYS["server"])
    assert set(view["poll"]) == set(SECTION_KEYS["poll"])
    assert view["poll"]["headers"] == {}
    assert view["feeds"][0]["name"] == "z"
    assert "limit" in view["feeds"][0]["rules"] and "limit" not in view["rules"]


def test_effective_config_shows_each_rules_options() -> None:
    """check-config shows every active rule with the options set for it, [rules]' and the
    feed's own laid over them, in running order."""
    text = (
        "[rules.drop-empty-junk]\nselectors = ['#x']\n"
        "[[feeds]]\nname = 'z'\nurl = 'http://127.0.0.1:1/f'\n"
        "[feeds.rules.limit]\ncount = 2\n"
    )
    view = effective(parse_config(text))
    assert view["rules"]["drop-empty-junk"] == {"selectors": ["#x"]}
    assert view["rules"]["sanitize"] == {}
    assert list(view["feeds"][0]["rules"]) == [
        "limit", "unwrap-proxies", "fix-lazy-images", "sanitize", "drop-empty-junk"
    ]  # fmt: skip
    assert view["feeds"][0]["rules"]["limit"] == {"count": 2}
    assert view["feeds"][0]["rules"]["drop-empty-junk"] == {"selectors": ["#x"]}


def test_a_duration_in_a_string_without_a_unit_is_seconds() -> None:
    """``interval = "10"`` is 10 s, as the message ("a number of seconds") promises."""
    assert parse_config(_config('interval = "10"\n')).feeds[0].interval == 10
    assert parse_duration(" 2.5 ", "k") == 2.5


def test_no_feeds_is_a_warning() -> None:
    """A config without feeds parses (check-config can still show it) but warns."""
    assert parse_config("[server]\nport = 8080\n").warnings == (
        "no feeds configured: add a [[feeds]] table with a name and a url or a path",
    )


def test_a_relative_path_starts_at_the_config_files_folder() -> None:
    """``path`` relative: from ``base_dir`` (the config file's folder); absolute: as it is;
    ``feedfix:…``: inside the installed package, wherever the config lives."""
    text = (
        "[[feeds]]\nname = 'a'\npath = 'posts'\n"
        "[[feeds]]\nname = 'b'\npath = '/srv/feed.xml'\n"
        "[[feeds]]\nname = 'c'\npath = 'feedfix:examples/zaker-channel.rss.xml'\n"
    )
    a, b, c = parse_config(text, "c.toml", base_dir="/etc/feedfix").feeds
    assert (a.path, a.url, a.source) == ("/etc/feedfix/posts", None, "/etc/feedfix/posts")
    assert b.path == "/srv/feed.xml"
    assert c.path is not None and Path(c.path) == EXAMPLE
    assert Path(c.path).is_file()


def test_a_local_feed_may_poll_often_without_a_warning() -> None:
    """A short interval burdens no upstream when the source is a local path."""
    text = "[[feeds]]\nname = 'a'\npath = 'f.xml'\ninterval = '2s'\n"
    assert parse_config(text).warnings == ()


def test_short_interval_is_accepted_with_a_warning() -> None:
    """Any interval of at least a second works; under a minute it warns."""
    config = parse_config(_config('interval = "1s"\n'))
    assert config.feeds[0].interval == 1
    assert config.warnings == (
        "feeds[0].interval: 1 s is short; polling more than once a minute burdens the upstream "
        "(and an upstream's <ttl> or Cache-Control max-age may lengthen it, up to [poll] "
        "max_backoff)",
    )
    assert parse_config(_config('interval = "10m"\n')).warnings == ()


# ---- the rule spec ---------------------------------------------------------------------------


def test_per_feed_rules_add_to_the_global_rules() -> None:
    """[feeds.rules] adds options to [rules]; its disable list replaces the global one."""
    text = '[rules]\ndisable = ["remove"]\n[rules.limit]\ncount = 5\n[rules.filter]\ndrop = "x"\n'
    feed = parse_config(
        text + _config('[feeds.rules]\ndisable = ["sanitize"]\n[feeds.rules.limit]\ncount = 2\n')
    ).feeds[0]
    assert feed.rules.table() == {
        "limit": {"count": 2},
        "filter": {"drop": "x"},
        "disable": ["sanitize"],
    }
    names = ruleset(feed.rules).names
    assert "sanitize" not in names and {"limit", "filter"} <= set(names)


def test_the_spec_hashes_pickles_and_equal_specs_share_one_rule_set() -> None:
    """A spec is plain frozen data: it hashes, survives pickling (to a worker process) equal,
    and equal specs, from two feeds or from a pickle, get the very same built rules."""
    config_text = (
        "[rules.remove]\nselectors = ['.ad']\n" + _config() + '[[feeds]]\nname = "y"\n'
        'url = "http://127.0.0.1:9/y"\n'
    )
    config = parse_config(config_text)
    first, second = (feed.rules for feed in config.feeds)
    assert first == second == config.rules and hash(first) == hash(second)
    copy = pickle.loads(pickle.dumps(first))  # noqa: S301 (bytes it just made)
    assert copy == first and copy is not first
    assert ruleset(copy) is ruleset(first) is ruleset(second)
    assert "remove" in ruleset(first).names
    feed = config.feeds[0]
    assert pickle.loads(pickle.dumps(feed)) == feed  # noqa: S301 (bytes it just made)
    assert hash(feed) == hash(parse_config(config_text).feeds[0])


def test_a_changed_option_is_a_different_spec_with_other_rules() -> None:
    """Specs differ when an option does, and so do their rule sets and fingerprints."""
    three = RuleSpec.from_table({"limit": {"count": 3}})
    four = RuleSpec.from_table({"limit": {"count": 4}})
    assert three != four and ruleset(three) is not ruleset(four)
    assert three.fingerprint != four.fingerprint


def test_the_fingerprint_keeps_its_stored_form() -> None:
    """The fingerprint goes into every archived entry's source hash: its form is the one
    stored before the spec existed, or every feed would be re-cleaned and refetched once."""
    spec = RuleSpec.from_table({"limit": {"count": 3}, "remove": {"selectors": [".a", ".b"]}})
    old_options = {"limit": {"count": 3}, "remove": {"selectors": [".a", ".b"]}, "disable": []}
    assert spec.fingerprint == repr(sorted((k, repr(v)) for k, v in old_options.items()))
    assert RuleSpec().fingerprint == "[('disable', '[]')]"


def test_the_rule_set_cache_has_a_limit() -> None:
    """At most RULESET_CACHE built sets are kept: one more evicts the oldest."""
    ruleset.cache_clear()
    oldest_spec = RuleSpec.from_table({"limit": {"count": 0}})
    oldest = ruleset(oldest_spec)
    for count in range(1, RULESET_CACHE + 1):
        newest = RuleSpec.from_table({"limit": {"count": count}})
    assert ruleset.cache_info().currsize == RULESET_CACHE
    assert ruleset(newest) is ruleset(newest)
    assert ruleset(oldest_spec) is not oldest  # evicted, so built again


def test_no_rule_disables_on_top_of_the_spec() -> None:
    """``convert --no-rule`` switches rules off over what the config says, and checks names."""
    spec = RuleSpec.from_table({"disable": ["remove"]})
    assert spec.disabling(["sanitize"]).disabled == ("remove", "sanitize")
    assert "sanitize" not in build_ruleset(disabled=["sanitize"]).names
    with pytest.raises(ConfigError) as caught:
        spec.disabling(["sanitise"])
    assert str(caught.value) == f"--no-rule: unknown rule 'sanitise' (rules: {RULES})"


def test_a_redis_url_is_checked_and_its_password_never_shown() -> None:
    """``backend = "redis"`` needs a redis:// URL (given by FEEDFIX_STORAGE__URL here); the
    effective config (``check-config``) shows it without the password."""
    text = '[storage]\nbackend = "redis"\n'
    with pytest.raises(ConfigError, match=r"storage\.url: missing"):
        parse_config(text)
    with pytest.raises(ConfigError, match=r"storage\.url") as caught:
        parse_config(text + 'url = "http://:pw@h/"\n')
    assert "pw" not in str(caught.value)
    config = parse_config(text, "c.toml", {"FEEDFIX_STORAGE__URL": "rediss://u:s3cret@h:6380/1"})
    assert config.storage.url == "rediss://u:s3cret@h:6380/1"
    assert effective(config)["storage"]["url"] == "rediss://u:***@h:6380/1"
