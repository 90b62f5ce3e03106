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


def _job(extra: str = "", *, now: float = NOW, made: Cleaned | None = None) -> Job:
    """A job of feed ``z``; after ``made``, with the archive the store then holds and the
    output it serves (as the service sends them)."""
    feed = parse_config(f'[[feeds]]\nname = "z"\nurl = "http://127.0.0.1:9/z"\n{extra}').feeds[0]
    archive = dict(made.archive.changed) if made is not None else {}
    served = made.published if made is not None else None
    return Job(feed=feed, data=_feed(range(5)), now=now, self_url=None, encoding_hint=None,
               served=served, resend=False, archive=archive)  # fmt: skip


def _clean(worker: Worker, job: Job) -> Cleaned:
    return asyncio.run(worker.republish(job))


def test_entries_come_back_from_the_archive_each_job_brings() -> None:
    """The worker keeps no archive: a job with the stored archive reuses every entry, the
    same job without it cleans every entry again (in the same worker)."""
    worker = Worker()
    try:
        made = _clean(worker, _job())
        assert (made.cleaned, made.reused) == (5, 0)
        assert _clean(worker, _job(now=NOW + 60, made=made)).reused == 5
        assert _clean(worker, _job(now=NOW + 60)).cleaned == 5
    finally:
        worker.close()


def test_two_workers_share_no_rendering() -> None:
    """A worker copies unchanged entries' bytes only from its own last rendering: another
    worker given the same job renders every entry (with module globals it copied them)."""
    first, second = Worker(), Worker()
    try:
        made = _clean(first, _job())
        assert _clean(first, _job(now=NOW + 60, made=made)).rendered == 0
        assert _clean(second, _job(now=NOW + 60, made=made)).rendered == 5
    finally:
        first.close()
        second.close()


def test_forget_drops_only_that_workers_rendering() -> None:
    """``forget`` drops the feed's last rendering: the next job renders every entry again,
    while another worker's rendering stays."""
    worker, other = Worker(), Worker()
    try:
        made = _clean(worker, _job())
        kept = _clean(other, _job())
        asyncio.run(worker.forget("z"))
        assert _clean(worker, _job(now=NOW + 60, made=made)).rendered == 5
        assert _clean(other, _job(now=NOW + 60, made=kept)).rendered == 0
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
