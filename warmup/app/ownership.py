"""One owner per source IP across processes: heartbeat, IP leases, take-over.

Every few seconds (a third of ``delivery.ip_lease``) the dispatcher's process
renews its heartbeat and asks the store for each of its IPs. An IP held by
another live process is not sent from here: this process waits, says once who
holds it, and takes it over only when that holder's heartbeat lapses (or, on the
same machine, at once when its process is gone). A lapsed process's claims go
back to the queue at the same beat, so a killed node's work moves on within
``ip_lease`` plus one beat.

A beat the store cannot answer is one log line, not a crash: the process keeps
sending from its IPs only until the heartbeat it last wrote runs out (after
that another node may take them over), then stops until a beat succeeds again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from warmup.app.ports import IPOwner, NodeProcess, OwnershipStore
from warmup.core.errors import StoreError

__all__ = ["IPOwnership", "OwnershipChange", "Processes", "ip_ownership"]

logger = logging.getLogger(__name__)


class Processes(Protocol):
    """This process and its machine, and whether a local process still runs."""

    machine: str
    pid: int

    def alive(self, pid: int) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnershipChange:
    gained: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()
    released: int = 0
    queue_changed: bool = False


@dataclass(slots=True)
class IPOwnership:
    store: OwnershipStore
    me: NodeProcess
    ips: Sequence[str]
    lease: timedelta
    processes: Processes | None = None
    owned: frozenset[str] = frozenset()
    next_beat: datetime | None = None
    _queue_mark: int | None = None
    # The holder last reported per IP we wait for: said once, not every beat.
    _told: dict[str, str] = field(default_factory=dict)
    # The ``alive_until`` of the last heartbeat the store took: the IPs are
    # provably ours until then, and no longer once beats fail.
    proven_until: datetime | None = None
    _outage_since: datetime | None = None

    @property
    def every(self) -> timedelta:
        return self.lease / 3

    def due(self, now: datetime) -> bool:
        return self.next_beat is None or now >= self.next_beat

    async def beat(self, now: datetime) -> OwnershipChange:
        try:
            dead = await self._gone_locally(now)
            beat = await self.store.heartbeat(
                self.me, self.ips, now=now, alive_until=now + self.lease, dead=dead
            )
        except StoreError as exc:  # tried again next tick (next_beat unchanged)
            return self._unproven(now, exc)
        if self._outage_since is not None:
            logger.warning(
                "IP leases renewed again (the store was away since %s)",
                self._outage_since.isoformat(),
            )
            self._outage_since = None
        self.proven_until = now + self.lease
        self.next_beat = now + self.every
        gained, lost = beat.owned - self.owned, self.owned - beat.owned
        self.owned = beat.owned
        self._report(beat.waiting, gained, lost, beat.taken_over or {})
        if beat.released:
            logger.warning(
                "returned %d recipients claimed by stopped processes to the queue",
                beat.released,
            )
        changed = self._queue_mark is not None and beat.queue_mark != self._queue_mark
        self._queue_mark = beat.queue_mark
        return OwnershipChange(
            gained=gained, lost=lost, released=beat.released, queue_changed=changed
        )

    def _unproven(self, now: datetime, exc: StoreError) -> OwnershipChange:
        """The store is away: the IPs stay ours only while our last heartbeat
        holds; past it another node may have taken them, so stop sending."""
        held = self.proven_until is not None and now < self.proven_until
        lost = frozenset() if held else self.owned
        self.owned -= lost
        if self._outage_since is None:
            self._outage_since = now
            until = self.proven_until if held and self.owned else None
            logger.warning(
                "cannot renew the IP leases: %s; %s",
                exc,
                f"sending from them until {until.isoformat()} at most"
                if until is not None
                else "not sending from any IP until the store answers",
            )
        elif lost:
            logger.warning(
                "IP leases of %s ran out while the store is away: stopped "
                "sending from them",
                ", ".join(sorted(lost)),
            )
        return OwnershipChange(lost=lost)

    async def leave(self, now: datetime) -> None:
        await self.store.leave(self.me.claimer, now)
        self.owned = frozenset()

    async def _gone_locally(self, now: datetime) -> list[str]:
        """Processes of this machine the store thinks alive whose pid is gone."""
        if self.processes is None:
            return []
        local = await self.store.local_processes(self.me.machine, now)
        return [
            p.claimer
            for p in local
            if p.claimer != self.me.claimer and not self.processes.alive(p.pid)
        ]

    def _report(
        self,
        waiting: Mapping[str, IPOwner],
        gained: frozenset[str],
        lost: frozenset[str],
        taken: Mapping[str, str],
    ) -> None:
        for ip, holder in sorted(waiting.items()):
            if self._told.get(ip) == holder.claimer:
                continue
            self._told[ip] = holder.claimer
            logger.warning(
                "IP %s is owned by %s (node %s on %s, heartbeat until %s): not "
                "sending from it until that lease lapses",
                ip,
                holder.claimer,
                holder.node,
                holder.machine,
                holder.alive_until.isoformat() if holder.alive_until else "?",
            )
        for ip in sorted(gained):
            self._told.pop(ip, None)
            if ip in taken:
                logger.warning(
                    "took over IP %s from %s, whose heartbeat lapsed", ip, taken[ip]
                )
            else:
                logger.info("IP %s is ours: sending from it", ip)
        for ip in sorted(lost):
            logger.warning("lost IP %s to another process: stopped sending from it", ip)


def ip_ownership(
    store: OwnershipStore,
    *,
    claimer: str,
    ips: Sequence[str],
    lease: timedelta,
    processes: Processes | None,
) -> IPOwnership:
    """The ownership of the process named ``claimer`` (``node:pid``)."""
    me = NodeProcess(
        claimer=claimer,
        node=claimer.rpartition(":")[0] or claimer,
        machine=processes.machine if processes is not None else "",
        pid=processes.pid if processes is not None else 0,
    )
    return IPOwnership(store, me, ips, lease, processes)
