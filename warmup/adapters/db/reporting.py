"""Read-only queries behind ``warmup status``, reports and the demo's checks.

They never write. The module-level functions keep the old call shape
(``campaign_summary(store)``) for the CLI.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import func, or_, select, text

from warmup.adapters.db.counts import counted
from warmup.adapters.db.database import Database
from warmup.adapters.db.rows import lane_from_row
from warmup.adapters.db.schema import (
    HELD_QUEUED,
    attempts,
    campaigns,
    lane_days,
    lane_events,
    lanes,
    recipient_counts,
    recipients,
    suppressions,
)
from warmup.app.store_rows import (
    CampaignCounts,
    HeldRow,
    LaneDayRow,
    LaneEventRow,
    LastEvent,
)
from warmup.core.lanes.lane import Lane
from warmup.core.model import RecipientState

if TYPE_CHECKING:
    from warmup.adapters.db.store import SQLStore

__all__ = ["SQLReporting", "campaign_summary", "held_messages", "last_events"]


def _last_event(row: Any) -> LastEvent:
    return LastEvent(
        at=row.at,
        cause=row.cause,
        old_state=row.old_state,
        new_state=row.new_state,
        reply=row.reply,
        detail=row.detail,
    )


def _counts(name: str, found: Counter[str]) -> CampaignCounts:
    queued, sending = found[RecipientState.queued], found[RecipientState.sending]
    return CampaignCounts(
        name=name,
        queued=queued,
        sending=sending,
        delivered=found[RecipientState.delivered],
        bounced=found[RecipientState.bounced],
        suppressed=found[RecipientState.suppressed],
        expired=found[RecipientState.expired],
        cancelled=found[RecipientState.cancelled],
        pending=queued + sending,
        total=sum(found[state] for state in RecipientState),
    )


class SQLReporting:
    """Lanes, their history and events, campaign counts: read back for people."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def lane_history(self) -> list[LaneDayRow]:
        """Every lane-day roll-up with its lane's ip and isp, oldest first."""
        query = (
            select(lanes.c.ip, lanes.c.isp, lane_days)
            .join(lanes, lanes.c.id == lane_days.c.lane_id)
            .order_by(lanes.c.ip, lanes.c.isp, lane_days.c.day)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        # The columns are LaneDayRow's keys (a test checks): no copy per field.
        return [cast(LaneDayRow, dict(row._mapping)) for row in rows]

    async def all_lanes(self) -> list[tuple[int, Lane, float]]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(lanes).order_by(lanes.c.id))).all()
        return [
            (int(r.id), lane_from_row(r), float(r.allowance_per_hour)) for r in rows
        ]

    async def all_events(self) -> list[LaneEventRow]:
        query = (
            select(
                lanes.c.ip,
                lanes.c.isp,
                lane_events.c.at,
                lane_events.c.cause,
                lane_events.c.old_state,
                lane_events.c.new_state,
                lane_events.c.detail,
                lane_events.c.reply,
            )
            .join(lanes, lanes.c.id == lane_events.c.lane_id)
            .order_by(lane_events.c.id)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            LaneEventRow(ip=row.ip, isp=row.isp, **_last_event(row)) for row in rows
        ]

    async def sent_to_suppressed(self) -> int:
        """Attempts made to an address suppressed *before* the attempt (must be 0)."""
        query = (
            select(func.count())
            .select_from(attempts)
            .join(recipients, recipients.c.id == attempts.c.recipient_id)
            .join(
                suppressions,
                or_(
                    suppressions.c.address == recipients.c.address,
                    suppressions.c.address == "@" + recipients.c.domain,
                ),
            )
            .where(suppressions.c.created_at < attempts.c.attempted_at)
        )
        async with self.db.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def last_events(self) -> dict[int, LastEvent]:
        """The newest lane event of every lane that has one, keyed by lane id.

        Each value has ``at``, ``cause``, ``old_state``, ``new_state``, ``reply``
        and ``detail``.
        """
        newest = (
            select(func.max(lane_events.c.id).label("id"))
            .group_by(lane_events.c.lane_id)
            .subquery()
        )
        query = select(
            lane_events.c.lane_id,
            lane_events.c.at,
            lane_events.c.cause,
            lane_events.c.old_state,
            lane_events.c.new_state,
            lane_events.c.reply,
            lane_events.c.detail,
        ).join(newest, newest.c.id == lane_events.c.id)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {int(row.lane_id): _last_event(row) for row in rows}

    async def campaign_summary(self) -> list[CampaignCounts]:
        """Recipients per state of every campaign, oldest campaign first.

        Each item has ``name``, one count per recipient state (zero when none),
        ``pending`` (queued + sending) and ``total``.
        """
        per_state = counted(recipient_counts.c.campaign_id, recipient_counts.c.state)
        found = per_state.subquery()
        query = (
            select(campaigns.c.id, campaigns.c.name, found.c.state, found.c.n)
            .join(found, found.c.campaign_id == campaigns.c.id, isouter=True)
            .order_by(campaigns.c.id)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        names: dict[int, str] = {}
        counts: dict[int, Counter[str]] = {}
        for campaign_id, name, state, count in rows:
            names[int(campaign_id)] = str(name)
            found = counts.setdefault(int(campaign_id), Counter())
            if state is not None:
                found[str(state)] += int(count)
        return [_counts(name, counts[key]) for key, name in names.items()]

    async def held_messages(self) -> list[HeldRow]:
        """Queued recipients held back unsent (no DKIM key covers their From
        domain), per campaign and reason: ``campaign``, ``reason``, ``recipients``."""
        query = (
            select(campaigns.c.name, recipients.c.last_reply, func.count())
            .join(recipients, recipients.c.campaign_id == campaigns.c.id)
            .where(text(HELD_QUEUED))  # as the partial index states it
            .group_by(campaigns.c.name, recipients.c.last_reply)
            .order_by(campaigns.c.name, recipients.c.last_reply)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            HeldRow(campaign=str(name), reason=str(reply), recipients=int(count))
            for name, reply, count in rows
        ]


async def last_events(store: SQLStore) -> dict[int, LastEvent]:
    return await store.last_events()


async def campaign_summary(store: SQLStore) -> list[CampaignCounts]:
    return await store.campaign_summary()


async def held_messages(store: SQLStore) -> list[HeldRow]:
    return await store.held_messages()
