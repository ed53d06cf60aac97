"""``relay.forward_bounces``: a delivery report (RFC 3464) to the client's own
envelope sender for each hard bounce or expiry of mail it relayed through us,
so a campaign tool that reads its own bounce mailbox keeps working unchanged.

The forwarder is one more consumer of the events outbox (see
warmup.app.shipping): its cursor moves only after the reports of a batch are
committed, so a crash sends nothing twice and loses nothing (at least once; the
store keeps one report per recipient, so a batch done again adds none). Each
report is queued as a relayed message of the campaign :data:`DSN_CAMPAIGN` with
``high`` priority and goes out through the lanes like any other mail, with the
null envelope sender. Who may get one, and the report itself:
warmup.core.relay.dsn_report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from warmup.app.ports import RelayedMessage, RelayStore
from warmup.app.shipping import DeliveryError
from warmup.core.errors import StoreError
from warmup.core.event import EventType
from warmup.core.recipients.address import AddressError, parse_address
from warmup.core.relay.dsn_report import ReturnedMail, build_dsn, dsn_target, is_report
from warmup.core.relay.message import parse_priority

__all__ = ["DSN_CAMPAIGN", "BounceForwarder", "ForwardStore", "Returned"]

logger = logging.getLogger(__name__)

#: The campaign the reports are queued under.
DSN_CAMPAIGN = "warmup-dsn"
_TYPES = frozenset({EventType.bounced.value, EventType.expired.value})


@dataclass(frozen=True, slots=True, kw_only=True)
class Returned:
    """A bounced or expired recipient of a relayed message, as the store has it."""

    event_id: int
    expired: bool
    recipient_id: int
    recipient: str
    reply: str | None
    status: str | None
    at: datetime
    mail_from: str  # the client's envelope sender
    content: bytes  # the message as stored (b"" once retention emptied it)
    received_at: datetime
    is_dsn: bool  # the message is itself a report we made
    reported: bool  # a report on this recipient exists already


class ForwardStore(Protocol):
    async def returned_mail(self, event_ids: Sequence[int]) -> list[Returned]:
        """The relayed recipients behind these ``bounced``/``expired`` events."""
        ...


class BounceForwarder:
    """An EventSink that turns bounces and expiries into queued reports."""

    name = "forward:dsn"
    types = _TYPES
    # Its failures are the database's: keep trying for a week, then say so.
    retry_for = timedelta(days=7)
    lease = timedelta(minutes=1)  # a batch's look-ups and queued reports
    batch = 200

    def __init__(
        self,
        store: ForwardStore,
        submissions: RelayStore,
        *,
        own_domains: Collection[str],
        reporting_mta: str,
        from_domain: str,
        isp_of: Callable[[str], str | None],
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._submissions = submissions
        self._own = tuple(own_domains)
        self._reporting_mta = reporting_mta
        self._from_domain = from_domain
        self._isp_of = isp_of
        self._on_queued = on_queued
        self.queued = 0  # reports queued by this process

    async def deliver(self, events: Sequence[Mapping[str, Any]], now: datetime) -> None:
        try:
            found = await self._store.returned_mail([int(e["id"]) for e in events])
            reports = self._reports(found, now)
            await asyncio.gather(
                *(self._submissions.commit_message(r) for r in reports)
            )
        except StoreError as exc:
            raise DeliveryError(self.name, str(exc)) from exc
        if reports:
            self.queued += len(reports)
            logger.info("forward_bounces: %d delivery reports queued", len(reports))
            if self._on_queued is not None:
                self._on_queued()

    def _reports(
        self, found: Sequence[Returned], now: datetime
    ) -> list[RelayedMessage]:
        reports: list[RelayedMessage] = []
        seen: set[int] = set()
        for row in found:
            if row.recipient_id in seen:
                continue  # bounced live and reported late in one batch: once
            seen.add(row.recipient_id)
            report = self._report(row, now)
            if report is not None:
                reports.append(report)
        return reports

    def _report(self, row: Returned, now: datetime) -> RelayedMessage | None:
        if row.reported or row.is_dsn or is_report(row.content):
            return None  # one per recipient; never a report about a report
        target = dsn_target(row.mail_from, self._own)
        if target is None:
            return None  # the null sender or one of ours
        try:
            address = parse_address(target)
        except AddressError:
            logger.debug("forward_bounces: cannot report to %r", row.mail_from)
            return None
        returned = ReturnedMail(
            recipient_id=row.recipient_id,
            sender=address.address,
            recipient=row.recipient,
            expired=row.expired,
            reply=row.reply,
            status=row.status,
            received_at=row.received_at,
            at=row.at,
            original_headers=row.content,
        )
        content = build_dsn(
            returned,
            reporting_mta=self._reporting_mta,
            from_domain=self._from_domain,
            now=now,
        )
        return RelayedMessage(
            campaign=DSN_CAMPAIGN,
            content=content,
            mail_from="",
            peer="forward_bounces",
            auth_user=None,
            received_at=now,
            recipients=[(address, self._isp_of(address.domain))],
            priority=parse_priority("high", now=now),
            dsn_for=row.recipient_id,
        )
