"""APScheduler smoke test: the calendar jobs exist and wake the run loop."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from warmup.adapters.scheduler import CalendarJobs
from warmup.core.lanes.schedule import RampStep, Schedule, Window

STEP = (RampStep(first_day=1, last_day=1, per_hour=1),)


async def test_jobs_are_registered_and_the_beat_wakes_the_loop() -> None:
    schedules = [
        Schedule(isp="gmail", window=Window(start=time(1), end=time(5)), steps=STEP),
        Schedule(isp="default", steps=STEP),  # all day: no window jobs
    ]
    jobs = CalendarJobs(
        tz=ZoneInfo("Asia/Tokyo"), schedules=schedules, beat=timedelta(seconds=0.05)
    )
    assert jobs.job_names() == [
        "day-boundary",
        "maintenance",
        "window-close:gmail",
        "window-open:gmail",
    ]
    jobs.start()
    try:
        await asyncio.wait_for(jobs.wake.wait(), timeout=5)  # bounded
    finally:
        jobs.shutdown()
    assert jobs.fired["maintenance"] >= 1


async def test_a_daily_job_is_registered_at_its_local_time() -> None:
    tz = ZoneInfo("Asia/Tokyo")
    jobs = CalendarJobs(tz=tz, schedules=[], beat=timedelta(minutes=1))
    runs: list[int] = []

    async def work() -> None:
        runs.append(1)

    jobs.daily("reputation-fetch", time(7, 0), work)
    assert "reputation-fetch" in jobs.job_names()
    jobs.start()
    try:
        job = jobs._scheduler.get_job("reputation-fetch")
        fire_at = job.next_run_time.astimezone(tz)
        assert (fire_at.hour, fire_at.minute, fire_at.second) == (7, 0, 0)
    finally:
        jobs.shutdown()
    assert runs == []  # nothing runs before its time
