"""The engine's side of the store: claims with leases, attempts, lanes, roll-ups.

Claims use ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (several nodes share
one queue); on SQLite the writer lock of BEGIN IMMEDIATE gives the same effect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from sqlalchemy import (
    Date,
    bindparam,
    case,
    delete,
    exists,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from warmup.adapters.db.failure import describe, translated
from warmup.adapters.db.outbox import (
    insert_outcome_events,
    insert_recipient_events,
    outcome_rows,
)
from warmup.adapters.db.schema import (
    UTCDateTime,
    attempts,
    bounce_events,
    campaigns,
    dns_evidence,
    ip_leases,
    lane_days,
    lane_events,
    lanes,
    messages,
    recipients,
    suppressions,
    templates,
)
from warmup.core.attempt import Claimed, TickRecord
from warmup.core.errors import StoreError
from warmup.core.event import EventType
from warmup.core.lane import DayStats, Lane
from warmup.core.model import LaneState, RecipientState
from warmup.core.suppression import Suppression, make_suppression

__all__ = ["DEADLINE_PASSED", "QueueOps", "suppression_row"]

DEADLINE_PASSED = "deadline passed before it could be sent"

_QUEUED = RecipientState.queued.value
_SENDING = RecipientState.sending.value
_CANCELLED = RecipientState.cancelled.value
_UNCLAIMED: dict[str, Any] = {
    "claimed_by": None,
    "claimed_until": None,
    "lane_id": None,
}


def suppression_row(entry: Suppression) -> dict[str, Any]:
    return {
        "address": entry.address,
        "kind": entry.kind.value,
        "reason": entry.reason,
        "source": entry.source,
        "created_at": entry.created_at,
    }


def _lane_row(lane: Lane, allowance: float, now: datetime) -> dict[str, Any]:
    stats = lane.stats
    return {
        "state": lane.state.value,
        "ramp_day": lane.ramp_day,
        "allowance_per_hour": allowance,
        "backoff_factor": lane.factor,
        "backoff_until": lane.hold_until,
        "recover_at": lane.recover_at,
        "paused_until": lane.paused_until,
        "throttles": lane.throttles,
        "local_day": lane.day,
        "day_attempted": stats.attempted,
        "day_delivered": stats.delivered,
        "day_soft": stats.soft,
        "day_hard": stats.hard,
        "day_throttle": stats.throttle,
        "day_block": stats.block,
        "day_complaints": stats.complaints,
        "last_sent_at": lane.last_sent_at,
        "operator_paused": lane.operator,
        "control_seen": lane.control_seen,
        "updated_at": now,
    }


def _lane_instants(lane: Lane) -> dict[str, datetime | None]:
    """The instants of ``_lane_row``, to be converted for the driver."""
    return {
        "backoff_until": lane.hold_until,
        "recover_at": lane.recover_at,
        "paused_until": lane.paused_until,
        "last_sent_at": lane.last_sent_at,
    }


def _update_lanes(owned: bool) -> Any:
    """A lane's row from its state (``_lane_row``'s columns); a lane whose IP
    another process holds now is not ours to write."""
    columns = _lane_row(Lane(ip="", isp=""), 0.0, datetime.min.replace(tzinfo=UTC))
    statement = (
        update(lanes)
        .where(lanes.c.id == bindparam("lane"))
        .values({name: bindparam(name) for name in columns})
    )
    if owned:
        statement = statement.where(
            ~exists().where(
                ip_leases.c.ip == lanes.c.ip,
                ip_leases.c.claimer != bindparam("claimer"),
            )
        )
    return statement


def _same(value: Any) -> Any:
    return value


def _insert_attempt() -> Any:
    return attempts.insert().values(
        {
            name: bindparam(name)
            for name in (
                "recipient_id",
                "lane_id",
                "attempted_at",
                "verdict",
                "reason",
                "code",
                "enhanced",
                "reply",
                "rule",
            )
        }
    )


def _sent(*, owned: bool) -> Any:
    """A sent recipient's new state; with ``owned``, only while still our claim."""
    still_ours = (
        recipients.c.claimed_by == bindparam("claimer")
        if owned
        else recipients.c.id.is_not(None)
    )
    return (
        update(recipients)
        .where(recipients.c.id == bindparam("rid"), still_ours)
        .values(
            state=bindparam("new_state"),
            next_attempt_at=bindparam("next_at"),
            attempts=bindparam("count"),
            lane_id=bindparam("lane"),
            claimed_by=null(),
            claimed_until=null(),
            last_reply=bindparam("reply"),
            updated_at=bindparam("now"),
        )
    )


def _held_by_another(ip: Any, claimer: str) -> Any:
    """The IP is leased to another process: its lanes are not ours to claim
    for or to write (one owner per source IP, warmup.app.ownership)."""
    return exists().where(ip_leases.c.ip == ip, ip_leases.c.claimer != claimer)


def _cancelled_campaigns() -> Any:
    return select(campaigns.c.id).where(campaigns.c.cancelled_at.is_not(None))


def _requeued_state() -> Any:
    """Unsent claims go back to the queue, or stay out of it once their campaign
    was cancelled (the cancel moved only the queued ones)."""
    return case(
        (recipients.c.campaign_id.in_(_cancelled_campaigns()), _CANCELLED),
        else_=_QUEUED,
    )


def _lane_from_row(row: Any) -> Lane:
    return Lane(
        ip=row.ip,
        isp=row.isp,
        state=LaneState(row.state),
        ramp_day=row.ramp_day,
        factor=row.backoff_factor,
        hold_until=row.backoff_until,
        recover_at=row.recover_at,
        paused_until=row.paused_until,
        throttles=row.throttles,
        day=row.local_day,
        last_sent_at=row.last_sent_at,
        operator=bool(row.operator_paused),
        control_seen=int(row.control_seen),
        stats=DayStats(
            attempted=row.day_attempted,
            delivered=row.day_delivered,
            soft=row.day_soft,
            hard=row.day_hard,
            throttle=row.day_throttle,
            block=row.day_block,
            complaints=row.day_complaints,
        ),
    )


class QueueOps:
    """Mixed into SQLStore; needs ``engine`` and ``_dialect``."""

    engine: AsyncEngine
    _dialect: str
    _write_lock: asyncio.Lock | None = None
    # Driver-level SQL (text, bind names in order, positional?) per statement, and
    # the dialect's converter for instants; built on first use.
    _driver_sql: dict[str, tuple[str, tuple[str, ...], bool]] | None = None
    _binder: Callable[[datetime], Any] | None = None
    _day_bind: Callable[[date], Any] | None = None

    @asynccontextmanager
    async def _begin(self, *, durable: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction. On SQLite, writers of this process queue on an
        asyncio lock: otherwise they meet in SQLite's busy handler, which sleeps
        in steps of milliseconds long after the lock was freed. ``durable``: on
        SQLite the commit fsyncs (PRAGMA synchronous=FULL; PostgreSQL always does)."""
        if self._dialect != "sqlite":
            async with self.engine.begin() as conn:
                yield conn
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        writer = self.engine.execution_options(
            sqlite_immediate=True, sqlite_durable=durable
        )
        async with self._write_lock, writer.begin() as conn:
            yield conn

    # -- lanes -------------------------------------------------------------------

    async def ensure_lane(self, initial: Lane, now: datetime) -> tuple[int, Lane]:
        """The stored lane (ip, isp), created from ``initial`` if new."""
        try:
            async with self._begin() as conn:
                row = await self._lane(conn, initial.ip, initial.isp)
                if row is None:
                    values = _lane_row(initial, 0.0, now) | {
                        "ip": initial.ip,
                        "isp": initial.isp,
                        "created_at": now,
                    }
                    insert = self._insert(lanes).values(**values)
                    await conn.execute(insert.on_conflict_do_nothing())
                    row = await self._lane(conn, initial.ip, initial.isp)
        except SQLAlchemyError as exc:
            raise StoreError("loading a lane", describe(exc)) from exc
        assert row is not None
        return int(row.id), _lane_from_row(row)

    async def _lane(self, conn: AsyncConnection, ip: str, isp: str) -> Any:
        query = select(lanes).where(lanes.c.ip == ip, lanes.c.isp == isp)
        return (await conn.execute(query)).first()

    def _insert(self, table: Any) -> Any:  # pragma: no cover - provided by SQLStore
        raise NotImplementedError

    # -- the queue ---------------------------------------------------------------

    @translated("counting the queue")
    async def queued_isps(self) -> dict[str, int]:
        """Queued recipients per ISP (routed ones only)."""
        query = (
            select(recipients.c.isp, func.count())
            .where(recipients.c.state == _QUEUED, recipients.c.isp.is_not(None))
            .group_by(recipients.c.isp)
        )
        async with self.engine.connect() as conn:
            return {str(isp): int(n) for isp, n in (await conn.execute(query)).all()}

    @translated("listing unrouted domains")
    async def unrouted_domains(self, limit: int = 500) -> list[str]:
        query = (
            select(recipients.c.domain)
            .where(recipients.c.state == _QUEUED, recipients.c.isp.is_(None))
            .distinct()
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [str(d) for d in (await conn.execute(query)).scalars()]

    @translated("routing a domain")
    async def route_domain(self, domain: str, isp: str, now: datetime) -> int:
        statement = (
            update(recipients)
            .where(recipients.c.domain == domain, recipients.c.isp.is_(None))
            .values(isp=isp, updated_at=now)
        )
        async with self._begin() as conn:
            return int((await conn.execute(statement)).rowcount)

    @translated("failing a domain")
    async def fail_domain(self, domain: str, reply: str, now: datetime) -> int:
        """A domain that cannot receive mail: its queued recipients bounce."""
        dead = (
            recipients.c.domain == domain,
            recipients.c.isp.is_(None),
            recipients.c.state == _QUEUED,
        )
        events = insert_recipient_events(
            EventType.bounced, now, "dns", reply, *dead, reason="hostunknown"
        )
        statement = (
            update(recipients)
            .where(*dead)
            .values(
                state=RecipientState.bounced.value, last_reply=reply, updated_at=now
            )
        )
        entry = make_suppression(
            "@" + domain, reason="hostunknown", source="dns", now=now
        )
        async with self._begin() as conn:
            await conn.execute(events)
            count = int((await conn.execute(statement)).rowcount)
            await conn.execute(
                self._insert(suppressions).on_conflict_do_nothing(
                    index_elements=["address"]
                ),
                [suppression_row(entry)],
            )
            # The evidence did its work: the suppression now speaks for the domain.
            forget = delete(dns_evidence).where(dns_evidence.c.domain == domain)
            await conn.execute(forget)
            return count

    @translated("deferring a domain")
    async def defer_domain(
        self, domain: str, reply: str, until: datetime, now: datetime
    ) -> int:
        """A domain that looks dead but is not confirmed: its recipients wait."""
        statement = (
            update(recipients)
            .where(
                recipients.c.domain == domain,
                recipients.c.isp.is_(None),
                recipients.c.state == _QUEUED,
            )
            .values(next_attempt_at=until, last_reply=reply, updated_at=now)
        )
        async with self._begin() as conn:
            return int((await conn.execute(statement)).rowcount)

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
        due = (
            select(recipients.c.id)
            .where(
                recipients.c.state == _QUEUED,
                recipients.c.isp == isp,
                recipients.c.next_attempt_at <= now,
                or_(recipients.c.lane_id.is_(None), recipients.c.lane_id == lane_id),
                ~_held_by_another(
                    select(lanes.c.ip).where(lanes.c.id == lane_id).scalar_subquery(),
                    claimer,
                ),
                # Never a cancelled campaign's, nor one past its deadline.
                recipients.c.campaign_id.not_in(_cancelled_campaigns()),
                or_(recipients.c.deadline_at.is_(None), recipients.c.deadline_at > now),
            )
            .order_by(recipients.c.priority.desc(), recipients.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(recipients)
            .where(recipients.c.id.in_(due.scalar_subquery()))
            .values(
                state=_SENDING,
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
        try:
            async with self._begin() as conn:
                rows = (await conn.execute(statement)).all()
        except SQLAlchemyError as exc:
            raise StoreError("claiming recipients", describe(exc)) from exc
        claimed = [
            Claimed(
                id=r.id,
                campaign_id=r.campaign_id,
                address=r.address,
                domain=r.domain,
                fields=json.loads(r.fields or "{}"),
                attempts=r.attempts,
                queued_at=r.queued_at,
                priority=r.priority,
                message_id=r.message_id,
                deadline_at=r.deadline_at,
            )
            for r in rows
        ]
        claimed.sort(key=lambda c: (-c.priority, c.id))
        return claimed

    @translated("returning claims to the queue")
    async def _requeue_claimed(self, now: datetime, *where: Any) -> int:
        """Claimed rows matching ``where`` back to the queue, unpinned."""
        statement = (
            update(recipients)
            .where(recipients.c.state == _SENDING, *where)
            .values(state=_requeued_state(), updated_at=now, **_UNCLAIMED)
        )
        async with self._begin() as conn:
            return int((await conn.execute(statement)).rowcount)

    async def release_expired_leases(self, now: datetime) -> int:
        """Claims whose lease ran out (a worker died) go back to the queue."""
        return await self._requeue_claimed(now, recipients.c.claimed_until < now)

    async def release_claims(self, claimer: str, now: datetime) -> int:
        """On shutdown: everything this worker claimed and did not send."""
        return await self._requeue_claimed(now, recipients.c.claimed_by == claimer)

    @translated("reading a template")
    async def template_for(self, campaign_id: int) -> bytes:
        query = (
            select(templates.c.content)
            .join(campaigns, campaigns.c.template_id == templates.c.id)
            .where(campaigns.c.id == campaign_id)
        )
        async with self.engine.connect() as conn:
            return bytes((await conn.execute(query)).scalar_one())

    @translated("reading a relayed message")
    async def message_for(self, message_id: int) -> bytes:
        """A relayed message as stored (see :mod:`warmup.core.relay_message`)."""
        query = select(messages.c.content).where(messages.c.id == message_id)
        async with self.engine.connect() as conn:
            return bytes((await conn.execute(query)).scalar_one())

    @translated("counting expiries")
    async def count_expired(self, address: str) -> int:
        """Expiries of this address since it was last delivered ("in a row")."""
        delivered = (
            select(func.max(recipients.c.updated_at))
            .where(recipients.c.address == address, recipients.c.state == "delivered")
            .scalar_subquery()
        )
        query = select(func.count()).where(
            recipients.c.address == address,
            recipients.c.state == "expired",
            or_(delivered.is_(None), recipients.c.updated_at > delivered),
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    # -- recording ---------------------------------------------------------------

    async def record(self, tick: TickRecord, now: datetime) -> None:
        """Write one tick's attempts, recipient states, lanes and events at once."""
        if not tick:
            return
        try:
            async with self._begin() as conn:
                await self._record_attempts(conn, tick, now)
                await self._record_lanes(conn, tick, now)
        except SQLAlchemyError as exc:
            raise StoreError("recording attempts", describe(exc)) from exc

    async def _record_attempts(
        self, conn: AsyncConnection, tick: TickRecord, now: datetime
    ) -> None:
        if tick.attempts:
            await self._record_sends(conn, tick, now)
        to_db = self._instant_binder()
        outcomes = outcome_rows(tick, to_db(now), to_db)
        if outcomes:  # the outbox, in the outcome's own transaction
            await self._executemany(
                conn,
                "insert outcome events",
                partial(insert_outcome_events, self._dialect),
                outcomes,
            )
        if tick.dropped:
            await conn.execute(
                update(recipients)
                .where(recipients.c.id.in_(tick.dropped))
                .values(
                    state=RecipientState.suppressed.value, updated_at=now, **_UNCLAIMED
                )
            )
        if tick.cancelled:
            await conn.execute(
                update(recipients)
                .where(recipients.c.id.in_(tick.cancelled))
                .values(
                    state=RecipientState.cancelled.value, updated_at=now, **_UNCLAIMED
                )
            )
        if tick.late:
            await conn.execute(
                update(recipients)
                .where(recipients.c.id.in_(tick.late))
                .values(
                    state=RecipientState.expired.value,
                    last_reply=DEADLINE_PASSED,
                    updated_at=now,
                    **_UNCLAIMED,
                )
            )
        if tick.released:
            # Only claims that are still ours: an expired one may be another's now.
            await conn.execute(
                update(recipients)
                .where(
                    recipients.c.id == bindparam("rid"),
                    recipients.c.state == _SENDING,
                    recipients.c.claimed_until == bindparam("lease"),
                )
                .values(state=_requeued_state(), updated_at=now, **_UNCLAIMED),
                [{"rid": rid, "lease": lease} for rid, lease in tick.released],
            )
        if tick.held:
            await conn.execute(
                update(recipients)
                .where(
                    recipients.c.id == bindparam("rid"),
                    recipients.c.state == _SENDING,
                    recipients.c.claimed_until == bindparam("lease"),
                )
                .values(
                    state=_QUEUED,
                    next_attempt_at=bindparam("until"),
                    last_reply=bindparam("reason"),
                    updated_at=now,
                    **_UNCLAIMED,
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
        if tick.suppressions:
            await conn.execute(
                self._insert(suppressions).on_conflict_do_nothing(
                    index_elements=["address"]
                ),
                [suppression_row(entry) for entry in tick.suppressions],
            )

    async def _record_sends(
        self, conn: AsyncConnection, tick: TickRecord, now: datetime
    ) -> None:
        """The attempt rows and their recipients' new states: the bulk of a tick.

        Both go to the driver's executemany with values converted once here
        (what SQLAlchemy would bind, per UTCDateTime), not through SQLAlchemy's
        per-row parameter processing: half the time on the event loop.
        """
        to_db = self._instant_binder()
        stamp = to_db(now)
        await self._executemany(
            conn,
            "insert attempts",
            _insert_attempt,
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
        owned = tick.claimer is not None
        await self._executemany(
            conn,
            f"update sent recipients, owned={owned}",
            partial(_sent, owned=owned),
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

    def _instant_binder(self) -> Callable[[datetime], Any]:
        """An aware instant as this dialect stores it (UTCDateTime's bind path)."""
        if self._binder is None:
            dialect = self.engine.dialect
            process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
            self._binder = process if process is not None else _same
        return self._binder

    def _day_binder(self) -> Callable[[date], Any]:
        """A date as this dialect's driver takes it (Date's bind path)."""
        if self._day_bind is None:
            dialect = self.engine.dialect
            process = Date().dialect_impl(dialect).bind_processor(dialect)
            self._day_bind = process if process is not None else _same
        return self._day_bind

    async def _executemany(
        self,
        conn: AsyncConnection,
        name: str,
        build: Callable[[], Any],
        rows: list[dict[str, Any]],
    ) -> None:
        """Run a statement once per row through the driver's executemany.

        ``rows`` hold driver-ready values keyed by the statement's bind names;
        keys the statement does not use are ignored. The SQL is compiled once.
        """
        compiled = self._driver_sql.get(name) if self._driver_sql else None
        if compiled is None:
            statement = build().compile(dialect=self.engine.dialect)
            positional = self.engine.dialect.positional
            names = statement.positiontup if positional else statement.binds
            compiled = (statement.string, tuple(names or ()), positional)
            self._driver_sql = {**(self._driver_sql or {}), name: compiled}
        sql, names, positional = compiled
        if positional:
            params: list[Any] = [tuple(row[key] for key in names) for row in rows]
        else:
            params = [{key: row[key] for key in names} for row in rows]
        await conn.exec_driver_sql(sql, params)

    async def _record_lanes(
        self, conn: AsyncConnection, tick: TickRecord, now: datetime
    ) -> None:
        if tick.lanes:  # on nearly every tick: compiled once, values bound here
            to_db, day_to_db = self._instant_binder(), self._day_binder()
            stamp = to_db(now)
            rows = [
                {
                    **_lane_row(r.lane, r.allowance_per_hour, now),
                    **{
                        name: None if value is None else to_db(value)
                        for name, value in _lane_instants(r.lane).items()
                    },
                    "local_day": None if r.lane.day is None else day_to_db(r.lane.day),
                    "updated_at": stamp,
                    "lane": r.lane_id,
                    "claimer": tick.claimer,
                }
                for r in tick.lanes.values()
            ]
            owned = tick.claimer is not None
            await self._executemany(
                conn,
                f"update lanes, owned={owned}",
                partial(_update_lanes, owned),
                rows,
            )
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
        if tick.news_applied:
            await conn.execute(
                update(bounce_events)
                .where(bounce_events.c.id.in_(tick.news_applied))
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
        statement = self._insert(lane_days)
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

    # -- reading back ------------------------------------------------------------

    async def lane_history(self) -> list[dict[str, Any]]:
        """Every lane-day roll-up with its lane's ip and isp, oldest first."""
        query = (
            select(lanes.c.ip, lanes.c.isp, lane_days)
            .join(lanes, lanes.c.id == lane_days.c.lane_id)
            .order_by(lanes.c.ip, lanes.c.isp, lane_days.c.day)
        )
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

    @translated("reading the lanes")
    async def all_lanes(self) -> list[tuple[int, Lane, float]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(lanes).order_by(lanes.c.id))).all()
        return [
            (int(r.id), _lane_from_row(r), float(r.allowance_per_hour)) for r in rows
        ]

    async def all_events(self) -> list[dict[str, Any]]:
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
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

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
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
