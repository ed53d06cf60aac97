"""Recording a tick: attempts, recipients' new states, lanes, lane events and
day roll-ups, written in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from warmup.adapters.db.database import Database
from warmup.adapters.db.outbox import (
    insert_outcome_events,
    outcome_rows,
)
from warmup.adapters.db.rows import (
    DEADLINE_PASSED,
    QUEUED,
    SENDING,
    UNCLAIMED,
    lane_row,
    requeued_state,
    suppression_row,
)
from warmup.adapters.db.schema import (
    bounce_events,
    lane_days,
    lane_events,
    recipients,
)
from warmup.adapters.db.tick_statements import (
    insert_attempt,
    insert_suppression,
    lane_instants,
    sent,
    update_lanes,
)
from warmup.core.attempt import TickRecord
from warmup.core.model import RecipientState

__all__ = ["SQLRecording"]


class SQLRecording:
    """What one tick of the engine changed."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, tick: TickRecord, now: datetime) -> None:
        """Write one tick's attempts, recipient states, lanes and events at once."""
        if not tick:
            return
        # The bulk of nearly every tick (attempts, their recipients, new
        # suppressions, the outbox, the lanes) goes to the driver as one batch;
        # the rarer writes through SQLAlchemy, in the same transaction (no order
        # between them matters: each touches rows the others do not).
        bulk = self._sends(tick, now) + self._lanes(tick, now)
        if self.db.dialect == "sqlite" and not _rare_parts(tick):
            # Most ticks: the whole transaction in one trip to aiosqlite's thread.
            await self.db.sqlite_call(partial(_run_all, bulk), write=True)
            return
        async with self.db.begin() as conn:
            if bulk:
                await self.db.executemany_all(conn, bulk)
            await self._record_attempts(conn, tick, now)
            await self._record_lanes(conn, tick, now)

    async def _record_attempts(
        self, conn: AsyncConnection, tick: TickRecord, now: datetime
    ) -> None:
        await _settle(conn, tick.dropped, RecipientState.suppressed, now)
        await _settle(conn, tick.cancelled, RecipientState.cancelled, now)
        await _settle(
            conn, tick.late, RecipientState.expired, now, last_reply=DEADLINE_PASSED
        )
        await self._record_claims_returned(conn, tick, now)

    async def _record_claims_returned(
        self, conn: AsyncConnection, tick: TickRecord, now: datetime
    ) -> None:
        """Claims given back unsent: released to the queue or held until later."""
        if tick.released:
            # Only claims that are still ours: an expired one may be another's now.
            await conn.execute(
                update(recipients)
                .where(
                    recipients.c.id == bindparam("rid"),
                    recipients.c.state == SENDING,
                    recipients.c.claimed_until == bindparam("lease"),
                )
                .values(state=requeued_state(), updated_at=now, **UNCLAIMED),
                [{"rid": rid, "lease": lease} for rid, lease in tick.released],
            )
        if tick.held:
            await conn.execute(
                update(recipients)
                .where(
                    recipients.c.id == bindparam("rid"),
                    recipients.c.state == SENDING,
                    recipients.c.claimed_until == bindparam("lease"),
                )
                .values(
                    state=QUEUED,
                    next_attempt_at=bindparam("until"),
                    last_reply=bindparam("reason"),
                    updated_at=now,
                    **UNCLAIMED,
                ),
                [
                    {
                        "rid": h.recipient_id,
                        "lease": h.lease_until,
                        "until": h.until,
                        "reason": h.reason,
                    }
                    for h in tick.held
                ],
            )

    def _sends(self, tick: TickRecord, now: datetime) -> list[tuple[str, list[Any]]]:
        """The attempt rows, their recipients' new states and the outbox: the
        bulk of a tick, as driver statements.

        Values are converted once here (what SQLAlchemy would bind, per
        UTCDateTime), not through SQLAlchemy's per-row parameter processing:
        half the time on the event loop.
        """
        to_db = self.db.instant_binder()
        stamp = to_db(now)
        statements: list[tuple[str, list[Any]]] = []
        if tick.attempts:
            statements.append(
                self.db.bound(
                    "insert attempts",
                    insert_attempt,
                    [
                        {
                            "recipient_id": a.recipient_id,
                            "lane_id": a.lane_id,
                            "attempted_at": to_db(a.attempted_at),
                            "verdict": a.verdict,
                            "reason": a.reason,
                            "code": a.code,
                            "enhanced": a.enhanced,
                            "reply": a.reply[:2000],
                            "rule": a.rule,
                        }
                        for a in tick.attempts
                    ],
                )
            )
            owned = tick.claimer is not None
            statements.append(
                self.db.bound(
                    f"update sent recipients, owned={owned}",
                    partial(sent, owned=owned),
                    [
                        {
                            "rid": a.recipient_id,
                            "claimer": tick.claimer,
                            "new_state": a.decision.state.value,
                            "next_at": (
                                stamp
                                if a.decision.next_attempt_at is None
                                else to_db(a.decision.next_attempt_at)
                            ),
                            "count": a.attempts,
                            "lane": a.lane_id if a.decision.keep_lane else None,
                            "reply": a.reply[:500],
                            "now": stamp,
                        }
                        for a in tick.attempts
                    ],
                )
            )
        if tick.suppressions:  # a hard bounce's address: every few ticks
            statements.append(
                self.db.bound(
                    "insert suppressions",
                    partial(insert_suppression, self.db),
                    [
                        suppression_row(entry) | {"created_at": to_db(entry.created_at)}
                        for entry in tick.suppressions
                    ],
                )
            )
        outcomes = outcome_rows(tick, stamp, to_db)
        if outcomes:  # the outbox, in the outcome's own transaction
            statements.append(
                self.db.bound(
                    "insert outcome events",
                    partial(insert_outcome_events, self.db.dialect),
                    outcomes,
                )
            )
        return statements

    def _lanes(self, tick: TickRecord, now: datetime) -> list[tuple[str, list[Any]]]:
        """The lanes' rows (on nearly every tick), as a driver statement."""
        if not tick.lanes:
            return []
        to_db, day_to_db = self.db.instant_binder(), self.db.day_binder()
        stamp = to_db(now)
        rows = [
            {
                **lane_row(r.lane, r.allowance_per_hour, now),
                **{
                    name: None if value is None else to_db(value)
                    for name, value in lane_instants(r.lane).items()
                },
                "local_day": None if r.lane.day is None else day_to_db(r.lane.day),
                "updated_at": stamp,
                "lane": r.lane_id,
                "claimer": tick.claimer,
            }
            for r in tick.lanes.values()
        ]
        owned = tick.claimer is not None
        return [
            self.db.bound(
                f"update lanes, owned={owned}", partial(update_lanes, owned), rows
            )
        ]

    async def _record_lanes(
        self, conn: AsyncConnection, tick: TickRecord, now: datetime
    ) -> None:
        if tick.events:
            await conn.execute(
                lane_events.insert(),
                [
                    {
                        "lane_id": lane_id,
                        "at": e.at,
                        "cause": e.cause,
                        "old_state": e.old_state.value,
                        "new_state": e.new_state.value,
                        "reply": e.reply[:1000] or None,
                        "detail": e.detail,
                    }
                    for lane_id, e in tick.events
                ],
            )
        await self._record_reports_and_days(conn, tick, now)

    async def _record_reports_and_days(
        self, conn: AsyncConnection, tick: TickRecord, now: datetime
    ) -> None:
        """Late reports whose lane reaction is now applied, and the days closed."""
        if tick.late_reports_applied:
            await conn.execute(
                update(bounce_events)
                .where(bounce_events.c.id.in_(tick.late_reports_applied))
                .values(applied_at=now)
            )
        if tick.days:
            await conn.execute(
                self._upsert_day(),
                [
                    {
                        "lane_id": d.lane_id,
                        "day": d.day,
                        "ramp_day": d.ramp_day,
                        "allowance_per_hour": d.allowance_per_hour,
                        "planned": d.planned,
                        "attempted": d.stats.attempted,
                        "delivered": d.stats.delivered,
                        "soft": d.stats.soft,
                        "hard": d.stats.hard,
                        "throttle": d.stats.throttle,
                        "block": d.stats.block,
                        "complaints": d.stats.complaints,
                        "max_per_minute": d.max_per_minute,
                    }
                    for d in tick.days
                ],
            )

    def _upsert_day(self) -> Any:
        """A day written at shutdown is completed, not duplicated, when it closes."""
        statement = self.db.insert(lane_days)
        columns = (
            "ramp_day",
            "allowance_per_hour",
            "planned",
            "attempted",
            "delivered",
            "soft",
            "hard",
            "throttle",
            "block",
            "complaints",
            "max_per_minute",
        )
        return statement.on_conflict_do_update(
            index_elements=["lane_id", "day"],
            set_={name: statement.excluded[name] for name in columns},
        )


def _rare_parts(tick: TickRecord) -> bool:
    """Whether ``tick`` holds more than attempts, suppressions, the outbox and
    lanes."""
    return bool(
        tick.dropped
        or tick.cancelled
        or tick.late
        or tick.released
        or tick.held
        or tick.events
        or tick.late_reports_applied
        or tick.days
    )


def _run_all(statements: list[tuple[str, list[Any]]], conn: sqlite3.Connection) -> None:
    for sql, params in statements:
        conn.executemany(sql, params)


async def _settle(
    conn: AsyncConnection,
    ids: Sequence[int],
    state: RecipientState,
    now: datetime,
    **values: Any,
) -> None:
    """Give these recipients their final ``state`` and hand their claims back
    (dropped as suppressed, cancelled, or past their deadline)."""
    if ids:
        await conn.execute(
            update(recipients)
            .where(recipients.c.id.in_(ids))
            .values(state=state.value, updated_at=now, **values, **UNCLAIMED)
        )
