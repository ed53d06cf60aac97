"""A simulated ISP mail server: aiosmtpd on loopback, in the running event loop.

Per attempt (RCPT; MAIL too for profiles with ``throttle_at_mail``) the server asks
the source IP's :class:`~warmup.sim.reputation.SourceReputation` first (blocked? over
the tolerated rate?), then the recipient's :class:`~warmup.sim.mailbox.Mailbox`
(unknown, full, greylisting, later DSN, later complaint). A 421 reply closes the
connection, as RFC 5321 requires.

With ``reports_maildir`` set, the DSNs and ARF complaints are written into that
maildir as they would arrive in the sender's bounce mailbox (RFC 3464 / RFC 5965,
quoting the original's headers); otherwise DSNs are only kept in ``dsn_queue``.

Time comes only from the injected ``now`` and randomness only from the injected
``random.Random`` (reply ids; the mailbox seed when none is given), so a run is
repeatable. Nothing per message is printed, logged or kept beyond counters: no bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import mailbox
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from warmup.adapters.smtp_server import Served, ServerSession, SMTPListener
from warmup.sim.mailbox import Mailbox, MailboxShares, classify_mailbox
from warmup.sim.profile import ISPProfile
from warmup.sim.reports import build_arf, build_dsn, returned_headers
from warmup.sim.reputation import Admission, SourceReputation

__all__ = ["DSNRecord", "IPStats", "SimulatedISP"]

logger = logging.getLogger(__name__)

_ADDRESS = re.compile(r"[^\s@<>]+@[^\s@<>]+")
_BAD_SENDER = "553 5.1.7 The sender address <{}> is not a valid RFC 5321 address."
_BAD_RECIPIENT = "553 5.1.3 The recipient address <{}> is not a valid RFC 5321 address."


@dataclass(frozen=True, slots=True, kw_only=True)
class IPStats:
    """What one ISP saw from one source IP (a snapshot)."""

    accepted: int = 0  # recipients accepted with 250 at the end of DATA (dsn included)
    throttled: int = 0
    blocked: int = 0
    unknown: int = 0
    full: int = 0
    greylisted: int = 0
    dsn: int = 0  # accepted, then queued for a later DSN
    complaints: int = 0  # accepted, then reported as spam (ARF)
    reputation: float = 0.0  # clean volume credit (see warmup.sim.reputation)
    tolerated_per_hour: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DSNRecord:
    """A recipient accepted with 250 that must bounce later by a DSN."""

    source_ip: str
    mail_from: str
    rcpt: str
    reply: str  # the DSN's Diagnostic-Code, e.g. "550 5.1.1 <…>: … User unknown …"
    accepted_at: datetime


class _Source:
    """Mutable counters and reputation of one source IP."""

    __slots__ = (
        "accepted",
        "blocked",
        "complaints",
        "dsn",
        "full",
        "greylisted",
        "reputation",
        "throttled",
        "unknown",
    )

    def __init__(self, reputation: SourceReputation) -> None:
        self.reputation = reputation
        self.accepted = self.throttled = self.blocked = self.unknown = 0
        self.full = self.greylisted = self.dsn = self.complaints = 0

    def snapshot(self) -> IPStats:
        return IPStats(
            accepted=self.accepted,
            throttled=self.throttled,
            blocked=self.blocked,
            unknown=self.unknown,
            full=self.full,
            greylisted=self.greylisted,
            dsn=self.dsn,
            complaints=self.complaints,
            reputation=self.reputation.clean,
            tolerated_per_hour=self.reputation.tolerated_per_hour,
        )


class _SimSMTP(ServerSession):
    """aiosmtpd's SMTP that closes after a 421 (if the ISP does)."""

    def __init__(self, isp: SimulatedISP, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(isp.listener, handler, **kwargs)
        self.hang_up_on_421 = isp.close_on_421


def _peer_ip(session: Session) -> str:
    peer: object = session.peer  # typed as str by aiosmtpd; a (host, port) in fact
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


class SimulatedISP(Served):
    """One simulated receiving provider on loopback; see the module docstring."""

    def __init__(
        self,
        profile: ISPProfile,
        *,
        now: Callable[[], datetime],
        rng: random.Random,
        unknown_share: float = 0.02,
        full_share: float = 0.005,
        greylist_share: float = 0.01,
        dsn_share: float = 0.005,
        complaint_share: float = 0.0,
        reports_maildir: str | Path | None = None,
        seed: int | None = None,
        close_on_421: bool = True,
    ) -> None:
        self.profile = profile
        self.now = now
        self.rng = rng
        self.shares = MailboxShares(
            unknown=unknown_share,
            full=full_share,
            greylist=greylist_share,
            dsn=dsn_share,
            complainer=complaint_share,
        )
        self.reports = (
            mailbox.Maildir(reports_maildir, create=True) if reports_maildir else None
        )
        self.reports_sent = 0
        self.seed = rng.getrandbits(64) if seed is None else seed
        self.close_on_421 = close_on_421
        self.received = 0  # messages accepted at the end of DATA
        self.connections = 0
        self.dsn_queue: list[DSNRecord] = []
        self._key = hashlib.blake2b(str(self.seed).encode(), digest_size=32).digest()
        self._sources: dict[str, _Source] = {}
        self._greylist: dict[tuple[str, str], datetime | None] = {}
        self.listener = SMTPListener(self._protocol)
        self._handler = _Handler(self)
        self.host = ""
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host`` (a loopback address) and return the bound port."""
        if self.listener.listening:
            raise RuntimeError(
                f"{self.profile.name} is already listening on {self.port}"
            )
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"a simulated ISP listens on loopback only, got {host!r}")
        self.port = await self.listener.start(host, port)
        self.host = host
        logger.debug(
            "simulated %s listening on %s:%d", self.profile.name, host, self.port
        )
        return self.port

    async def stop(self) -> None:
        """Stop listening and close open sessions; a second call does nothing."""
        await self.listener.stop()

    def _protocol(self) -> _SimSMTP:
        self.connections += 1
        return _SimSMTP(
            self,
            self._handler,
            hostname=self.profile.hostname,
            ident=self.render(self.profile.banner),
            loop=asyncio.get_running_loop(),
        )

    # --- what the ISP knows -----------------------------------------------------------

    @property
    def stats(self) -> dict[str, IPStats]:
        """Counters and reputation per source IP, as of now (a snapshot)."""
        return {ip: source.snapshot() for ip, source in sorted(self._sources.items())}

    def reputation(self, ip: str) -> SourceReputation:
        """The live reputation of ``ip`` (a fresh, unkept one for an IP not seen)."""
        source = self._sources.get(ip)
        if source is None:
            return SourceReputation(self.profile.tolerance)
        return source.reputation

    def mailbox(self, address: str) -> Mailbox:
        """How the mailbox behind ``address`` answers (stable within a seed)."""
        return classify_mailbox(address, key=self._key, shares=self.shares)

    def render(self, template: str, *, ip: str = "", rcpt: str = "") -> str:
        """Fill a reply template (placeholders: see :mod:`warmup.sim.profile`)."""
        return template.format(
            ip=ip,
            rcpt=rcpt,
            host=self.profile.hostname,
            id=f"{self.rng.getrandbits(64):016x}",
            epoch=int(self.now().timestamp()),
        )

    def _source(self, ip: str) -> _Source:
        source = self._sources.get(ip)
        if source is None:
            source = _Source(SourceReputation(self.profile.tolerance))
            self._sources[ip] = source
        return source

    # --- decisions (called by the handler) --------------------------------------------

    def on_mail(self, ip: str) -> str | None:
        """The reply refusing MAIL from ``ip`` now, or None to accept it."""
        if not self.profile.throttle_at_mail:
            return None
        source = self._source(ip)
        admission = source.reputation.admit(self.now(), record=False)
        if admission is Admission.ok:
            return None
        return self._refusal(source, admission, ip, "")

    def on_rcpt(self, ip: str, rcpt: str) -> str | None:
        """The reply refusing ``rcpt`` from ``ip`` now, or None to accept it."""
        source = self._source(ip)
        now = self.now()
        admission = source.reputation.admit(now)
        if admission is not Admission.ok:
            return self._refusal(source, admission, ip, rcpt)
        kind = self.mailbox(rcpt)
        if kind is Mailbox.unknown:
            source.unknown += 1
            source.reputation.bounced(now)
            return self.render(self.profile.unknown_reply, ip=ip, rcpt=rcpt)
        if kind is Mailbox.full:
            source.full += 1
            return self.render(self.profile.full_reply, ip=ip, rcpt=rcpt)
        if kind is Mailbox.greylist and self._greylisted(ip, rcpt, now):
            source.greylisted += 1
            return self.render(self.profile.greylist_reply, ip=ip, rcpt=rcpt)
        return None

    def on_data(
        self, ip: str, mail_from: str, rcpts: list[str], content: bytes = b""
    ) -> None:
        """A message from ``ip`` to ``rcpts`` was accepted with 250."""
        source = self._source(ip)
        now = self.now()
        self.received += 1
        source.accepted += len(rcpts)
        clean = 0
        for rcpt in rcpts:
            kind = self.mailbox(rcpt)
            if kind is Mailbox.dsn:
                source.dsn += 1
                source.reputation.bounced(now)
                reply = self.render(self.profile.dsn_reply, ip=ip, rcpt=rcpt)
                record = DSNRecord(
                    source_ip=ip,
                    mail_from=mail_from,
                    rcpt=rcpt,
                    reply=reply,
                    accepted_at=now,
                )
                self.dsn_queue.append(record)
                self._report_dsn(record, content)
            else:
                clean += 1
                if kind is Mailbox.complainer:
                    source.complaints += 1
                    self._report_complaint(ip, mail_from, rcpt, content)
        if clean:
            source.reputation.delivered(now, clean)

    def _file(self, report: bytes) -> None:
        if self.reports is not None:
            self.reports.add(report)
            self.reports_sent += 1

    def _report_dsn(self, record: DSNRecord, content: bytes) -> None:
        if self.reports is None or not record.mail_from:
            return
        self._file(
            build_dsn(
                to=record.mail_from,
                recipient=record.rcpt,
                diagnostic=record.reply,
                reporting_mta=self.profile.hostname,
                original_headers=returned_headers(content),
                now=record.accepted_at,
            )
        )

    def _report_complaint(
        self, ip: str, mail_from: str, rcpt: str, content: bytes
    ) -> None:
        if self.reports is None or not mail_from:
            return
        self._file(
            build_arf(
                to=mail_from,
                complainer=rcpt,
                source_ip=ip,
                reporting_domain=f"{self.profile.name}.sim",
                original_headers=returned_headers(content),
                now=self.now(),
            )
        )

    def _refusal(
        self, source: _Source, admission: Admission, ip: str, rcpt: str
    ) -> str:
        if admission is Admission.blocked:
            source.blocked += 1
            return self.render(self.profile.block_reply, ip=ip, rcpt=rcpt)
        source.throttled += 1
        return self.render(self.profile.throttle_reply, ip=ip, rcpt=rcpt)

    def _greylisted(self, ip: str, rcpt: str, now: datetime) -> bool:
        """True while (ip, rcpt) must still wait; the first attempt starts the wait."""
        pair = (ip, rcpt.lower())
        if pair not in self._greylist:
            self._greylist[pair] = now
            return True
        first = self._greylist[pair]
        if first is None:
            return False
        waited = (now - first).total_seconds()
        if waited < self.profile.greylist_delay_minutes * 60:
            return True
        self._greylist[pair] = None  # passed: accepted from now on
        return False


class _Handler:
    """aiosmtpd hooks: parse the session, let the :class:`SimulatedISP` decide."""

    def __init__(self, isp: SimulatedISP) -> None:
        self._isp = isp

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        greeting = f"250-{server.hostname} at your service, [{_peer_ip(session)}]"
        extra = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        return [greeting, *extra, *responses[1:]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if address not in ("", "<>") and not _ADDRESS.fullmatch(address):
            return _BAD_SENDER.format(address)
        refusal = self._isp.on_mail(_peer_ip(session))
        if refusal is not None:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return self._isp.render(self._isp.profile.mail_reply)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not _ADDRESS.fullmatch(address):
            return _BAD_RECIPIENT.format(address)
        refusal = self._isp.on_rcpt(_peer_ip(session), address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return self._isp.render(self._isp.profile.rcpt_reply, rcpt=address)

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        ip = _peer_ip(session)
        content = envelope.original_content or b""
        self._isp.on_data(ip, str(envelope.mail_from), list(envelope.rcpt_tos), content)
        return self._isp.render(self._isp.profile.data_reply, ip=ip)
