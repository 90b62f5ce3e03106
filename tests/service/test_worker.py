"""The cleaning worker in-process: its state belongs to the worker object, jobs pickle.

The subprocess suites (test_worker_process, test_liveness) run the worker as a user does;
these check, in milliseconds, what they cannot see: that two workers share nothing, and that
a job is plain data that crosses to a worker process as it is.
"""

from __future__ import annotations

import asyncio
import pickle

from feedfix.config import parse_config
from feedfix.service.poll.worker import Cleaned, Job, Worker

NOW = 1_700_000_000.0


def _feed(items: range) -> bytes:
    body = "".join(
        f"<item><title>item {i}</title><guid>urn:item:{i}</guid>"
        f"<pubDate>Mon, {1 + i:02d} Aug 2022 10:00:00 GMT</pubDate>"
        f"<description>&lt;p&gt;text {i}&lt;/p&gt;</description></item>"
        for i in items
    )
    return f'<rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


def _job(extra: str = "", *, now: float = NOW) -> Job:
    feed = parse_config(f'[[feeds]]\nname = "z"\nurl = "http://127.0.0.1:9/z"\n{extra}').feeds[0]
    return Job(feed=feed, data=_feed(range(5)), now=now, self_url=None, encoding_hint=None,
               served=None, resend=False)  # fmt: skip


def _clean(worker: Worker, job: Job) -> Cleaned:
    return asyncio.run(worker.republish(job))


def test_two_workers_share_no_archive() -> None:
    """What one worker has cleaned is not another's archive: each keeps its own state
    (with module globals, the second worker reused the first one's entries)."""
    first, second = Worker(), Worker()
    try:
        assert _clean(first, _job()).cleaned == 5
        assert _clean(first, _job(now=NOW + 60)).reused == 5
        fresh = _clean(second, _job())
        assert (fresh.cleaned, fresh.reused) == (5, 0)
    finally:
        first.close()
        second.close()


def test_forget_and_seed_reach_only_their_worker() -> None:
    """``forget`` drops the feed's archive (all is cleaned again); ``seed`` hands one over."""
    worker, other = Worker(), Worker()
    try:
        made = _clean(worker, _job())
        asyncio.run(worker.forget("z"))
        assert _clean(worker, _job(now=NOW + 60)).reused == 0
        asyncio.run(other.seed({"z": dict(made.archive.changed)}))
        assert _clean(other, _job(now=NOW + 60)).reused == 5
    finally:
        worker.close()
        other.close()


def test_changed_rule_options_re_clean_every_entry() -> None:
    """A job whose feed's rule spec changed re-cleans what it had reused before."""
    worker = Worker()
    try:
        _clean(worker, _job())
        changed = _clean(worker, _job("[feeds.rules.remove]\nselectors = ['.ad']\n", now=NOW + 60))
        assert (changed.cleaned, changed.reused) == (5, 0)
    finally:
        worker.close()


def test_a_job_is_plain_data_that_pickles() -> None:
    """A job (its feed's rules as their frozen spec) crosses to a worker process unchanged."""
    job = _job("[feeds.rules.remove]\nselectors = ['.ad']\n")
    assert pickle.loads(pickle.dumps(job)) == job  # noqa: S301 (bytes it just made)
