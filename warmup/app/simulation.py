"""Driving the dispatcher on a virtual clock: weeks of warm-up in seconds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from warmup.app.clock import VirtualClock
from warmup.app.dispatcher import Dispatcher

__all__ = ["simulate"]


async def simulate(
    dispatcher: Dispatcher,
    clock: VirtualClock,
    *,
    until: datetime,
    quantum: timedelta,
    on_step: Callable[[datetime], None] | None = None,
    between: Callable[[datetime], Awaitable[object]] | None = None,
    max_steps: int = 1_000_000,
) -> int:
    """Tick until ``until``; returns the number of ticks.

    Time moves by at least ``quantum`` per tick (the dispatcher catches up the
    slots in between, each stamped with its own instant) or straight to the
    dispatcher's next wake-up when that is later. ``between`` runs after each
    step (the demo reads its bounce mailbox there). Bounded by ``max_steps``.
    """
    for step in range(max_steps):
        now = clock.now()
        if now >= until:
            return step
        wake = await dispatcher.tick()
        clock.advance_to(min(max(wake, now + quantum), until))
        if on_step is not None:
            on_step(clock.now())
        if between is not None:
            await between(clock.now())
    raise RuntimeError(
        f"simulation did not reach {until.isoformat()} in {max_steps} steps"
    )
