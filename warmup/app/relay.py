"""Accepting a message the relay received: clean it, file it, answer.

Copies addressed to the bounce domain go to the bounce sink (DSNs and complaints
from ISPs); the others become one message with its recipients in the queue,
committed before the caller may answer 250. The store records recipients on the
suppression list as ``suppressed`` (counted per campaign, never sent).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from warmup.app.ports import Clock, RelayedMessage, RelayStore
from warmup.core.bounces.late import Reporter
from warmup.core.bounces.verp import TRACE_HEADER
from warmup.core.recipients.address import Address
from warmup.core.relay.message import (
    PreparedMessage,
    parse_priority,
    prepare_message,
    received_field,
)
from warmup.core.relay.policy import Refusal, check_campaign_name, client_key
from warmup.core.settings import RelaySettings

__all__ = ["BounceSink", "RelayIntake", "RelayResult", "Submission"]

logger = logging.getLogger(__name__)

#: ``sink(raw message, envelope recipient, who handed it over)``: the bounce intake.
BounceSink: TypeAlias = Callable[[bytes, str, Reporter], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """One SMTP transaction as the relay took it, at the end of DATA."""

    mail_from: str
    recipients: Sequence[Address]  # accepted at RCPT, in order
    content: bytes
    peer_ip: str
    helo: str | None = None
    auth_user: str | None = None
    protocol: str = "ESMTP"  # for Received: ESMTP, ESMTPS, ESMTPA, ESMTPSA
    # The client is in relay.allowed_networks (its unsigned reports may count).
    trusted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayResult:
    campaign: str | None = None
    message_id: int | None = None
    queued: int = 0
    suppressed: int = 0
    bounces: int = 0


class RelayIntake:
    def __init__(
        self,
        store: RelayStore,
        *,
        clock: Clock,
        settings: RelaySettings,
        bounce_domain: str,
        hostname: str,
        isp_of: Callable[[str], str | None],
        bounce_sink: BounceSink | None = None,
        on_queued: Callable[[], None] | None = None,
        priority_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.bounce_domain = bounce_domain.lower()
        self.hostname = hostname
        self.isp_of = isp_of
        self.bounce_sink = bounce_sink
        # Called after a commit that queued mail (wakes the dispatcher).
        self.on_queued = on_queued
        # An AUTH user's default X-Warmup-Priority (the users file), if any.
        self.priority_of = priority_of

    async def submit(self, submission: Submission) -> RelayResult | Refusal:
        """File the message; a Refusal (the message is unusable) files nothing.

        StoreError and the sink's errors propagate: the caller answers 451.
        """
        now = self.clock.now()
        unique = list(dict.fromkeys(submission.recipients))
        bounces = [a for a in unique if a.domain == self.bounce_domain]
        relayed = [a for a in unique if a.domain != self.bounce_domain]
        prepared: PreparedMessage | None = None
        if relayed:
            cleaned = self._prepare(submission, now)
            if isinstance(cleaned, Refusal):
                return cleaned
            prepared = cleaned
        await self._to_sink(bounces, submission)
        if prepared is None:
            return RelayResult(bounces=len(bounces))
        campaign = prepared.campaign or self._campaign_of(submission.auth_user)
        filed = await self.store.commit_message(
            RelayedMessage(
                campaign=campaign,
                content=prepared.content,
                mail_from=submission.mail_from,
                peer=submission.peer_ip,
                auth_user=submission.auth_user,
                received_at=now,
                recipients=[(a, self.isp_of(a.domain)) for a in relayed],
                deadline=prepared.deadline,
                priority=self._priority(prepared, submission.auth_user, now),
            )
        )
        if filed.queued and self.on_queued is not None:
            self.on_queued()
        return RelayResult(
            campaign=campaign,
            message_id=filed.message_id,
            queued=filed.queued,
            suppressed=filed.suppressed,
            bounces=len(bounces),
        )

    def _prepare(
        self, submission: Submission, now: datetime
    ) -> PreparedMessage | Refusal:
        received = received_field(
            helo=submission.helo,
            peer_ip=submission.peer_ip,
            hostname=self.hostname,
            protocol=submission.protocol,
            now=now,
        )
        return prepare_message(
            submission.content,
            campaign_header=self.settings.campaign_header,
            trace_header=TRACE_HEADER,
            received=received,
            now=now,
        )

    def _priority(
        self, prepared: PreparedMessage, user: str | None, now: datetime
    ) -> float:
        """X-Warmup-Priority, else the AUTH user's default, else last (-1)."""
        if prepared.priority is not None:
            return prepared.priority
        if user is None or self.priority_of is None:
            return -1.0
        text = self.priority_of(user)
        if text is None:
            return -1.0
        try:
            return parse_priority(text, now=now)
        except ValueError:  # the users file is checked when read: not reached
            return -1.0

    def _campaign_of(self, user: str | None) -> str:
        if user is not None:
            try:
                return check_campaign_name(user)
            except ValueError:
                logger.warning("AUTH user %r cannot name a campaign", user)
        return self.settings.default_campaign

    async def _to_sink(self, bounces: list[Address], submission: Submission) -> None:
        if not bounces:
            return
        if self.bounce_sink is None:  # the relay refuses these at RCPT
            raise RuntimeError("mail for the bounce domain but no bounce sink")
        reporter = Reporter(
            host=client_key(submission.peer_ip), outside=not submission.trusted
        )
        for address in bounces:
            await self.bounce_sink(submission.content, address.address, reporter)
