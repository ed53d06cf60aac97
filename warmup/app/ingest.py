"""Bounce intake: a bounce mail in, its effects saved (rules in core/bounces/late.py).

Used by ``warmup bounces ingest``, the maildir poll of ``warmup run`` and the
relay listener (mail to the bounce domain). Recipient effects (suppression,
bounced, retry) are saved at once; the lane's reaction is applied by the node
that sends on that lane, on its next maintenance beat (see the dispatcher).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Protocol

from warmup.app.ports import Clock
from warmup.core.bounces.late import (
    Effect,
    FoundBy,
    LateReport,
    Original,
    Reporter,
    SentRecipient,
    UnsignedBudget,
    UnsignedRule,
    decide_unsigned,
    effect_of,
    event_key,
    find_original,
)
from warmup.core.bounces.parse import (
    BounceKind,
    BounceRecipient,
    BounceReport,
    complaint_about,
    parse_bounce,
)
from warmup.core.bounces.verp import VERPToken
from warmup.core.errors import StoreError
from warmup.core.lanes.reaction import RecipientView, Said, Source, consequences
from warmup.core.recipients.address import AddressError, parse_address
from warmup.core.relay.policy import client_key
from warmup.core.settings import BounceSettings, RetryPolicy

__all__ = ["BounceIntake", "Inbox", "IngestResult", "LateReportStore", "MailHandler"]

logger = logging.getLogger(__name__)

# Bounces are mostly a few KB (the corpus averages 4 KB, about 0.4 ms to parse).
_PARSE_INLINE_BYTES = 64 * 1024

# Headers naming the address a mail was delivered to (set by the local MTA).
_ENVELOPE_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "To",
)


# "from mx.example (mx.example [192.0.2.1])": the address in brackets.
_RECEIVED_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]{2,45})\]")


class Inbox(Protocol):
    """A bounce mailbox: mails not yet handled, and marking one handled."""

    def unseen(self, limit: int = 500) -> list[tuple[str, bytes]]: ...

    def mark_seen(self, key: str) -> None: ...


class MailHandler(Protocol):
    """Another kind of mail that arrives where bounces do (an unsubscribe by
    mail, a DMARC aggregate report): tried before the mail is read as a bounce."""

    async def take(
        self, data: bytes, *, source: str, envelope_to: Sequence[str]
    ) -> str | None:
        """What the mail was (a label for the counts) if this handler took it,
        else None. ``envelope_to``: its envelope and delivery-header recipients."""
        ...


class LateReportStore(Protocol):
    async def sent_recipient(self, recipient_id: int) -> SentRecipient | None: ...

    async def latest_sent_to(
        self, address: str, since: datetime
    ) -> SentRecipient | None: ...

    async def save_late_reports(
        self, events: Sequence[LateReport], now: datetime
    ) -> list[bool]: ...


@dataclass(slots=True, kw_only=True)
class IngestResult:
    """One mail: what it was, and each recipient report with whether it was new."""

    source: str
    report: BounceReport
    forged: bool = False
    detail: str = ""
    events: list[tuple[LateReport, bool]] = field(default_factory=list)
    # Why a report without a signed token changed nothing ("" if it did not apply).
    held: str = ""
    # Set when a MailHandler took the mail instead: what it was.
    handled_as: str | None = None

    @property
    def label(self) -> str:
        if self.handled_as is not None:
            return self.handled_as
        return "forged" if self.forged else self.report.kind.value


@dataclass(slots=True)
class _Staged:
    """A mail read and its reports built, not yet saved; ``rebuild`` builds
    them again from the store (after an earlier mail's were saved)."""

    result: IngestResult
    events: list[LateReport] = field(default_factory=list)
    rebuild: Callable[[], Awaitable[list[LateReport]]] | None = None

    def recipients(self) -> set[int]:
        return {e.recipient_id for e in self.events if e.recipient_id is not None}


def _mark_seen(inbox: Inbox, keys: Sequence[str]) -> None:
    for key in keys:
        inbox.mark_seen(key)


class BounceIntake:
    # Mails per transaction when draining a mailbox (one commit each was the
    # cost: 329 mails/s; bench/dsn.py).
    batch_size = 100

    def __init__(
        self,
        store: LateReportStore,
        *,
        clock: Clock,
        return_path: str,
        secret: bytes,
        retry: RetryPolicy,
        unsigned: UnsignedRule | None = None,
        handlers: Sequence[MailHandler] = (),
    ) -> None:
        self._store = store
        self._handlers = tuple(handlers)
        self._clock = clock
        self._return_path = return_path
        self._domain = return_path.rpartition("@")[2].lower()
        self._secret = secret
        self._retry = retry
        # Unsigned reports cost nothing unless configured (core.bounces.late rule 5).
        self._unsigned = unsigned or UnsignedRule()
        self._budget = UnsignedBudget(self._unsigned.per_host_per_hour)

    @classmethod
    def configured(
        cls,
        store: LateReportStore,
        *,
        clock: Clock,
        settings: BounceSettings,
        retry: RetryPolicy,
        secret: bytes,
        handlers: Sequence[MailHandler] = (),
    ) -> BounceIntake:
        """The intake as `bounces:` in the config describes it."""
        return cls(
            store,
            clock=clock,
            return_path=settings.return_path,
            secret=secret,
            retry=retry,
            unsigned=UnsignedRule(
                lookback=settings.recipient_lookback,
                per_host_per_hour=settings.unsigned_per_host_per_hour,
                from_outside=settings.unsigned_from_outside,
            ),
            handlers=handlers,
        )

    async def ingest(
        self,
        data: bytes,
        *,
        source: str,
        envelope_to: Sequence[str] = (),
        reporter: Reporter | None = None,
    ) -> IngestResult:
        """Parse one mail and save what it says. ``envelope_to``: the RCPT TO it
        came with, when known (the relay listener); ``reporter``: the relay client
        that handed it over (see :func:`_reporter`)."""
        staged = await self._stage(
            data, source=source, envelope_to=envelope_to, reporter=reporter
        )
        await self._save([staged])
        return staged.result

    async def _stage(
        self,
        data: bytes,
        *,
        source: str,
        envelope_to: Sequence[str] = (),
        reporter: Reporter | None = None,
    ) -> _Staged:
        """Parse one mail and build its reports, unsaved (mail a handler took
        is saved by the handler)."""
        if self._handlers:
            addressed = (*envelope_to, *_headers(data).envelope)
            for handler in self._handlers:
                label = await handler.take(data, source=source, envelope_to=addressed)
                if label is not None:
                    empty = BounceReport(kind=BounceKind.not_bounce)
                    return _Staged(
                        IngestResult(source=source, report=empty, handled_as=label)
                    )
        # A large mail is parsed off the event loop: the relay and the engine
        # share it, and the relay takes bounce-domain mail from anyone.
        if len(data) > _PARSE_INLINE_BYTES:
            report = await asyncio.to_thread(parse_bounce, data)
        else:
            report = parse_bounce(data)
        result = IngestResult(source=source, report=report)
        if report.kind is BounceKind.not_bounce:
            return _Staged(result)
        headers = _headers(data)
        original = find_original(
            envelope=(*envelope_to, *headers.envelope, report.envelope_to),
            traces=self._traces(report),
            return_path=self._return_path,
            secret=self._secret,
        )
        if original.forged:
            logger.warning("%s: ignored, forged bounce: %s", source, original.detail)
            result.forged, result.detail = True, original.detail
            return _Staged(result)
        now = self._clock.now()
        report_id = headers.message_id or hashlib.sha256(data).hexdigest()
        target = None
        if original.token is None:
            target, result.held = self._unsigned_target(
                report, _reporter(reporter, headers), source, now
            )

        async def build() -> list[LateReport]:
            return [
                await self._event(
                    report, item, original, source, report_id, now, item is target
                )
                for item in _items(report)
            ]

        return _Staged(result, await build(), build)

    async def _save(self, batch: Sequence[_Staged]) -> None:
        """One transaction for the reports of every mail in ``batch``."""
        events = [event for staged in batch for event in staged.events]
        if not events:
            return
        fresh = iter(await self._store.save_late_reports(events, self._clock.now()))
        for staged in batch:
            staged.result.events = [(event, next(fresh)) for event in staged.events]

    async def ingest_batch(
        self, mails: Sequence[tuple[str, bytes]]
    ) -> list[IngestResult | Exception]:
        """Ingest several mails (source label, bytes), their reports saved in one
        transaction (a mail about a recipient an earlier mail of the batch
        already changed first saves those, then looks again, so each sees what
        the one before did, as one by one). Per mail: its result, or the
        exception its own content raised. A ``StoreError`` propagates: mails
        not yet saved must not be marked seen."""
        outcomes: list[IngestResult | Exception] = []
        batch: list[_Staged] = []
        touched: set[int] = set()
        for source, data in mails:
            try:
                staged = await self._stage(data, source=source)
            except StoreError:
                raise
            except Exception as exc:  # this mail's own problem
                outcomes.append(exc)
                continue
            if staged.recipients() & touched:
                await self._save(batch)
                batch.clear()
                touched.clear()
                assert staged.rebuild is not None  # only staged mails have events
                staged.events = await staged.rebuild()
            batch.append(staged)
            touched |= staged.recipients()
            outcomes.append(staged.result)
        await self._save(batch)
        return outcomes

    async def drain(self, inbox: Inbox, *, label: str = "maildir") -> Counter[str]:
        """Ingest every unseen mail of ``inbox``, ``batch_size`` mails per
        transaction; each is marked seen only once its effects are saved (a
        store failure leaves it and the rest for the next poll).

        The inbox is read and marked in a worker thread: a poll of a full maildir
        would otherwise stall the event loop the dispatcher and relay share."""
        counts: Counter[str] = Counter()
        unseen = await asyncio.to_thread(inbox.unseen)
        for start in range(0, len(unseen), self.batch_size):
            chunk = unseen[start : start + self.batch_size]
            outcomes = await self.ingest_batch(
                [(f"{label}:{key}", data) for key, data in chunk]
            )
            # Saved (or unreadable: retrying it would block the mailbox forever;
            # it stays in the maildir, seen, for a look by hand).
            await asyncio.to_thread(_mark_seen, inbox, [key for key, _ in chunk])
            for (key, _), outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    logger.error(
                        "%s:%s: cannot handle this mail, skipped",
                        label,
                        key,
                        exc_info=outcome,
                    )
                    counts["failed"] += 1
                else:
                    counts[outcome.label] += 1
        if counts:
            logger.info(
                "bounce mailbox: %s",
                ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())),
            )
        return counts

    def _traces(self, report: BounceReport) -> tuple[str, ...]:
        traces = [report.original_trace]
        message_id = report.original_message_id.strip().strip("<>").lower()
        if message_id.endswith("@" + self._domain):
            traces.append(message_id)
        return tuple(t for t in traces if t)

    async def _event(
        self,
        report: BounceReport,
        item: BounceRecipient,
        original: Original,
        source: str,
        report_id: str,
        now: datetime,
        look_up: bool,
    ) -> LateReport:
        sent, found_by = await self._sent(item.recipient, original, now, look_up)
        token = (
            VERPToken(recipient_id=sent.id, attempt=sent.attempts)
            if sent is not None and original.token is None
            else original.token
        )
        effect = (
            effect_of(kind=report.kind.value, action=item.action, verdict=item.verdict)
            if sent is not None
            else Effect.unmatched
        )
        event = LateReport(
            key=event_key(
                token=token,
                kind=report.kind.value,
                action=item.action,
                address=item.recipient,
                report_id=report_id,
            ),
            received_at=now,
            source=source,
            kind=report.kind.value,
            address=sent.address if sent is not None else item.recipient,
            action=item.action,
            status=item.status,
            verdict=item.verdict,
            reason=item.reason,
            reply=item.reply,
            effect=effect,
            found_by=found_by,
            recipient_id=sent.id if sent is not None else None,
            attempt=token.attempt if token is not None else None,
            lane_id=sent.lane_id if sent is not None else None,
        )
        if sent is None:
            return event
        if found_by is FoundBy.recipient and effect is not Effect.ignore:
            logger.info(
                "%s: unsigned report, matched by its recipient: %s %s",
                source,
                effect.value,
                sent.address,
            )
        return self._with_effects(event, sent, now)

    def _unsigned_target(
        self, report: BounceReport, reporter: Reporter, source: str, now: datetime
    ) -> tuple[BounceRecipient | None, str]:
        """The one recipient of an unsigned report that may be looked up, if any
        (core.bounces.late rule 5), else why not; a report held back is logged with
        what it says."""
        acting = [item for item in _items(report) if _would_act(report, item)]
        if not acting:
            return None, ""
        why = decide_unsigned(self._unsigned, reporter)
        if why is None and not self._budget.take(reporter.host, now):
            why = (
                f"over bounces.unsigned_per_host_per_hour "
                f"({self._unsigned.per_host_per_hour})"
            )
        if why is None:
            return acting[0], ""
        logger.info(
            "%s: unsigned %s from %s about %d recipient(s) (%r first, %s) "
            "changes nothing: %s",
            source,
            report.kind.value,
            reporter.host,
            len(acting),
            acting[0].recipient,
            acting[0].verdict.value,
            why,
        )
        return None, why

    async def _sent(
        self, address: str, original: Original, now: datetime, look_up: bool
    ) -> tuple[SentRecipient | None, FoundBy | None]:
        if original.token is not None:
            sent = await self._store.sent_recipient(original.token.recipient_id)
            return sent, original.found_by if sent is not None else None
        lookback = self._unsigned.lookback
        if not look_up or lookback is None:
            return None, None
        try:
            normalized = parse_address(address).address
        except AddressError:
            return None, None
        sent = await self._store.latest_sent_to(normalized, now - lookback)
        return sent, FoundBy.recipient if sent is not None else None

    def _with_effects(
        self, event: LateReport, sent: SentRecipient, now: datetime
    ) -> LateReport:
        """The recipient side of a late report (core.lanes.reaction, source ``late``);
        the lane side is applied by the node that sends on the lane."""
        said = Said(
            source=Source.late,
            verdict=event.verdict,
            reason=event.reason,
            text=event.reply,
            effect=event.effect,
            # A dead domain is suppressed whole only on a signed token: matched
            # by its recipient alone, an unsigned report could be anyone's
            # forgery, so it may cost one address we mailed, never a domain.
            signed=event.found_by is not FoundBy.recipient,
        )
        recipient = RecipientView(
            address=sent.address,
            domain=sent.domain,
            attempts=sent.attempts,
            queued_at=sent.queued_at,
        )
        done = consequences(
            said, recipient=recipient, lane=None, now=now, retry=self._retry
        )
        if done.decision is None:
            return replace(event, suppression=done.suppression)
        return replace(
            event,
            suppression=done.suppression,
            new_state=done.decision.state,
            next_attempt_at=done.decision.next_attempt_at,
        )


def _reporter(given: Reporter | None, headers: _Headers) -> Reporter:
    """Who to count an unsigned report against: the relay client, unless it is
    a trusted one (our own MTA handing mail on) that names the sender in its
    Received field; for a mailbox, the sender our MTA names."""
    if given is not None and (given.outside or not headers.received_from):
        return given
    return Reporter(host=headers.received_from or "unknown")


def _would_act(report: BounceReport, item: BounceRecipient) -> bool:
    kind = report.kind.value
    effect = effect_of(kind=kind, action=item.action, verdict=item.verdict)
    return effect is not Effect.ignore


def _items(report: BounceReport) -> tuple[BounceRecipient, ...]:
    """The recipient reports; a complaint that names no one still counts once."""
    if report.recipients:
        return report.recipients
    if report.kind is BounceKind.feedback:
        return (complaint_about(report.original_to),)
    return ()


@dataclass(frozen=True, slots=True)
class _Headers:
    envelope: tuple[str, ...]
    message_id: str
    received_from: str = ""  # the IP in the top Received field (our MTA's)


def _headers(data: bytes) -> _Headers:
    try:
        message = BytesHeaderParser(policy=compat32).parsebytes(data)
        values = [
            str(value)
            for name in _ENVELOPE_HEADERS
            for value in message.get_all(name, [])
        ]
        envelope = tuple(address for _, address in getaddresses(values) if address)
        return _Headers(
            envelope,
            str(message.get("Message-ID", "")).strip(),
            _received_from(str(message.get("Received", ""))),
        )
    except Exception:  # headers the parser cannot read: no envelope hints
        return _Headers((), "")


def _received_from(field: str) -> str:
    """The client IP our mail server wrote into its Received field, if any."""
    match = _RECEIVED_IP.search(field[:2000])
    return client_key(match.group(1)) if match else ""
