"""DMARC aggregate reports in: stored per source IP x day x header-From domain.

Reports arrive by ``warmup dmarc ingest`` or as mail to the bounce domain (the
relay listener, ``bounces.maildir``); there :meth:`DMARCIntake.take` picks a mail
that carries a report before it is read as a bounce. The engine reads the
figures on its maintenance beat (see :mod:`warmup.core.auth.dmarc` for the rules).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol

from warmup.app.ports import Clock
from warmup.core.auth.dmarc import AuthDay, DMARCReport, failing_ips
from warmup.core.errors import UnsafeInputError
from warmup.core.settings import DMARCSettings

__all__ = ["AuthSource", "DMARCIntake", "DMARCStore", "MailReader", "auth_verdicts"]

logger = logging.getLogger(__name__)

# How far back the engine reads DMARC figures (reports come a day or two late).
AUTH_LOOKBACK = timedelta(days=14)
# Mailed reports (from anyone) beginning later than this from now are refused
# (clocks and time zones differ by hours, not days). `warmup dmarc ingest` takes
# the operator's files as they are.
_AHEAD = timedelta(days=1)
# Mails up to this size are read on the loop; larger ones in a thread.
_INLINE_BYTES = 64 * 1024

#: (mail bytes, source label) -> the DMARC reports it carries; raises
#: UnsafeInputError for a refused one (bomb, DTD), InputError if unreadable.
MailReader = Callable[[bytes, str], Sequence[DMARCReport]]


class DMARCStore(Protocol):
    async def save_dmarc(self, report: DMARCReport, now: datetime) -> int: ...


class AuthSource(Protocol):
    async def auth_days(
        self, ips: Sequence[str] | None = None, since: date | None = None
    ) -> list[AuthDay]: ...


async def auth_verdicts(
    store: AuthSource, ips: Sequence[str], rules: DMARCSettings, now: datetime
) -> dict[str, AuthDay | None]:
    """Per IP with a judged day in the last AUTH_LOOKBACK: its failing day, or
    None when clean (rules in core.auth.dmarc)."""
    days = await store.auth_days(ips, since=(now - AUTH_LOOKBACK).date())
    return failing_ips(
        days, min_messages=rules.min_messages, min_pass_rate=rules.min_pass_rate
    )


class DMARCIntake:
    def __init__(self, store: DMARCStore, *, clock: Clock, read_mail: MailReader):
        self._store = store
        self._clock = clock
        self._read_mail = read_mail

    async def save(self, report: DMARCReport) -> int:
        """Store one report; how many of its rows were new (0: seen before)."""
        added = await self._store.save_dmarc(report, self._clock.now())
        logger.info(
            "DMARC report %s from %s: %d messages, %d new rows",
            report.report_id,
            report.org,
            report.messages,
            added,
        )
        return added

    async def take(
        self, data: bytes, *, source: str, envelope_to: Sequence[str]
    ) -> str | None:
        """A mail carrying DMARC reports: stored ("dmarc"), or refused
        ("dmarc_refused": nothing of it is used); None for any other mail."""
        try:
            if len(data) > _INLINE_BYTES:
                reports = await asyncio.to_thread(self._read_mail, data, source)
            else:
                reports = self._read_mail(data, source)
        except UnsafeInputError as exc:
            logger.warning("%s", exc)
            return "dmarc_refused"
        if not reports:
            return None
        ahead = [r for r in reports if r.begin > self._clock.now() + _AHEAD]
        if ahead:  # stored, its day would stay the latest judged one until then
            logger.warning(
                "%s: DMARC report %r from %s begins %s, in the future: refused",
                source,
                ahead[0].report_id,
                ahead[0].org,
                ahead[0].begin.isoformat(),
            )
            return "dmarc_refused"
        for report in reports:
            await self.save(report)
        return "dmarc"
