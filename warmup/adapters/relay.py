"""The submission relay: aiosmtpd in front of :class:`RelayIntake`.

EHLO offers SIZE, 8BITMIME, SMTPUTF8, PIPELINING, STARTTLS (with a certificate) and,
once the session is encrypted and users exist, AUTH PLAIN LOGIN. Who may do what
is :mod:`warmup.core.relay.policy`; this module turns it into SMTP replies:

- a client outside ``allowed_networks`` must STARTTLS first when it has nothing
  else to do here (no bounce intake), and may relay only after AUTH;
- the 250 after DATA comes only after the message and its recipients are committed
  (``asyncio.shield``: a client hanging up mid-commit does not tear the write);
- a store or sink failure answers 451 and nothing is kept;
- AUTH checks scrypt hashes in a thread, never on the loop; failures are answered
  more slowly (on the injected clock) and then refused for a while;
- ceilings on sessions, messages being received, session age and the size of
  what an outsider may send (see :mod:`warmup.adapters.relay_session`).

On :meth:`RelayServer.stop` the listener closes, messages being committed finish
(within a grace period), then the remaining sessions are closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from datetime import timedelta
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from warmup.adapters.relay_session import RelayEnvelope, RelaySession
from warmup.adapters.relay_users import UserFile
from warmup.adapters.smtp_server import Served, SMTPListener
from warmup.app.ports import Clock
from warmup.app.relay import RelayIntake, Submission
from warmup.core.errors import InputError, StoreError
from warmup.core.relay.counts import RelayCounts
from warmup.core.relay.policy import (
    ClientLimits,
    Refusal,
    decide_recipient,
    decide_sender,
)
from warmup.core.settings import RelaySettings

__all__ = ["RelayServer", "server_tls_context"]

logger = logging.getLogger(__name__)
aiosmtpd_log = logging.getLogger("mail.log")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_TEMPORARY = "451 4.3.0 Temporary failure, please try again later"
_FULL = Refusal(421, "4.7.0", "Too many connections, try again later")


def _login_data_notice(record: logging.LogRecord) -> bool:
    """aiosmtpd warns at every successful AUTH about its own deprecated field."""
    return "login_data is deprecated" not in record.getMessage()


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A TLS 1.2+ server context from PEM files; InputError if they do not load."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(
            cert, f"cannot load the TLS certificate and key: {exc}"
        ) from None
    return context


class RelayServer(Served):
    """The listener; ``async with`` it, or :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        *,
        settings: RelaySettings,
        intake: RelayIntake,
        clock: Clock,
        hostname: str,
        users: UserFile | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.intake = intake
        self.clock = clock
        self.hostname = hostname
        self.users = users
        self.tls_context = tls_context
        self.limits = ClientLimits(settings)
        self.networks: list[IPNetwork] = [
            ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks
        ]
        self.listener = SMTPListener(self._protocol)
        self.sessions = 0  # admitted sessions (max_connections)
        # Messages being received: all, and those from clients that may not relay.
        self.data_all = asyncio.Semaphore(settings.max_concurrent_data)
        self.data_outside = asyncio.Semaphore(max(settings.max_concurrent_data // 2, 1))
        self.committing = 0
        # Messages answered 451 because the database failed (one log line each).
        self.store_failures = 0
        # For the metrics: accepted, refused by reason, AUTH failures.
        self.counts = RelayCounts()
        self._settled = asyncio.Event()
        self._settled.set()
        # Set (and replaced) whenever an AUTH check ends: logins waiting behind
        # checks in progress ask again (RelaySession._auth_turn).
        self.auth_turn = asyncio.Event()

    @property
    def port(self) -> int:
        return self.listener.port

    @property
    def has_sink(self) -> bool:
        return self.intake.bounce_sink is not None

    def allowed(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def admit(self, ip: str, *, trusted: bool) -> Refusal | None:
        """A new connection: the global cap (not for the allowed networks: the
        campaign tool is never locked out by strangers), then the client's; on a
        refusal it is not counted (do not :meth:`leave`)."""
        if not trusted and self.sessions >= self.settings.max_connections:
            return _FULL
        refusal = self.limits.open(ip)
        if refusal is None:
            self.sessions += 1
        return refusal

    def leave(self, ip: str) -> None:
        self.sessions -= 1
        self.limits.close(ip)

    async def data_slots(self, *, may_relay: bool) -> list[asyncio.Semaphore] | None:
        """Wait (up to half the timeout) for a slot to receive one more message;
        a client that may not relay also needs one of the half of the slots open
        to such clients. The slots taken (release each when done), or None."""
        wanted = [self.data_all] if may_relay else [self.data_outside, self.data_all]
        if not any(slots.locked() for slots in wanted):  # the usual case: no wait,
            for slots in wanted:  # so no timer to set and cancel (nor queue jumped:
                await slots.acquire()  # locked() is true while others wait)
            return wanted
        taken: list[asyncio.Semaphore] = []
        try:
            async with asyncio.timeout(self.settings.timeout.total_seconds() / 2):
                for slots in wanted:
                    await slots.acquire()
                    taken.append(slots)
        except BaseException as exc:
            for slots in taken:
                slots.release()
            if isinstance(exc, TimeoutError):
                return None
            raise
        return taken

    def auth_ended(self) -> None:
        """An AUTH check ended: wake the logins waiting for their turn."""
        ended, self.auth_turn = self.auth_turn, asyncio.Event()
        ended.set()

    async def start(self) -> None:
        if _login_data_notice not in aiosmtpd_log.filters:
            aiosmtpd_log.addFilter(_login_data_notice)
        if self.users is not None and self.tls_context is None:
            logger.warning(
                "relay: users_file set but no tls_cert: AUTH is never offered"
            )
        await self.listener.start(self.settings.listen_host, self.settings.listen_port)
        logger.info(
            "relay listening on %s:%d (STARTTLS %s, AUTH %s, bounce intake %s)",
            self.settings.listen_host,
            self.port,
            "on" if self.tls_context else "off",
            "on" if self.users and self.tls_context else "off",
            "on" if self.has_sink else "off",
        )

    async def stop(self, grace: timedelta = timedelta(seconds=5)) -> None:
        """Stop listening, let commits in progress finish, close every session."""
        if not self.listener.listening:
            return
        self.listener.stop_listening()
        try:
            await asyncio.wait_for(self._settled.wait(), grace.total_seconds())
        except TimeoutError:
            logger.warning("relay: %d messages still being filed", self.committing)
        await self.listener.stop()

    def _filed(self, task: asyncio.Future[Any]) -> None:
        """Done with a message, answered or not: a stop may go on when none is left."""
        self.committing -= 1
        if not self.committing:
            self._settled.set()
        if not task.cancelled() and task.exception() is not None:
            logger.debug("relay: filing failed: %r", task.exception())

    def _protocol(self) -> RelaySession:
        excluded = () if self.users is not None else ("PLAIN", "LOGIN")
        return RelaySession(
            self,
            _Handler(self),
            hostname=self.hostname,
            ident="ESMTP warmup",
            data_size_limit=self.settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=self.tls_context,
            timeout=self.settings.timeout.total_seconds(),
            auth_require_tls=True,
            auth_exclude_mechanism=excluded,
            loop=asyncio.get_running_loop(),
        )

    async def file(self, submission: Submission) -> str:
        """The DATA reply: commit (shielded from a hang-up), then answer."""
        task = asyncio.ensure_future(self.intake.submit(submission))
        self.committing += 1
        self._settled.clear()
        task.add_done_callback(self._filed)
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            raise  # the client hung up; the task goes on (see _filed)
        except StoreError as exc:  # the database away: one line, no traceback
            self.store_failures += 1
            logger.warning(
                "relay: could not file a message from %s (451): %s",
                submission.peer_ip,
                exc,
            )
            return _TEMPORARY
        except Exception:
            logger.exception(
                "relay: could not file a message from %s", submission.peer_ip
            )
            return _TEMPORARY
        if isinstance(result, Refusal):
            return result.reply
        self.counts.refuse("suppressed", result.suppressed)
        if result.message_id is not None and result.campaign is not None:
            self.counts.accept(result.campaign)
        logger.debug(
            "relay: message %s from %s: campaign %r, %d queued, %d suppressed, "
            "%d to the bounce intake",
            result.message_id,
            submission.peer_ip,
            result.campaign,
            result.queued,
            result.suppressed,
            result.bounces,
        )
        if result.message_id is None:
            return "250 2.0.0 OK"
        return f"250 2.0.0 OK queued as {result.message_id}"


def _envelope(envelope: Envelope) -> RelayEnvelope:
    assert isinstance(envelope, RelayEnvelope)
    return envelope


class _Handler:
    """aiosmtpd hooks; the decisions are relay_policy's."""

    def __init__(self, relay: RelayServer) -> None:
        self._relay = relay

    async def handle_exception(self, error: Exception) -> str:
        """A bug of ours mid-session: logged with its traceback, but the client
        gets a plain temporary failure, not aiosmtpd's ``500 Error: (…) …``."""
        logger.error("relay: session error: %r", error, exc_info=error)
        return "451 4.3.0 Internal error, try again later"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        kept = [r for r in responses if r.strip() != "250-AUTH"]
        return [*kept[:-1], "250-PIPELINING", kept[-1]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        assert isinstance(server, RelaySession)
        refusal = decide_sender(
            may_relay=server.may_relay(), has_sink=self._relay.has_sink
        ) or self._relay.limits.message(server.peer_ip, self._relay.clock.now())
        if refusal is not None:
            return refusal.reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        assert isinstance(server, RelaySession)
        mailbox, server.pending = server.pending, None
        if mailbox is None:  # pragma: no cover - aiosmtpd parsed what we did not
            return "553 5.1.3 Bad recipient address syntax"
        taken = _envelope(envelope)
        if len(taken.addresses) >= self._relay.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        route = decide_recipient(
            mailbox,
            bounce_domain=self._relay.intake.bounce_domain,
            has_sink=self._relay.has_sink,
            may_relay=server.may_relay(),
        )
        if isinstance(route, Refusal):
            return route.reply
        taken.rcpt_tos.append(address)
        taken.addresses.append(mailbox)
        return "250 2.1.5 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(server, RelaySession)
        taken = _envelope(envelope)
        submission = Submission(
            mail_from=str(taken.mail_from or ""),
            recipients=tuple(taken.addresses),
            content=bytes(taken.original_content or b""),
            peer_ip=server.peer_ip,
            helo=session.host_name,
            auth_user=server.user(),
            protocol=server.protocol_name(),
            trusted=server.allowed_network,
        )
        return await self._relay.file(submission)
