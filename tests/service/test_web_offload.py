"""The pages' worker (``web/offload.py``): work runs in another process, a job past the
deadline is stopped and the next one gets a new process, errors come back as raised."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from feedfix.service.web.inspector import inert
from feedfix.service.web.offload import Offload, TooSlow


def test_work_runs_elsewhere_and_a_slow_job_is_stopped() -> None:
    """Another pid answers; a job past the deadline is TooSlow at the deadline (not when
    it would have ended), and the worker that replaces it answers the next job."""

    async def check() -> None:
        offload = Offload(deadline=1.0)
        try:
            first = await offload.run(os.getpid)
            assert first != os.getpid()
            started = time.monotonic()
            with pytest.raises(TooSlow):
                await offload.run(time.sleep, 30)
            assert time.monotonic() - started < 10
            assert await offload.run(os.getpid) not in (first, os.getpid())
            with pytest.raises(ValueError, match="invalid literal"):
                await offload.run(int, "x")
        finally:
            await offload.close()

    asyncio.run(check())


def test_inert_renames_handlers_in_one_pass() -> None:
    """Every ``on…`` attribute of every tag, an unclosed last tag included; text is left
    alone; 100,000 unclosed ``<a`` cost one pass."""
    assert inert('<img src=x onerror=1 onload="y"> on <a/onclick=2>') == (
        '<img src=x data-inert-onerror=1 data-inert-onload="y"> on <a/data-inert-onclick=2>'
    )
    assert inert("<a <b onclick=1") == "<a <b data-inert-onclick=1"
    started = time.process_time()
    inert("<a " * 100_000)
    assert time.process_time() - started < 1.0
