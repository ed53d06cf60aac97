"""Writing a tick's record while the database may be away.

The record's sends have happened: left unwritten they would stay ``sending``
and go out again after a restart. So it is written again, with backoff on the
injected clock (1 s, 2 s, … at most 30 s), until it is stored; meanwhile the
dispatcher sends nothing else. One line is logged when the database goes (a
reminder every ten tries) and one when it is back.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from warmup.app.ports import Clock, EngineStore
from warmup.core.attempt import TickRecord
from warmup.core.errors import StoreError

__all__ = ["record_until_stored"]

logger = logging.getLogger(__name__)

RETRY_FIRST = 1.0
RETRY_MAX = 30.0
REMIND_EVERY = 10  # failed tries between reminders (~5 min at the cap)


class FailureCount(Protocol):
    record_failures: int


async def record_until_stored(
    store: EngineStore,
    clock: Clock,
    record: TickRecord,
    now: datetime,
    counts: FailureCount,
) -> None:
    """``store.record(record, now)``, again after each StoreError until it is
    stored; each failure adds one to ``counts.record_failures``."""
    delay, failures = RETRY_FIRST, 0
    while True:
        try:
            await store.record(record, now)
        except StoreError as exc:
            failures += 1
            counts.record_failures += 1
            if failures == 1:
                logger.error(
                    "%s; retrying until the database is back (%d sends held)",
                    exc,
                    len(record.attempts),
                )
            elif failures % REMIND_EVERY == 0:
                logger.error(
                    "still cannot record the tick (%d tries): %s", failures, exc
                )
            await clock.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            continue
        if failures:
            logger.warning("tick recorded after %d failed tries", failures)
        return
