"""The store's side of IP ownership: heartbeats (``nodes``) and IP leases.

A process owns an IP while its ``ip_leases`` row names it and its ``nodes`` row
is alive. Taking an IP over is a compare-and-set on the lapsed owner's name, so
of two processes that both see it lapse only one gets it (PostgreSQL re-checks
the row after waiting for the other's update; SQLite writers are serial).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from warmup.adapters.db.database import Database
from warmup.adapters.db.rows import SENDING, under_claim
from warmup.adapters.db.schema import ip_leases, nodes, recipients
from warmup.app.ports import Heartbeat, IPOwner, NodeProcess
from warmup.core.model import RecipientState

__all__ = ["SQLOwnership"]

# Rows of processes dead this long are dropped (their IPs and claims went long ago).
_FORGET_AFTER = timedelta(days=1)


class SQLOwnership:
    """Node processes and the IP leases they hold."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def local_processes(self, machine: str, now: datetime) -> list[NodeProcess]:
        query = select(nodes).where(
            nodes.c.machine == machine, nodes.c.alive_until >= now
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            NodeProcess(claimer=r.claimer, node=r.node, machine=r.machine, pid=r.pid)
            for r in rows
        ]

    async def heartbeat(
        self,
        me: NodeProcess,
        ips: Sequence[str],
        *,
        now: datetime,
        alive_until: datetime,
        dead: Sequence[str] = (),
    ) -> Heartbeat:
        async with self.db.begin() as conn:
            await self._renew(conn, me, now, alive_until)
            if dead:
                await conn.execute(
                    update(nodes)
                    .where(nodes.c.claimer.in_(list(dead)), nodes.c.alive_until >= now)
                    .values(alive_until=now - timedelta(microseconds=1))
                )
            released = await self._free_lapsed_claims(conn, now)
            owned, waiting, taken = await self._take_ips(conn, me, ips, now)
            await self._forget_lapsed(conn, now)
            mark = (await conn.execute(select(func.max(recipients.c.id)))).scalar()
        return Heartbeat(
            owned=frozenset(owned),
            waiting=waiting,
            released=released,
            taken_over=taken,
            queue_mark=int(mark or 0),
        )

    async def _renew(
        self, conn: AsyncConnection, me: NodeProcess, now: datetime, until: datetime
    ) -> None:
        values = {
            "claimer": me.claimer,
            "node": me.node,
            "machine": me.machine,
            "pid": me.pid,
            "started_at": now,
            "alive_until": until,
        }
        statement = self.db.insert(nodes).values(**values)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["claimer"], set_={"alive_until": until}
            )
        )

    async def _free_lapsed_claims(self, conn: AsyncConnection, now: datetime) -> int:
        """Claims of processes whose heartbeat lapsed go back to the queue."""
        query = select(nodes.c.claimer).where(nodes.c.alive_until < now)
        lapsed = list((await conn.execute(query)).scalars())
        if not lapsed:
            return 0  # the usual beat: one lookup in a small table
        result = await conn.execute(
            update(recipients)
            .where(
                recipients.c.state == SENDING,
                under_claim(),  # through the lease index
                recipients.c.claimed_by.in_(lapsed),
            )
            .values(
                state=RecipientState.queued.value,
                claimed_by=None,
                claimed_until=None,
                lane_id=None,
                updated_at=now,
            )
        )
        return int(result.rowcount)

    async def _forget_lapsed(self, conn: AsyncConnection, now: datetime) -> None:
        """A lapsed process whose claims are back and whose IPs are taken is gone
        (kept while an IP still names it, so status can say it lapsed)."""
        named = select(ip_leases.c.claimer)
        await conn.execute(
            delete(nodes).where(
                nodes.c.alive_until < now,
                or_(
                    nodes.c.claimer.not_in(named),
                    nodes.c.alive_until < now - _FORGET_AFTER,
                ),
            )
        )

    async def _take_ips(
        self, conn: AsyncConnection, me: NodeProcess, ips: Sequence[str], now: datetime
    ) -> tuple[set[str], dict[str, IPOwner], dict[str, str]]:
        if ips:
            await conn.execute(
                self.db.insert(ip_leases)
                .values([{"ip": ip, "claimer": me.claimer, "since": now} for ip in ips])
                .on_conflict_do_nothing(index_elements=["ip"])
            )
        owned: set[str] = set()
        waiting: dict[str, IPOwner] = {}
        taken: dict[str, str] = {}
        for ip, holder in (await self._holders(conn, list(ips))).items():
            if holder.claimer == me.claimer:
                owned.add(ip)
            elif holder.alive_until is not None and holder.alive_until >= now:
                waiting[ip] = holder
            elif await self._swap(conn, ip, holder.claimer, me.claimer, now):
                owned.add(ip)
                taken[ip] = holder.claimer
        return owned, waiting, taken

    async def _swap(
        self, conn: AsyncConnection, ip: str, old: str, new: str, now: datetime
    ) -> bool:
        result = await conn.execute(
            update(ip_leases)
            .where(ip_leases.c.ip == ip, ip_leases.c.claimer == old)
            .values(claimer=new, since=now)
        )
        return bool(result.rowcount)

    async def _holders(
        self, conn: AsyncConnection, ips: list[str] | None
    ) -> dict[str, IPOwner]:
        query = select(
            ip_leases.c.ip,
            ip_leases.c.claimer,
            nodes.c.node,
            nodes.c.machine,
            nodes.c.alive_until,
        ).outerjoin(nodes, nodes.c.claimer == ip_leases.c.claimer)
        if ips is not None:
            query = query.where(ip_leases.c.ip.in_(ips))
        rows = (await conn.execute(query.order_by(ip_leases.c.ip))).all()
        return {r.ip: _owner(r) for r in rows}

    async def leave(self, claimer: str, now: datetime) -> None:
        async with self.db.begin() as conn:
            await conn.execute(delete(ip_leases).where(ip_leases.c.claimer == claimer))
            await conn.execute(delete(nodes).where(nodes.c.claimer == claimer))

    async def ip_owners(self) -> list[IPOwner]:
        async with self.db.connect() as conn:
            return list((await self._holders(conn, None)).values())

    async def claims_per_lane(self) -> dict[int, int]:
        query = (
            select(recipients.c.lane_id, func.count())
            .where(
                recipients.c.state == SENDING,
                under_claim(),  # through the lease index
                recipients.c.lane_id.is_not(None),
            )
            .group_by(recipients.c.lane_id)
        )
        async with self.db.connect() as conn:
            return {int(lane): int(n) for lane, n in (await conn.execute(query)).all()}


def _owner(row: Any) -> IPOwner:
    return IPOwner(
        ip=row.ip,
        claimer=row.claimer,
        node=row.node,
        machine=row.machine,
        alive_until=row.alive_until,
    )
