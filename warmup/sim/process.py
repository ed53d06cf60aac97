"""The simulated ISPs in a child process, so the demo uses both cores.

The parent's virtual clock is shared through a double in shared memory (epoch
seconds): the parent sets it before each tick, the child's servers read it for
every decision. Ports come back over a pipe at start, statistics at stop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from warmup.sim.isp import SimulatedISP
from warmup.sim.profile import PROFILES

__all__ = ["SimulatedISPProcess", "scaled_isp"]


def scaled_isp(
    name: str,
    *,
    now: Any,
    seed: int,
    index: int,
    scale: float,
    reports_maildir: str | None = None,
    complaint_share: float = 0.0,
) -> SimulatedISP:
    """A simulated ISP whose tolerance is scaled like the demo's ramps.

    At scaled-down rates a 10-minute window holds a message or two, so the
    absolute burst allowance would swamp the rate: scaled servers measure over an
    hour with a burst of one.
    """
    profile = PROFILES[name]
    tolerance = replace(
        profile.tolerance,
        initial_per_hour=profile.tolerance.initial_per_hour * scale,
        max_per_hour=profile.tolerance.max_per_hour * scale,
    )
    if scale < 1:
        tolerance = replace(tolerance, window=timedelta(hours=1), burst=1)
    return SimulatedISP(
        replace(profile, tolerance=tolerance),
        now=now,
        rng=random.Random(seed * 100 + index),
        reports_maildir=reports_maildir,
        complaint_share=complaint_share,
    )


def _stats(isp: SimulatedISP) -> dict[str, Any]:
    return {
        "received": isp.received,
        "dsn_pending": len(isp.dsn_queue),
        "reports_mailed": isp.reports_sent,
        "per_ip": {ip: asdict(stats) for ip, stats in isp.stats.items()},
    }


async def _serve(
    conn: Connection, clock: Any, scales: dict[str, float], seed: int, reports: Any
) -> None:
    def now() -> datetime:
        return datetime.fromtimestamp(clock.value, UTC)

    isps = {
        name: scaled_isp(name, now=now, seed=seed, index=i, scale=scale, **reports)
        for i, (name, scale) in enumerate(scales.items())
    }
    for isp in isps.values():
        await isp.start("127.0.0.1", 0)
    conn.send({name: isp.port for name, isp in isps.items()})
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(conn.fileno(), stop.set)
    await stop.wait()
    loop.remove_reader(conn.fileno())
    conn.recv()
    conn.send({name: _stats(isp) for name, isp in isps.items()})
    for isp in isps.values():
        await isp.stop()


def _child(
    conn: Connection,
    clock: Any,
    scales: dict[str, float],
    seed: int,
    reports: dict[str, Any],
) -> None:
    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(_serve(conn, clock, scales, seed, reports))


class SimulatedISPProcess:
    """Start simulated ISPs in a child process; share the virtual time.

    ``scales`` maps each ISP to the factor its tolerance is scaled by. With
    ``reports_maildir`` the ISPs mail their DSNs and complaints (a share
    ``complaint_share`` of recipients complain) into that maildir.
    """

    def __init__(
        self,
        scales: dict[str, float],
        *,
        seed: int,
        start: datetime,
        reports_maildir: str | None = None,
        complaint_share: float = 0.0,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._clock: Synchronized[float] = context.Value(
            "d", start.timestamp(), lock=False
        )
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_child,
            args=(
                child,
                self._clock,
                scales,
                seed,
                {
                    "reports_maildir": reports_maildir,
                    "complaint_share": complaint_share,
                },
            ),
            daemon=True,
        )
        self.ports: dict[str, int] = {}

    async def start(self, wait_seconds: float = 30.0) -> dict[str, int]:
        self._process.start()
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, self._poll, wait_seconds)
        if not ready:
            raise RuntimeError("the simulated ISPs did not start")
        self.ports = self._conn.recv()
        return self.ports

    def _poll(self, timeout: float) -> bool:
        return bool(self._conn.poll(timeout))

    def set_time(self, moment: datetime) -> None:
        self._clock.value = moment.timestamp()

    async def stop(self, wait_seconds: float = 30.0) -> dict[str, Any]:
        """Stop the servers; their statistics per ISP ({} if the child is gone)."""
        stats: dict[str, Any] = {}
        if self._process.is_alive():
            self._conn.send("stop")
            loop = asyncio.get_running_loop()
            if await loop.run_in_executor(None, self._poll, wait_seconds):
                stats = self._conn.recv()
        await asyncio.get_running_loop().run_in_executor(None, self._process.join, 10)
        if self._process.is_alive():  # pragma: no cover - defensive
            self._process.kill()
        return stats
