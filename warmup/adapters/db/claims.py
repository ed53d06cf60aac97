"""Claims with leases: the engine takes due recipients of a lane, and gives back
what it did not send.

Claims use ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (several nodes share
one queue); on SQLite the writer lock of BEGIN IMMEDIATE gives the same effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from warmup.adapters.db.database import Database
from warmup.adapters.db.rows import (
    DEADLINE_PASSED,
    QUEUED,
    SENDING,
    UNCLAIMED,
    cancelled_campaigns,
    held_by_another,
    lane_from_row,
    lane_row,
    requeued_state,
    state_is,
    under_claim,
)
from warmup.adapters.db.schema import (
    attempts,
    campaigns,
    lanes,
    messages,
    recipients,
    templates,
)
from warmup.core.attempt import Claimed, LaneClaim
from warmup.core.lanes.lane import Lane

__all__ = ["SQLClaims"]
# Verdicts that are the lane's trouble, not the recipient's (core.lanes.backoff).
_LANE_VERDICTS = ("throttle", "block")
# Lanes per lookup by (ip, isp): two IN lists, under SQLite's oldest limit of 999
# variables a statement.
_LANES_PER_QUERY = 400


class SQLClaims:
    """Lanes, claims and what a claimed recipient needs to be sent."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_lane(self, initial: Lane, now: datetime) -> tuple[int, Lane]:
        """The stored lane (ip, isp), created from ``initial`` if new."""
        return (await self.ensure_lanes([initial], now))[0]

    async def ensure_lanes(
        self, initials: Sequence[Lane], now: datetime
    ) -> list[tuple[int, Lane]]:
        """``ensure_lane`` for many lanes in one transaction, in their order (a
        node of 200 IPs starts 200 lanes per ISP: one commit, not 200)."""
        if not initials:
            return []
        pairs = [(lane.ip, lane.isp) for lane in initials]
        found: dict[tuple[str, str], Any] = {}
        async with self.db.begin() as conn:
            for chunk in _chunks(pairs):
                found |= await self._lanes(conn, chunk)
            new = [lane for lane in initials if (lane.ip, lane.isp) not in found]
            if new:
                await conn.execute(
                    self.db.insert(lanes).on_conflict_do_nothing(),
                    [
                        lane_row(lane, 0.0, now)
                        | {"ip": lane.ip, "isp": lane.isp, "created_at": now}
                        for lane in new
                    ],
                )
                for chunk in _chunks([(lane.ip, lane.isp) for lane in new]):
                    found |= await self._lanes(conn, chunk)
        rows = [found[pair] for pair in pairs]
        return [(int(row.id), lane_from_row(row)) for row in rows]

    async def _lanes(
        self, conn: AsyncConnection, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Any]:
        """The stored rows of these (ip, isp) lanes, by pair."""
        wanted = set(pairs)
        query = select(lanes).where(
            lanes.c.ip.in_(sorted({ip for ip, _ in pairs})),
            lanes.c.isp.in_(sorted({isp for _, isp in pairs})),
        )
        rows = (await conn.execute(query)).all()
        return {(r.ip, r.isp): r for r in rows if (r.ip, r.isp) in wanted}

    async def claim(
        self,
        *,
        lane_id: int,
        isp: str,
        limit: int,
        now: datetime,
        claimer: str,
        lease_until: datetime,
    ) -> list[Claimed]:
        """Lease up to ``limit`` due recipients of ``isp``, most engaged first."""
        request = LaneClaim(
            lane_id=lane_id, isp=isp, limit=limit, lease_until=lease_until
        )
        return (await self.claim_lanes([request], now=now, claimer=claimer))[0]

    async def claim_lanes(
        self, requests: Sequence[LaneClaim], *, now: datetime, claimer: str
    ) -> list[list[Claimed]]:
        """``claim`` for several lanes in one transaction (one commit, one wait
        for the writer lock), in the order given: what each lane got."""
        if self.db.dialect == "sqlite":
            got = await self._claim_sqlite(requests, now=now, claimer=claimer)
        else:
            async with self.db.begin() as conn:
                got = []
                for request in requests:
                    due = _due(
                        lane_id=request.lane_id,
                        isp=request.isp,
                        limit=request.limit,
                        now=now,
                        claimer=claimer,
                    )
                    statement = _claim(
                        due, claimer, request.lease_until, request.lane_id, now
                    )
                    rows = (await conn.execute(statement)).all()
                    got.append([_claimed(r, request.lease_until, _same) for r in rows])
        for claimed in got:
            claimed.sort(key=lambda c: (-c.priority, c.id))
        return got

    async def _claim_sqlite(
        self, requests: Sequence[LaneClaim], *, now: datetime, claimer: str
    ) -> list[list[Claimed]]:
        """The same statement, compiled once, sent in one trip to aiosqlite's
        thread with its transaction, for every lane asked (claims are most of
        the engine's writes after the tick's record)."""
        to_db, read = self.db.instant_binder(), self.db.instant_reader()
        sql, params = self.db.bound(
            "claim",
            _claim_template,
            [
                {
                    "lane": request.lane_id,
                    "isp": request.isp,
                    "limit": request.limit,
                    "now": to_db(now),
                    "claimer": claimer,
                    "lease_until": to_db(request.lease_until),
                }
                for request in requests
            ],
        )
        rows = await self.db.sqlite_call(
            lambda conn: [conn.execute(sql, each).fetchall() for each in params],
            write=True,
        )
        return [
            [_claimed(r, request.lease_until, read) for r in lane_rows]
            for request, lane_rows in zip(requests, rows, strict=True)
        ]

    async def _requeue_claimed(self, now: datetime, *where: Any) -> int:
        """Claimed rows matching ``where`` back to the queue, unpinned."""
        statement = (
            update(recipients)
            .where(recipients.c.state == SENDING, under_claim(), *where)
            .values(state=requeued_state(), updated_at=now, **UNCLAIMED)
        )
        async with self.db.begin() as conn:
            return int((await conn.execute(statement)).rowcount)

    async def release_expired_leases(self, now: datetime) -> int:
        """Claims whose lease ran out (a worker died) go back to the queue."""
        return await self._requeue_claimed(now, recipients.c.claimed_until < now)

    async def release_claims(self, claimer: str, now: datetime) -> int:
        """On shutdown: everything this worker claimed and did not send."""
        return await self._requeue_claimed(now, recipients.c.claimed_by == claimer)

    async def template_for(self, campaign_id: int) -> bytes:
        query = (
            select(templates.c.content)
            .join(campaigns, campaigns.c.template_id == templates.c.id)
            .where(campaigns.c.id == campaign_id)
        )
        async with self.db.connect() as conn:
            return bytes((await conn.execute(query)).scalar_one())

    async def message_for(self, message_id: int) -> bytes:
        """A relayed message as stored (see :mod:`warmup.core.relay.message`)."""
        query = select(messages.c.content).where(messages.c.id == message_id)
        async with self.db.connect() as conn:
            return bytes((await conn.execute(query)).scalar_one())

    async def relayed_message(self, message_id: int) -> tuple[bytes, bool]:
        """A relayed message as stored, and whether it is a report of ours
        (relay.forward_bounces: sent with the null envelope sender)."""
        query = select(messages.c.content, messages.c.dsn_for).where(
            messages.c.id == message_id
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).one()
        return bytes(row.content), row.dsn_for is not None

    async def count_expired(self, address: str) -> int:
        """Expiries of this address by its own failures since it was last
        delivered ("in a row"; core.lanes.reaction rule 3): not those our lane caused
        (the last attempt a throttle, a block or a connection failure) nor a
        deadline that passed."""
        async with self.db.connect() as conn:
            counted = await conn.execute(_expired_query(), {"address": address})
            return int(counted.scalar_one())


@cache
def _expired_query() -> Any:
    """:meth:`SQLClaims.count_expired`'s query, built once (building it, an
    alias and two correlated subqueries, was ~3 ms of Python a call; the same
    object also keeps SQLAlchemy's cache key)."""
    address: Any = bindparam("address")
    done = recipients.alias("done")
    delivered = (
        select(func.max(done.c.updated_at))
        .where(done.c.address == address, done.c.state == "delivered")
        .scalar_subquery()
    )
    return (
        select(func.count())
        .select_from(recipients)
        .where(
            recipients.c.address == address,
            recipients.c.state == "expired",
            or_(delivered.is_(None), recipients.c.updated_at > delivered),
            func.coalesce(recipients.c.last_reply, "") != DEADLINE_PASSED,
            _last_attempt(attempts.c.verdict).not_in(_LANE_VERDICTS),
            _last_attempt(attempts.c.rule).not_like("connection-%"),
        )
    )


def _due(*, lane_id: Any, isp: Any, limit: Any, now: Any, claimer: Any) -> Any:
    """The due recipients of ``isp`` this claimer may take for the lane."""
    return (
        select(recipients.c.id)
        .where(
            state_is(QUEUED),  # the claim index's own predicate
            recipients.c.isp == isp,
            recipients.c.next_attempt_at <= now,
            or_(recipients.c.lane_id.is_(None), recipients.c.lane_id == lane_id),
            ~held_by_another(
                select(lanes.c.ip).where(lanes.c.id == lane_id).scalar_subquery(),
                claimer,
            ),
            # Never a cancelled campaign's, nor one past its deadline.
            recipients.c.campaign_id.not_in(cancelled_campaigns()),
            or_(recipients.c.deadline_at.is_(None), recipients.c.deadline_at > now),
        )
        .order_by(recipients.c.priority.desc(), recipients.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _claim(due: Any, claimer: Any, lease_until: Any, lane_id: Any, now: Any) -> Any:
    """Lease the ``due`` recipients; their columns a claim needs (in
    :class:`Claimed`'s order)."""
    return (
        update(recipients)
        .where(recipients.c.id.in_(due.scalar_subquery()))
        .values(
            state=SENDING,
            claimed_by=claimer,
            claimed_until=lease_until,
            lane_id=lane_id,
            updated_at=now,
        )
        .returning(
            recipients.c.id,
            recipients.c.campaign_id,
            recipients.c.address,
            recipients.c.domain,
            recipients.c.fields,
            recipients.c.attempts,
            recipients.c.queued_at,
            recipients.c.priority,
            recipients.c.message_id,
            recipients.c.deadline_at,
        )
    )


def _claim_template() -> Any:
    """:func:`_claim` with every value a bound parameter (compiled once)."""
    now: Any = bindparam("now")
    lane: Any = bindparam("lane")
    due = _due(
        lane_id=lane,
        isp=bindparam("isp"),
        limit=bindparam("limit"),
        now=now,
        claimer=bindparam("claimer"),
    )
    return _claim(due, bindparam("claimer"), bindparam("lease_until"), lane, now)


def _same(value: Any) -> Any:
    return value


def _chunks(pairs: Sequence[tuple[str, str]]) -> list[Sequence[tuple[str, str]]]:
    """At most _LANES_PER_QUERY lanes per query."""
    step = _LANES_PER_QUERY
    return [pairs[i : i + step] for i in range(0, len(pairs), step)]


def _claimed(
    r: Any, lease_until: datetime, read: Callable[[Any], datetime | None]
) -> Claimed:
    """A claimed row (the columns of :func:`_claim`, in order); ``read`` makes
    its instants aware (the driver's raw values on SQLite's one-trip path)."""
    queued_at = read(r[6])
    assert queued_at is not None  # NOT NULL
    return Claimed(
        id=r[0],
        campaign_id=r[1],
        address=r[2],
        domain=r[3],
        fields=json.loads(r[4] or "{}"),
        attempts=r[5],
        queued_at=queued_at,
        priority=r[7],
        message_id=r[8],
        deadline_at=read(r[9]),
        lease_until=lease_until,
    )


def _last_attempt(column: Any) -> Any:
    """``column`` of the recipient's last attempt ('' if it has none)."""
    last = (
        select(column)
        .where(attempts.c.recipient_id == recipients.c.id)
        .order_by(attempts.c.id.desc())
        .limit(1)
        .correlate(recipients)
        .scalar_subquery()
    )
    return func.coalesce(last, "")
