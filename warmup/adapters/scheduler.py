"""Calendar jobs on APScheduler 3.x (the only module that imports it).

Each node runs its own AsyncIOScheduler with the in-memory job store (sharing a
3.x job store across nodes is not supported). The jobs do no work themselves:
they wake the run loop at calendar instants — local midnight, every window's
opening and closing, and a periodic maintenance beat (lease sweep, retries due,
routing) — and the dispatcher does the rest on its next tick. The one job that
work themselves are added with :meth:`CalendarJobs.every` (the bounce mailbox
poll, the DNS re-check) and :meth:`CalendarJobs.daily` (the reputation fetch).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import time, timedelta, tzinfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from warmup.core.lanes.schedule import Schedule

__all__ = ["CalendarJobs"]

logger = logging.getLogger(__name__)


class CalendarJobs:
    """Sets ``wake`` at each calendar instant; ``fired`` counts jobs by name."""

    def __init__(
        self, *, tz: tzinfo, schedules: Iterable[Schedule], beat: timedelta
    ) -> None:
        self.wake = asyncio.Event()
        self.fired: dict[str, int] = {}
        self._tz = tz
        self._scheduler = AsyncIOScheduler(timezone=tz)
        self._add("day-boundary", CronTrigger(hour=0, minute=0, timezone=tz))
        self._add("maintenance", IntervalTrigger(seconds=beat.total_seconds()))
        for schedule in schedules:
            window = schedule.window
            if window.all_day:
                continue
            for edge, moment in (("open", window.start), ("close", window.end)):
                trigger = CronTrigger(
                    hour=moment.hour, minute=moment.minute, timezone=tz
                )
                self._add(f"window-{edge}:{schedule.isp}", trigger)

    def _add(self, name: str, trigger: object) -> None:
        self._scheduler.add_job(
            self._fire,
            trigger,
            args=[name],
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=60,
        )

    async def _fire(self, name: str) -> None:
        self.fired[name] = self.fired.get(name, 0) + 1
        if not name.startswith("maintenance"):
            logger.info("calendar: %s", name)
        self.wake.set()

    def every(
        self, name: str, interval: timedelta, work: Callable[[], Awaitable[object]]
    ) -> None:
        """Run ``work`` every ``interval``; a failure is
        logged and the job runs again at its next turn."""
        trigger = IntervalTrigger(seconds=interval.total_seconds())
        self._add_work(name, trigger, work, f"in {interval}")

    def daily(self, name: str, at: time, work: Callable[[], Awaitable[object]]) -> None:
        """Run ``work`` every day at ``at`` (the scheduler's time zone); a
        failure is logged and the job runs again the next day."""
        trigger = CronTrigger(hour=at.hour, minute=at.minute, timezone=self._tz)
        self._add_work(name, trigger, work, "tomorrow")

    def _add_work(
        self,
        name: str,
        trigger: object,
        work: Callable[[], Awaitable[object]],
        again: str,
    ) -> None:
        async def run() -> None:
            self.fired[name] = self.fired.get(name, 0) + 1
            try:
                await work()
            except Exception:
                logger.exception("job %s failed; trying again %s", name, again)

        self._scheduler.add_job(
            run,
            trigger,
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=60,
        )

    def job_names(self) -> list[str]:
        return sorted(job.id for job in self._scheduler.get_jobs())

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
