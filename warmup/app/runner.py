"""The daemon's loop: tick, sleep until the next wake-up, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from warmup.app.dispatcher import Dispatcher
from warmup.core.errors import StoreError

__all__ = ["run_until_stopped"]

logger = logging.getLogger(__name__)


async def run_until_stopped(
    dispatcher: Dispatcher,
    stop: asyncio.Event,
    wake: asyncio.Event,
    *,
    max_sleep: timedelta = timedelta(seconds=1),
    grace: timedelta = timedelta(seconds=8),
    failure_pause: timedelta = timedelta(seconds=5),
) -> None:
    """Tick until ``stop`` is set; ``wake`` cuts a sleep short (calendar jobs).

    On stop, an in-flight tick gets ``grace`` to finish, then is cancelled (its
    claims go back to the queue in ``dispatcher.finish``).
    """
    clock = dispatcher.clock
    while not stop.is_set():
        tick = asyncio.create_task(dispatcher.tick())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({tick, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not tick.done():
            done, _ = await asyncio.wait({tick}, timeout=grace.total_seconds())
            if not done:
                logger.warning("stopping: cancelling the sends still in flight")
                tick.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tick
            stopper.cancel()
            break
        stopper.cancel()
        cap = max_sleep
        try:
            next_at = tick.result()
        except StoreError as exc:  # the database away: one line, no traceback
            logger.warning("tick failed; trying again in %s: %s", failure_pause, exc)
            next_at, cap = clock.now() + failure_pause, failure_pause
        except Exception:
            # Never let one bad tick (the database away, say) end the daemon.
            logger.exception("tick failed; trying again in %s", failure_pause)
            next_at, cap = clock.now() + failure_pause, failure_pause
        delay = (next_at - clock.now()).total_seconds()
        delay = min(max(delay, 0.0), cap.total_seconds())
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_either(stop, wake), timeout=delay)
    await dispatcher.finish()


async def _either(first: asyncio.Event, second: asyncio.Event) -> None:
    waits = {asyncio.create_task(first.wait()), asyncio.create_task(second.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
