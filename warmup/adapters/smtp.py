"""SMTP client: aiosmtplib sessions bound to a source IP, pooled per destination.

Rules:

1. One recipient per transaction (MAIL, RCPT, DATA); the dispatcher personalises
   every message. The outcome names the stage that decided it.
2. Replies are values: a 4xx/5xx to MAIL, RCPT or DATA is ``SendOutcome.reply``.
   After a rejection the session is reset (RSET) and kept, unless the reply was 421,
   which ends it. Trouble below the reply level (refused, reset, timeout, TLS, a
   refusing greeting or HELO) is ``SendOutcome.failure``. No aiosmtplib exception
   leaves this module.
3. Sessions are pooled per (source address, host, port): reused for up to
   ``messages_per_connection`` transactions, at most ``connections_per_lane`` open at
   once (a lane's sends go to its ISP's first reachable host, so this is the bound
   of ``delivery.connections_per_lane``); further sends to that key wait. A failed
   session, one that got 421, hit its message limit or sat idle longer than
   ``max_idle`` is closed (QUIT when still connected) and replaced. A reused session
   that the server dropped while it was idle (reset before the MAIL reply) is
   replaced once, transparently.
4. TLS (``TLSSettings.starttls``): ``off`` never upgrades; ``opportunistic`` upgrades
   when the server offers STARTTLS and, when the upgrade fails, goes on in plain text
   (on the same session after a refusing reply, else on one fresh session);
   ``required`` fails with ``tls`` rather than send in plain text.
5. Every network step has its timeout: connect and greeting ``Timeouts.connect``, each
   command ``Timeouts.command``, DATA (command, body, final reply) ``Timeouts.data``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Self

import aiosmtplib
from aiosmtplib import SMTPResponse

from warmup.core.attempt import STAGES, SendOutcome
from warmup.core.model import SendStage
from warmup.core.replies.classify import ConnectionFailure, SMTPReply, parse_reply
from warmup.core.settings import SourceIP, Timeouts, TLSSettings

__all__ = ["STAGES", "SMTPSender", "SendOutcome", "SenderStats"]

logger = logging.getLogger(__name__)

# (host name, IP version) -> an address to connect to, or None when it has none.
AddressLookup = Callable[[str, int], Awaitable[str | None]]
_TLS_MODES = frozenset({"off", "opportunistic", "required"})
_ERRORS = (aiosmtplib.SMTPException, OSError)  # OSError covers TimeoutError, SSLError
_CONTROL = re.compile("[\x00-\x1f\x7f]")  # C0 controls and DEL
# An ASCII dot-atom address (RFC 5322 3.2.3), which aiosmtplib's mail()/rcpt()
# would put on the command line unchanged after an email.utils.parseaddr pass
# that costs ~15 us per address. Other addresses still take that path.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


@dataclass(slots=True)
class SenderStats:
    """Counters for tests and benchmarks."""

    connections_opened: int = 0  # sessions that got a 220 greeting
    transactions: int = 0  # MAIL commands sent
    messages_sent: int = 0  # messages accepted after DATA
    failures: int = 0  # sends that ended in a connection-level failure


@dataclass(frozen=True, slots=True)
class _Target:
    source: SourceIP
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class _Envelope:
    sender: str
    recipient: str
    message: bytes


@dataclass(slots=True, eq=False)
class _Session:
    client: aiosmtplib.SMTP
    messages: int = 0
    idle_since: float = 0.0


@dataclass(slots=True, eq=False)
class _Pool:
    slots: asyncio.Semaphore
    idle: list[_Session] = field(default_factory=list)


class SMTPSender:
    """Sends one message to one recipient over pooled, source-bound SMTP sessions."""

    def __init__(
        self,
        *,
        timeouts: Timeouts,
        tls: TLSSettings,
        connections_per_lane: int = 2,
        messages_per_connection: int = 100,
        max_idle: timedelta = timedelta(seconds=30),
        address_of: AddressLookup | None = None,
    ) -> None:
        """``address_of`` resolves a host name to the address to connect to (the
        resolvers of ``dns.nameservers``); None leaves it to the system."""
        if tls.starttls not in _TLS_MODES:
            modes = sorted(_TLS_MODES)
            raise ValueError(
                f"tls.starttls must be one of {modes}, got {tls.starttls!r}"
            )
        if connections_per_lane < 1 or messages_per_connection < 1:
            raise ValueError(
                "connections_per_lane and messages_per_connection must be >= 1, got "
                f"{connections_per_lane!r} and {messages_per_connection!r}"
            )
        self._connect_s = timeouts.connect.total_seconds()
        self._command_s = timeouts.command.total_seconds()
        self._data_s = timeouts.data.total_seconds()
        self._tls = tls
        self._per_lane = connections_per_lane
        self._per_connection = messages_per_connection
        self._max_idle_s = max_idle.total_seconds()
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._ssl_context: ssl.SSLContext | None = None
        self._closed = False
        self._address_of = address_of
        self.stats = SenderStats()

    async def send(
        self,
        *,
        source: SourceIP,
        host: str,
        port: int,
        sender: str,
        recipient: str,
        message: bytes,
    ) -> SendOutcome:
        """Send ``message`` from ``sender`` to ``recipient`` via ``host:port``."""
        if self._closed:
            raise RuntimeError("SMTPSender.send() called after close()")
        target = _Target(source, host, port)
        envelope = _Envelope(sender, recipient, message)
        pool = self._pools.get((source.address, host.lower(), port))
        if pool is None:
            pool = _Pool(asyncio.Semaphore(self._per_lane))
            self._pools[(source.address, host.lower(), port)] = pool
        async with pool.slots:
            outcome = await self._send_pooled(pool, target, envelope)
        self._count(outcome, target, envelope)
        return outcome

    async def close(self) -> None:
        """QUIT every idle session; sessions in use are closed when their send ends."""
        self._closed = True
        sessions = [session for pool in self._pools.values() for session in pool.idle]
        for pool in self._pools.values():
            pool.idle.clear()
        await asyncio.gather(*(self._quit(session) for session in sessions))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- pooling ---------------------------------------------------------------------

    async def _send_pooled(
        self, pool: _Pool, target: _Target, envelope: _Envelope
    ) -> SendOutcome:
        session = await self._take_idle(pool)
        if session is not None:
            outcome = await self._run(pool, session, envelope)
            if not _dropped_while_idle(outcome):
                return outcome
            logger.debug(
                "idle session to %s:%s was dropped; reconnecting",
                target.host,
                target.port,
            )
        opened = await self._open(target)
        if isinstance(opened, SendOutcome):
            return opened
        return await self._run(pool, opened, envelope)

    async def _take_idle(self, pool: _Pool) -> _Session | None:
        now = asyncio.get_running_loop().time()
        stale = [s for s in pool.idle if not self._usable(s, now)]
        if stale:
            pool.idle = [s for s in pool.idle if self._usable(s, now)]
            for session in stale:
                await self._quit(session)
        return pool.idle.pop() if pool.idle else None

    def _usable(self, session: _Session, now: float) -> bool:
        return (
            session.client.is_connected and now - session.idle_since <= self._max_idle_s
        )

    async def _run(
        self, pool: _Pool, session: _Session, envelope: _Envelope
    ) -> SendOutcome:
        try:
            outcome = await self._transact(session, envelope)
        except BaseException:  # cancelled mid-transaction: the session state is unknown
            session.client.close()
            raise
        await self._release(pool, session)
        return outcome

    async def _release(self, pool: _Pool, session: _Session) -> None:
        if (
            session.client.is_connected
            and session.messages < self._per_connection
            and not self._closed
        ):
            session.idle_since = asyncio.get_running_loop().time()
            pool.idle.append(session)
        else:
            await self._quit(session)

    async def _quit(self, session: _Session) -> None:
        client = session.client
        try:
            if client.is_connected:
                await client.quit(timeout=self._command_s)
        except _ERRORS:
            pass
        finally:
            client.close()

    def _count(
        self, outcome: SendOutcome, target: _Target, envelope: _Envelope
    ) -> None:
        if outcome.failure is not None:
            self.stats.failures += 1
            logger.info(
                "send from %s to %s:%s failed at %s: %s (%s)",
                target.source.address, target.host, target.port,
                outcome.stage, outcome.failure, outcome.detail,
            )  # fmt: skip
            return
        if outcome.accepted:
            self.stats.messages_sent += 1
        logger.debug(
            "send from %s to %s via %s:%s: %s at %s",
            target.source.address, _masked(envelope.recipient),
            target.host, target.port, outcome.reply, outcome.stage,
        )  # fmt: skip

    # --- opening a session -----------------------------------------------------------

    async def _open(self, target: _Target) -> _Session | SendOutcome:
        mode = self._tls.starttls
        opened = await self._connect(target, starttls=mode != "off")
        if (
            mode == "opportunistic"
            and isinstance(opened, SendOutcome)
            and opened.stage is SendStage.starttls
        ):
            logger.warning(
                "STARTTLS from %s to %s:%s failed (%s); sending without TLS",
                target.source.address, target.host, target.port, opened.detail,
            )  # fmt: skip
            opened = await self._connect(target, starttls=False)
        return opened

    async def _address(self, target: _Target) -> str | SendOutcome:
        """The address to connect to: the host itself without ``address_of`` or
        when it is an IP literal."""
        if self._address_of is None or _is_ip(target.host):
            return target.host
        version = ipaddress.ip_address(target.source.address).version
        found = await self._address_of(target.host, version)
        if found is None:
            return SendOutcome(
                reply=None,
                failure=ConnectionFailure.dns,
                detail=f"no IPv{version} address for {target.host}",
                stage=SendStage.connect,
            )
        return found

    async def _connect(
        self, target: _Target, *, starttls: bool
    ) -> _Session | SendOutcome:
        address = await self._address(target)
        if isinstance(address, SendOutcome):
            return address
        client = aiosmtplib.SMTP(
            hostname=address,
            port=target.port,
            source_address=(target.source.address, 0),
            local_hostname=target.source.helo,
            timeout=self._command_s,
            start_tls=False,
            validate_certs=self._tls.verify,
        )
        stage = SendStage.connect
        try:
            await client.connect(timeout=self._connect_s)
            self.stats.connections_opened += 1
            stage = SendStage.ehlo
            await self._hello(client)
            stage = SendStage.starttls
            refused = await self._upgrade(client, target.host) if starttls else None
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            return _refusal(exc, stage)
        except _ERRORS as exc:
            client.close()
            return _failure(exc, stage)
        except BaseException:
            client.close()
            raise
        if refused is not None:
            client.close()
            return refused
        return _Session(client)

    async def _hello(self, client: aiosmtplib.SMTP) -> None:
        """EHLO, or HELO when the server refuses EHLO (but not with 421)."""
        try:
            await client.ehlo(timeout=self._command_s)
        except aiosmtplib.SMTPHeloError as exc:
            if exc.code == 421 or not client.is_connected:
                raise
            await client.helo(timeout=self._command_s)

    async def _upgrade(
        self, client: aiosmtplib.SMTP, server_hostname: str
    ) -> SendOutcome | None:
        """STARTTLS as the settings say; an outcome when the session must not go on."""
        required = self._tls.starttls == "required"
        if not client.supports_extension("starttls"):
            if required:
                return SendOutcome(
                    reply=None,
                    failure=ConnectionFailure.tls,
                    detail="server does not offer STARTTLS",
                    stage=SendStage.starttls,
                )
            return None
        context = await self._context()
        try:
            await client.starttls(
                tls_context=context,
                server_hostname=server_hostname,
                timeout=self._command_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            if required or not client.is_connected:
                detail = _reply_text(exc.code, exc.message)
                return SendOutcome(
                    reply=None,
                    failure=ConnectionFailure.tls,
                    detail=detail,
                    stage=SendStage.starttls,
                )
            return None  # refused with a reply: the session goes on in plain text
        await self._hello(client)
        return None

    async def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = await asyncio.to_thread(
                _tls_context, verify=self._tls.verify
            )
        return self._ssl_context

    # --- one transaction -------------------------------------------------------------

    async def _transact(self, session: _Session, envelope: _Envelope) -> SendOutcome:
        client = session.client
        prepared = _mail_options(client, envelope)
        if isinstance(prepared, SMTPReply):
            return SendOutcome(reply=prepared, failure=None, stage=SendStage.mail)
        options, encoding = prepared
        session.messages += 1
        self.stats.transactions += 1
        stage = SendStage.mail
        try:
            response = await _answer(
                _mail(client, envelope.sender, options, encoding, self._command_s)
            )
            if response.code == 250:
                stage = SendStage.rcpt
                response = await _answer(
                    _rcpt(client, envelope.recipient, encoding, self._command_s)
                )
            if response.code in (250, 251):
                stage = SendStage.data
                response = await _answer(
                    client.data(envelope.message, timeout=self._data_s)
                )
        except _ERRORS as exc:
            client.close()
            return _failure(exc, stage)
        if not 200 <= response.code < 300:
            await self._reset(client, response.code)
        return SendOutcome(reply=_to_reply(response), failure=None, stage=stage)

    async def _reset(self, client: aiosmtplib.SMTP, code: int) -> None:
        """RSET after a rejection; a 421 or a failing RSET ends the session."""
        if code == 421 or not client.is_connected:
            client.close()
            return
        try:
            await client.rset(timeout=self._command_s)
        except _ERRORS:
            client.close()


# --- helpers ------------------------------------------------------------------------


def _mail(
    client: aiosmtplib.SMTP,
    sender: str,
    options: list[str],
    encoding: str,
    timeout: float,
) -> Awaitable[SMTPResponse]:
    """MAIL FROM; a plain address goes on the line as is (see ``_PLAIN``)."""
    if encoding == "ascii" and _PLAIN.fullmatch(sender):
        return client.execute_command(
            b"MAIL",
            b"FROM:<" + sender.encode("ascii") + b">",
            *(option.encode("ascii") for option in options),
            timeout=timeout,
        )
    return client.mail(sender, options=options, encoding=encoding, timeout=timeout)


def _rcpt(
    client: aiosmtplib.SMTP, recipient: str, encoding: str, timeout: float
) -> Awaitable[SMTPResponse]:
    """RCPT TO; a plain address goes on the line as is (see ``_PLAIN``)."""
    if encoding == "ascii" and _PLAIN.fullmatch(recipient):
        return client.execute_command(
            b"RCPT", b"TO:<" + recipient.encode("ascii") + b">", timeout=timeout
        )
    return client.rcpt(recipient, encoding=encoding, timeout=timeout)


async def _answer(call: Awaitable[SMTPResponse]) -> SMTPResponse:
    """The server's reply, also when aiosmtplib raises it as a refusal."""
    try:
        return await call
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code < 200:  # not a reply: aiosmtplib's code for a malformed one
            raise
        return SMTPResponse(exc.code, exc.message)


def _mail_options(
    client: aiosmtplib.SMTP, envelope: _Envelope
) -> tuple[list[str], str] | SMTPReply:
    """MAIL parameters and address encoding, or a local rejection of the envelope."""
    addresses = envelope.sender + envelope.recipient
    if _CONTROL.search(addresses):
        return SMTPReply(
            code=None,
            enhanced="5.1.3",
            text="address contains control characters (not sent)",
        )
    options = (
        []
        if envelope.message.isascii() or not client.supports_extension("8bitmime")
        else ["BODY=8BITMIME"]
    )
    if addresses.isascii():
        return options, "ascii"
    if not client.supports_extension("smtputf8"):
        return SMTPReply(
            code=None,
            enhanced="5.6.7",
            text="non-ASCII address and the server lacks SMTPUTF8 (not sent)",
        )
    return [*options, "SMTPUTF8"], "utf-8"


def _dropped_while_idle(outcome: SendOutcome) -> bool:
    return (
        outcome.failure is ConnectionFailure.reset and outcome.stage is SendStage.mail
    )


def _failure(exc: BaseException, stage: SendStage) -> SendOutcome:
    return SendOutcome(
        reply=None,
        failure=_failure_kind(exc, stage),
        detail=_describe(exc),
        stage=stage,
    )


def _failure_kind(exc: BaseException, stage: SendStage) -> ConnectionFailure:
    if isinstance(exc, TimeoutError):  # SMTPTimeoutError included
        return ConnectionFailure.timeout
    if stage is SendStage.starttls or isinstance(exc, ssl.SSLError):
        return ConnectionFailure.tls
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        cause = exc.__cause__
        if isinstance(cause, socket.gaierror):
            return ConnectionFailure.dns
        if isinstance(cause, aiosmtplib.SMTPServerDisconnected | ConnectionResetError):
            return ConnectionFailure.reset
        return ConnectionFailure.refused
    return ConnectionFailure.reset


def _refusal(exc: aiosmtplib.SMTPResponseException, stage: SendStage) -> SendOutcome:
    """A greeting or HELO answered with a 4xx/5xx: the server refuses the session."""
    if exc.code < 200 or stage is SendStage.starttls:
        return _failure(exc, stage)
    detail = _reply_text(exc.code, exc.message)
    return SendOutcome(
        reply=None, failure=ConnectionFailure.greeting421, detail=detail, stage=stage
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 200:
        return _reply_text(exc.code, exc.message)
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    return f"{text}: {cause}" if cause is not None and str(cause) not in text else text


def _reply_text(code: int, message: str) -> str:
    """aiosmtplib's (code, lines joined by LF) back to reply text, a code per line."""
    *head, last = message.split("\n")
    return "\r\n".join([*(f"{code}-{line}" for line in head), f"{code} {last}"])


def _to_reply(response: SMTPResponse) -> SMTPReply:
    return parse_reply(_reply_text(response.code, response.message))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _masked(address: str) -> str:
    _local, at, domain = address.rpartition("@")
    return f"***@{domain}" if at else "***"


def _tls_context(*, verify: bool) -> ssl.SSLContext:
    if verify:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
