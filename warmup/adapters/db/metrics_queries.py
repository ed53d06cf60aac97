"""Read-only queries behind the Prometheus metrics of `warmup run`.

Lane totals are monotone: the finished days of ``lane_days`` plus the day the lane
is on (its ``day_*`` counters), so they only ever grow. The day the lane is on may
already have a ``lane_days`` row (written at shutdown); it is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select, text

from warmup.adapters.db.counts import counted
from warmup.adapters.db.database import Database
from warmup.adapters.db.schema import (
    HELD_QUEUED,
    PENDING,
    RETRYING,
    lane_days,
    lanes,
    recipient_counts,
    recipients,
)
from warmup.core.model import RecipientState

if TYPE_CHECKING:
    from warmup.adapters.db.store import SQLStore

__all__ = [
    "COUNTS",
    "LaneTotals",
    "QueueTotals",
    "SQLMetrics",
    "lane_totals",
    "queue_totals",
]

# Per-lane counters, as named in lane_days (and lanes.day_<name>).
COUNTS = ("attempted", "delivered", "soft", "hard", "throttle", "block", "complaints")
_PENDING = (RecipientState.queued.value, RecipientState.sending.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneTotals:
    """One lane as saved: its state and its counters since it was created."""

    ip: str
    isp: str
    state: str
    ramp_day: int
    allowance_per_hour: float
    backoff_factor: float
    totals: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueTotals:
    """The queue as a whole (every node's recipients)."""

    by_state: dict[str, int]
    queued_by_isp: dict[str, int]  # routed ISP, "" for not yet routed
    retry_backlog: int  # queued again after a soft failure, waiting for the retry
    oldest_pending_at: datetime | None  # queued_at of the oldest queued or sending
    held: int = 0  # queued, held back unsent: no DKIM key for the From domain


class SQLMetrics:
    """The figures the Prometheus endpoint exports."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def lane_totals(self) -> list[LaneTotals]:
        """Every lane with its lifetime counters, by lane id."""
        earlier = and_(
            lane_days.c.lane_id == lanes.c.id,
            or_(lanes.c.local_day.is_(None), lane_days.c.day != lanes.c.local_day),
        )
        summed = [
            func.coalesce(func.sum(lane_days.c[name]), 0).label(name) for name in COUNTS
        ]
        query = (
            select(lanes, *summed)
            .select_from(lanes.outerjoin(lane_days, earlier))
            .group_by(lanes.c.id)
            .order_by(lanes.c.id)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            LaneTotals(
                ip=row.ip,
                isp=row.isp,
                state=row.state,
                ramp_day=int(row.ramp_day),
                allowance_per_hour=float(row.allowance_per_hour),
                backoff_factor=float(row.backoff_factor),
                totals={
                    name: int(row._mapping[name]) + int(row._mapping[f"day_{name}"])
                    for name in COUNTS
                },
            )
            for row in rows
        ]

    async def queue_totals(self) -> QueueTotals:
        """Recipients per state, queued per ISP, the retry backlog, the oldest
        pending."""
        # Per state and per ISP from the counts; the retry backlog, the oldest
        # pending and the held ones from partial indexes (their predicates spelled
        # as the indexes state them): nothing here scans the queue.
        by_state = counted(recipient_counts.c.state)
        by_isp = counted(recipient_counts.c.isp).where(
            recipient_counts.c.state == RecipientState.queued.value
        )
        retrying = select(func.count()).select_from(recipients).where(text(RETRYING))
        oldest = select(func.min(recipients.c.queued_at)).where(text(PENDING))
        held = select(func.count()).select_from(recipients).where(text(HELD_QUEUED))
        async with self.db.connect() as conn:
            states = (await conn.execute(by_state)).all()
            isps = (await conn.execute(by_isp)).all()
            backlog = (await conn.execute(retrying)).scalar_one()
            oldest_at = (await conn.execute(oldest)).scalar_one()
            held_count = (await conn.execute(held)).scalar_one()
        return QueueTotals(
            by_state={str(state): int(n) for state, n in states},
            queued_by_isp={str(isp or ""): int(n) for isp, n in isps},
            retry_backlog=int(backlog),
            oldest_pending_at=oldest_at,
            held=int(held_count),
        )


async def lane_totals(store: SQLStore) -> list[LaneTotals]:
    return await store.lane_totals()


async def queue_totals(store: SQLStore) -> QueueTotals:
    return await store.queue_totals()
