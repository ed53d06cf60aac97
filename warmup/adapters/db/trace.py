"""The whole story of one address, from every table that holds a part of it
(``warmup trace``): each queueing, attempt, late report and suppression as a step
in time order."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from warmup.adapters.db.database import Database
from warmup.adapters.db.schema import (
    attempts,
    bounce_events,
    campaigns,
    events,
    lanes,
    messages,
    recipients,
    suppressions,
)
from warmup.app.store_rows import TraceStep
from warmup.core.recipients.suppression import lookup_keys

__all__ = ["SQLTrace"]


def _step(at: Any, step: str, detail: str, **fields: Any) -> TraceStep:
    # The fields are TraceStep's own (a test compares every step's keys).
    return cast(TraceStep, {"at": at, "step": step, "detail": detail, **fields})


class SQLTrace:
    """One address's history, step by step."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def trace(self, address: str) -> list[TraceStep]:
        """Every step known for ``address`` (normalised), oldest first."""
        async with self.db.connect() as conn:
            steps = await _queued(conn, address)
            steps += await _attempts(conn, address)
            steps += await _reports(conn, address)
            steps += await _suppressions(conn, address)
            steps += await _events(conn, address)
        return sorted(steps, key=lambda s: (s["at"], s["order"]))


async def _queued(conn: AsyncConnection, address: str) -> list[TraceStep]:
    query = (
        select(
            recipients,
            campaigns.c.name.label("campaign"),
            messages.c.mail_from,
            messages.c.auth_user,
        )
        .join(campaigns, campaigns.c.id == recipients.c.campaign_id)
        .outerjoin(messages, messages.c.id == recipients.c.message_id)
        .where(recipients.c.address == address)
    )
    steps = []
    for row in (await conn.execute(query)).all():
        how = (
            f"submitted by {row.auth_user or 'an allowed client'} "
            f"(envelope sender {row.mail_from})"
            if row.message_id is not None
            else "enqueued"
        )
        deadline = (
            f", deadline {row.deadline_at.isoformat()}" if row.deadline_at else ""
        )
        steps.append(
            _step(
                row.queued_at,
                "submitted" if row.message_id is not None else "enqueued",
                f"{how} to campaign {row.campaign}{deadline}; now {row.state}",
                order=0,
                campaign=row.campaign,
                recipient_id=row.id,
                state=row.state,
                last_reply=row.last_reply,
            )
        )
    return steps


async def _attempts(conn: AsyncConnection, address: str) -> list[TraceStep]:
    query = (
        select(attempts, lanes.c.ip, lanes.c.isp)
        .join(recipients, recipients.c.id == attempts.c.recipient_id)
        .outerjoin(lanes, lanes.c.id == attempts.c.lane_id)
        .where(recipients.c.address == address)
    )
    return [
        _step(
            row.attempted_at,
            "attempt",
            f"from {row.ip} to {row.isp}: {row.verdict} ({row.reason}) {row.reply}",
            order=1,
            recipient_id=row.recipient_id,
            ip=row.ip,
            isp=row.isp,
            verdict=row.verdict,
            reason=row.reason,
            reply=row.reply,
        )
        for row in (await conn.execute(query)).all()
    ]


async def _reports(conn: AsyncConnection, address: str) -> list[TraceStep]:
    query = select(bounce_events).where(bounce_events.c.address == address)
    return [
        _step(
            row.received_at,
            "late_report",
            (
                f"{row.kind} {row.status} {row.verdict} ({row.reason}) from "
                f"{row.source}: {row.outcome}"
            ),
            order=2,
            recipient_id=row.recipient_id,
            verdict=row.verdict,
            reason=row.reason,
            status=row.status,
            reply=row.reply,
            outcome=row.outcome,
            found_by=row.found_by,
        )
        for row in (await conn.execute(query)).all()
    ]


async def _suppressions(conn: AsyncConnection, address: str) -> list[TraceStep]:
    keys = sorted(lookup_keys([address]))  # the address and its @domain
    query = select(suppressions).where(suppressions.c.address.in_(keys))
    return [
        _step(
            row.created_at,
            "suppressed",
            f"{row.address} suppressed ({row.reason}, source {row.source})",
            order=3,
            reason=row.reason,
            source=row.source,
        )
        for row in (await conn.execute(query)).all()
    ]


async def _events(conn: AsyncConnection, address: str) -> list[TraceStep]:
    query = select(events).where(events.c.recipient == address)
    return [
        _step(
            row.at,
            "event",
            f"outcome event {row.id}: {row.type} ({row.source})",
            order=4,
            event_id=row.id,
            type=row.type,
            source=row.source,
        )
        for row in (await conn.execute(query)).all()
    ]
