"""The store's side of asynchronous bounces and complaints (``bounce_events``).

Saving a report and its effects on the recipient (suppression, bounced, retry) is
one transaction per batch, and only reports whose key is new act: ingesting the
same mail twice changes nothing the second time. The lane's reaction is left
pending (``applied_at`` NULL) for the node that sends on that lane.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from warmup.adapters.db.database import Database
from warmup.adapters.db.outbox import insert_recipient_events
from warmup.adapters.db.rows import suppression_row
from warmup.adapters.db.schema import (
    attempts,
    bounce_events,
    lane_events,
    lanes,
    recipients,
    suppressions,
)
from warmup.app.store_rows import LateReportRow
from warmup.core.bounces.late import (
    Effect,
    LateReport,
    PendingLateReport,
    SentRecipient,
)
from warmup.core.event import report_event
from warmup.core.model import RecipientState, Verdict

__all__ = ["SQLLateReports"]

_DELIVERED = RecipientState.delivered.value
# Lanes per IN (...) when rebuilding rolling windows (lane_windows).
_LANES_PER_QUERY = 500


class SQLLateReports:
    """Asynchronous bounces and complaints and their effects."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def sent_recipient(self, recipient_id: int) -> SentRecipient | None:
        """The recipient and the lane of its latest delivered send (else latest)."""
        return await self._sent(recipients.c.id == recipient_id)

    async def latest_sent_to(
        self, address: str, since: datetime
    ) -> SentRecipient | None:
        """The latest recipient row for ``address`` with a send since ``since``."""
        return await self._sent(
            recipients.c.address == address,
            attempts.c.attempted_at >= since,
        )

    async def _sent(self, *where: Any) -> SentRecipient | None:
        delivered_first = case((attempts.c.verdict == _DELIVERED, 1), else_=0)
        query = (
            select(
                recipients.c.id,
                recipients.c.address,
                recipients.c.domain,
                recipients.c.state,
                recipients.c.attempts,
                recipients.c.queued_at,
                attempts.c.lane_id,
                attempts.c.attempted_at,
            )
            .select_from(
                recipients.outerjoin(
                    attempts, attempts.c.recipient_id == recipients.c.id
                )
            )
            .where(*where)
            .order_by(
                recipients.c.id.desc(), delivered_first.desc(), attempts.c.id.desc()
            )
            .limit(1)
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return SentRecipient(
            id=row.id,
            address=row.address,
            domain=row.domain,
            state=RecipientState(row.state),
            attempts=row.attempts,
            queued_at=row.queued_at,
            lane_id=row.lane_id,
            attempted_at=row.attempted_at,
        )

    async def save_late_reports(
        self, events: Sequence[LateReport], now: datetime
    ) -> list[bool]:
        """Save each event whose key is new and apply its recipient effects; one
        flag per event: whether it was new."""
        async with self.db.begin() as conn:
            if self.db.dialect == "sqlite" and len(events) > 1:
                return await self._save_many(conn, events, now)
            fresh = [await self._save_one(conn, event, now) for event in events]
        return fresh

    async def _save_many(
        self, conn: AsyncConnection, events: Sequence[LateReport], now: datetime
    ) -> list[bool]:
        """The same for a batch on SQLite, in a few statements instead of two per
        report: the write transaction is the only writer (BEGIN IMMEDIATE), so
        the keys read here are the keys there are; a key twice in the batch
        acts once, as one by one."""
        known = select(bounce_events.c.key).where(
            bounce_events.c.key.in_({event.key for event in events})
        )
        seen = set((await conn.execute(known)).scalars())
        fresh = []
        for event in events:
            fresh.append(event.key not in seen)
            seen.add(event.key)
        new = [event for event, is_new in zip(events, fresh, strict=True) if is_new]
        if not new:
            return fresh
        await conn.execute(insert(bounce_events), [_event_row(e, now) for e in new])
        rows = [suppression_row(e.suppression) for e in new if e.suppression]
        if rows:
            await conn.execute(
                self.db.insert(suppressions).on_conflict_do_nothing(
                    index_elements=["address"]
                ),
                rows,
            )
        for event in new:
            await self._apply_state(conn, event, now)
        return fresh

    async def _save_one(
        self, conn: AsyncConnection, event: LateReport, now: datetime
    ) -> bool:
        insert_ = self.db.insert(bounce_events).values(**_event_row(event, now))
        # RETURNING, not rowcount: only a row actually inserted comes back,
        # on both backends.
        inserted = await conn.execute(
            insert_.on_conflict_do_nothing(index_elements=["key"]).returning(
                bounce_events.c.id
            )
        )
        if inserted.first() is None:
            return False
        kind = report_event(event.effect)
        if kind is not None and event.recipient_id is not None:
            await conn.execute(
                insert_recipient_events(
                    kind,
                    event.received_at,
                    _text(event.source, 512),
                    _text(event.reply, 2000),
                    recipients.c.id == event.recipient_id,
                    status=_text(event.status, 16),
                    reason=_text(event.reason, 32),
                    lane_id=event.lane_id,
                )
            )
        if event.suppression is not None:
            await conn.execute(
                self.db.insert(suppressions)
                .values(**suppression_row(event.suppression))
                .on_conflict_do_nothing(index_elements=["address"])
            )
        await self._apply_state(conn, event, now)
        return True

    async def _apply_state(
        self, conn: AsyncConnection, event: LateReport, now: datetime
    ) -> None:
        """The recipient's new state, if the report sets one."""
        if event.new_state is not None and event.recipient_id is not None:
            values: dict[str, Any] = {
                "state": event.new_state.value,
                "updated_at": now,
                "last_reply": _text(event.reply, 500),
            }
            if event.next_attempt_at is not None:
                values["next_attempt_at"] = event.next_attempt_at
                values["lane_id"] = None
            await conn.execute(
                update(recipients)
                .where(
                    recipients.c.id == event.recipient_id,
                    recipients.c.state == event.from_state.value,
                )
                .values(**values)
            )

    async def pending_late_reports(
        self, ips: Sequence[str], limit: int = 1000
    ) -> list[PendingLateReport]:
        """Saved reports about sends from ``ips`` whose lane reaction is still to
        be applied, oldest first."""
        if not ips:
            return []
        query = (
            select(
                bounce_events.c.id,
                bounce_events.c.lane_id,
                lanes.c.ip,
                lanes.c.isp,
                bounce_events.c.verdict,
                bounce_events.c.reply,
            )
            .join(lanes, lanes.c.id == bounce_events.c.lane_id)
            .where(lanes.c.ip.in_(list(ips)), bounce_events.c.applied_at.is_(None))
            .order_by(bounce_events.c.id)
            .limit(limit)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            PendingLateReport(
                id=r.id,
                lane_id=r.lane_id,
                ip=r.ip,
                isp=r.isp,
                verdict=Verdict(r.verdict),
                reply=r.reply or "",
            )
            for r in rows
        ]

    async def lane_windows(
        self, lane_ids: Sequence[int], since: datetime
    ) -> dict[int, list[tuple[datetime, Verdict, bool]]]:
        """Each lane's outcomes after ``since`` and after its last rolling-rate
        reaction, oldest first: (instant, verdict, late?). Late ones are applied
        hard bounces and complaints (core.lanes.lane rule 7). Three queries per
        _LANES_PER_QUERY lanes, not three per lane (a node starting 1,600 lanes)."""
        windows: dict[int, list[tuple[datetime, Verdict, bool]]] = {}
        async with self.db.connect() as conn:
            step = _LANES_PER_QUERY
            for i in range(0, len(lane_ids), step):
                windows |= await self._windows(conn, lane_ids[i : i + step], since)
        for rows in windows.values():
            rows.sort(key=lambda row: row[0])
        return windows

    async def _windows(
        self, conn: AsyncConnection, lane_ids: Sequence[int], since: datetime
    ) -> dict[int, list[tuple[datetime, Verdict, bool]]]:
        reacted = await conn.execute(
            select(lane_events.c.lane_id, func.max(lane_events.c.at))
            .where(
                lane_events.c.lane_id.in_(lane_ids),
                lane_events.c.cause.in_(["step_back", "complaint_rate"]),
            )
            .group_by(lane_events.c.lane_id)
        )
        start = dict.fromkeys(lane_ids, since)
        for lane_id, at in reacted.all():
            if at is not None:
                start[lane_id] = max(since, at)
        earliest = min(start.values())
        sent = await conn.execute(
            select(
                attempts.c.lane_id, attempts.c.attempted_at, attempts.c.verdict
            ).where(
                attempts.c.lane_id.in_(lane_ids),
                attempts.c.attempted_at > earliest,
            )
        )
        late = await conn.execute(
            select(
                bounce_events.c.lane_id,
                bounce_events.c.applied_at,
                bounce_events.c.verdict,
            ).where(
                bounce_events.c.lane_id.in_(lane_ids),
                bounce_events.c.applied_at > earliest,
                bounce_events.c.verdict.in_(
                    [Verdict.hard.value, Verdict.feedback.value]
                ),
                bounce_events.c.outcome.in_(
                    [Effect.suppress.value, Effect.complaint.value]
                ),
            )
        )
        windows: dict[int, list[tuple[datetime, Verdict, bool]]] = {
            lane_id: [] for lane_id in lane_ids
        }
        for rows, is_late in ((sent.all(), False), (late.all(), True)):
            for lane_id, at, verdict in rows:
                if at > start[lane_id]:
                    windows[lane_id].append((at, Verdict(verdict), is_late))
        return windows

    async def late_report_rows(self) -> list[LateReportRow]:
        """Every saved report, oldest first (for reports and tests)."""
        query = select(bounce_events).order_by(bounce_events.c.id)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        # bounce_events' columns are LateReportRow's keys (a test checks).
        return [cast(LateReportRow, dict(r._mapping)) for r in rows]


def _event_row(event: LateReport, now: datetime) -> dict[str, Any]:
    return {
        "key": event.key,
        "received_at": event.received_at,
        "source": _text(event.source, 512),
        "kind": _text(event.kind, 16),
        "address": _text(event.address, 320),
        "action": _text(event.action, 16),
        "status": _text(event.status, 16),
        "verdict": event.verdict.value,
        "reason": _text(event.reason, 32),
        "reply": _text(event.reply, 2000),
        "found_by": event.found_by.value if event.found_by else None,
        "recipient_id": event.recipient_id,
        "attempt": event.attempt,
        "lane_id": event.lane_id,
        "outcome": event.effect.value,
        "applied_at": None if event.lane_pending else now,
    }


def _text(value: str, limit: int) -> str:
    """Text from a report as both backends store it: PostgreSQL refuses NUL, and
    neither driver encodes the surrogates of undecodable bytes."""
    cleaned = value.replace("\x00", "")
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    return cleaned[:limit]
