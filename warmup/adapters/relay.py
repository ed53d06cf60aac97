"""The submission relay: aiosmtpd in front of :class:`SubmissionIntake`.

EHLO offers SIZE, 8BITMIME, SMTPUTF8, PIPELINING, STARTTLS (with a certificate) and,
once the session is encrypted and users exist, AUTH PLAIN LOGIN. Who may do what
is :mod:`warmup.core.relay_policy`; this module turns it into SMTP replies:

- a client outside ``allowed_networks`` must STARTTLS first when it has nothing
  else to do here (no bounce intake), and may relay only after AUTH;
- the 250 after DATA comes only after the message and its recipients are committed
  (``asyncio.shield``: a client hanging up mid-commit does not tear the write);
- a store or sink failure answers 451 and nothing is kept;
- AUTH checks scrypt hashes in a thread, never on the loop; failures are answered
  more slowly (on the injected clock) and then refused for a while.

On :meth:`RelayServer.stop` the listener closes, messages being committed finish
(within a grace period), then the remaining sessions are closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import ssl
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, AnyStr, Self

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

from warmup.adapters.relay_users import USER_NAME, UserFile
from warmup.app.ports import Clock
from warmup.app.submit import Submission, SubmissionIntake
from warmup.core.address import Address
from warmup.core.errors import InputError, StoreError
from warmup.core.relay_policy import (
    ClientLimits,
    Refusal,
    check_command,
    check_path,
    decide_recipient,
    decide_sender,
    split_path,
)
from warmup.core.settings import RelaySettings

__all__ = ["RelayServer", "server_tls_context"]

logger = logging.getLogger(__name__)
aiosmtpd_log = logging.getLogger("mail.log")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_TEMPORARY = "451 4.3.0 Temporary failure, please try again later"
_SYNTAX_ERRORS = frozenset(
    {"500", "501", "502", "503", "504", b"500", b"501", b"502", b"503", b"504"}
)
_MAX_ERRORS = 10


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


class _Envelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[Address] = []


class RelayServer:
    """The listener; ``async with`` it, or :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        *,
        settings: RelaySettings,
        intake: SubmissionIntake,
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
        self.port = 0
        self.live: set[_RelaySMTP] = set()
        self.committing = 0
        # Messages answered 451 because the database failed (one log line each).
        self.store_failures = 0
        self._settled = asyncio.Event()
        self._settled.set()
        self._server: asyncio.Server | None = None

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

    async def start(self) -> None:
        if _login_data_notice not in aiosmtpd_log.filters:
            aiosmtpd_log.addFilter(_login_data_notice)
        if self.users is not None and self.tls_context is None:
            logger.warning(
                "relay: users_file set but no tls_cert: AUTH is never offered"
            )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self.settings.listen_host, self.settings.listen_port
        )
        self.port = self._server.sockets[0].getsockname()[1]
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
        if self._server is None:
            return
        self._server.close()
        try:
            await asyncio.wait_for(self._settled.wait(), grace.total_seconds())
        except TimeoutError:
            logger.warning("relay: %d messages still being filed", self.committing)
        for protocol in list(self.live):
            protocol.hang_up()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _filed(self, task: asyncio.Future[Any]) -> None:
        """Done with a message, answered or not: a stop may go on when none is left."""
        self.committing -= 1
        if not self.committing:
            self._settled.set()
        if not task.cancelled() and task.exception() is not None:
            logger.debug("relay: filing failed: %r", task.exception())

    def _protocol(self) -> _RelaySMTP:
        excluded = () if self.users is not None else ("PLAIN", "LOGIN")
        return _RelaySMTP(
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


def _envelope(envelope: Envelope) -> _Envelope:
    assert isinstance(envelope, _Envelope)
    return envelope


class _Handler:
    """aiosmtpd hooks; the decisions are relay_policy's."""

    def __init__(self, relay: RelayServer) -> None:
        self._relay = relay

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
        assert isinstance(server, _RelaySMTP)
        refusal = decide_sender(
            may_relay=server.may_relay(), has_sink=self._relay.has_sink
        ) or self._relay.limits.message(server.client_ip, self._relay.clock.now())
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
        assert isinstance(server, _RelaySMTP)
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
        assert isinstance(server, _RelaySMTP)
        taken = _envelope(envelope)
        submission = Submission(
            mail_from=str(taken.mail_from or ""),
            recipients=tuple(taken.addresses),
            content=bytes(taken.original_content or b""),
            peer_ip=server.client_ip,
            helo=session.host_name,
            auth_user=server.user(),
            protocol=server.protocol_name(),
        )
        return await self._relay.file(submission)


class _RelaySMTP(SMTP):
    """aiosmtpd's SMTP with per-client limits, strict paths and async AUTH."""

    def __init__(self, relay: RelayServer, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._relay = relay
        self.client_ip = ""
        self.allowed_network = False
        self.refused: Refusal | None = None
        self.counted = False
        self.pending: Address | None = None  # the RCPT being handled
        self.errors = 0  # syntax and sequence errors (50x) in this session

    # -- connection --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the TLS upgrade of a connection
            peer = transport.get_extra_info("peername")
            self.client_ip = str(peer[0]) if peer else ""
            self.allowed_network = self._relay.allowed(self.client_ip)
            # With nothing to offer an outsider but AUTH, insist on TLS first.
            self.require_starttls = bool(
                self.tls_context
                and not self.allowed_network
                and not self._relay.has_sink
            )
            self.refused = self._relay.limits.open(self.client_ip)
            self.counted = self.refused is None
            self._relay.live.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._relay.live.discard(self)
        if self.counted:
            self.counted = False
            self._relay.limits.close(self.client_ip)
        super().connection_lost(error)

    def hang_up(self) -> None:
        if self.transport is not None:
            self.transport.close()
        else:
            self._relay.live.discard(self)

    async def _handle_client(self) -> None:
        if self.refused is None:
            await super()._handle_client()
            return
        await self.push(self.refused.reply)
        if self.transport is not None:
            self.transport.close()

    def _create_envelope(self) -> _Envelope:
        return _Envelope()

    # -- who is this -------------------------------------------------------------

    def may_relay(self) -> bool:
        return self.allowed_network or bool(self.session and self.session.authenticated)

    def user(self) -> str | None:
        session = self.session
        if session is None or not session.authenticated:
            return None
        return str(session.auth_data)

    def protocol_name(self) -> str:
        if self.session is None or not self.session.extended_smtp:
            return "SMTP"
        tls = "S" if self.session.ssl is not None else ""
        auth = "A" if self.session.authenticated else ""
        return f"ESMTP{tls}{auth}"

    # -- commands ----------------------------------------------------------------

    async def smtp_MAIL(self, arg: str | None) -> None:
        refusal = _check_arg(arg, "FROM:", recipient=False, smtputf8=None)
        if isinstance(refusal, Refusal):
            await self.push(refusal.reply)
            return
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        smtputf8 = bool(self.envelope and self.envelope.smtp_utf8)
        checked = _check_arg(arg, "TO:", recipient=True, smtputf8=smtputf8)
        if isinstance(checked, Refusal):
            await self.push(checked.reply)
            return
        self.pending = checked
        try:
            await super().smtp_RCPT(arg)
        finally:
            self.pending = None

    async def smtp_EHLO(self, hostname: str) -> None:
        refusal = check_command(hostname or "")
        if refusal is not None:
            await self.push(refusal.reply)
            return
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        refusal = check_command(hostname or "")
        if refusal is not None:
            await self.push(refusal.reply)
            return
        await super().smtp_HELO(hostname)

    # -- AUTH (aiosmtpd's own mechanisms check passwords on the loop) -------------

    async def auth_PLAIN(self, _: SMTP, args: list[str]) -> AuthResult:
        blob = await self._auth_value(args, "")
        if blob is None:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Cannot split the AUTH PLAIN value")
            return AuthResult(success=False, handled=True)
        return await self._login(parts[1], parts[2])

    async def auth_LOGIN(self, _: SMTP, args: list[str]) -> AuthResult:
        login = await self._auth_value(args, self.AuthLoginUsernameChallenge)
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await self._auth_value([], self.AuthLoginPasswordChallenge)
        if password is None:
            return AuthResult(success=False, handled=True)
        return await self._login(login, password)

    async def _auth_value(self, args: Sequence[str], challenge: str) -> bytes | None:
        """The initial response if given, else the answer to ``challenge``."""
        if len(args) > 1:
            try:
                return base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await self.push("501 5.5.2 Cannot decode base64")
                return None
        answer = await self.challenge_auth(challenge)
        return None if answer is MISSING else bytes(answer)

    async def _login(self, login: bytes, password: bytes) -> AuthResult:
        relay, ip = self._relay, self.client_ip
        refusal = relay.limits.auth_refusal(ip, relay.clock.now())
        if refusal is not None:
            return AuthResult(success=False, handled=False, message=refusal.reply)
        try:
            user = login.decode("utf-8")
        except UnicodeDecodeError:
            user = ""
        try:
            ok = await self._verify(user, password)
        except InputError as exc:
            logger.error("relay: cannot check AUTH: %s", exc)
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 Temporary authentication failure",
            )
        if ok:
            return AuthResult(success=True, auth_data=user)
        delay = relay.limits.auth_failed(ip, relay.clock.now())
        logger.warning("relay: AUTH failed from %s", ip)
        await relay.clock.sleep(delay.total_seconds())
        return AuthResult(success=False, handled=False)

    async def _verify(self, user: str, password: bytes) -> bool:
        users = self._relay.users
        if users is None or not USER_NAME.match(user):
            return False
        return await asyncio.to_thread(users.verify, user, password)

    async def push(self, status: AnyStr) -> None:
        if self.transport is None:  # the client is gone: nobody to tell
            return
        await super().push(status)
        head = status[:3]
        if head in _SYNTAX_ERRORS:
            self.errors += 1
            if self.errors >= _MAX_ERRORS and self.transport is not None:
                # A client that keeps sending garbage is cut off (Postfix does too).
                await super().push("421 4.7.0 Too many errors, closing")
                self.transport.close()


def _check_arg(
    arg: str | None, keyword: str, *, recipient: bool, smtputf8: bool | None
) -> Address | Refusal | None:
    """Pre-check a MAIL/RCPT argument (None: let aiosmtpd answer the syntax)."""
    if arg is None:
        return None
    refusal = check_command(arg)
    if refusal is not None:
        return refusal
    split = split_path(arg, keyword)
    if isinstance(split, Refusal):
        return None  # aiosmtpd's own syntax reply
    path, params = split
    if not recipient and path == "":
        return None  # the null sender
    if smtputf8 is None:
        smtputf8 = "SMTPUTF8" in params.upper().split()
    return check_path(path, recipient=recipient, smtputf8=smtputf8)
