"""SMTP client: sessions bound to a source IP, pooled per destination, pipelined.

Rules:

1. One recipient per transaction (MAIL, RCPT, DATA); the dispatcher personalises
   every message. The outcome names the stage that decided it.
2. Replies are values: a 4xx/5xx to MAIL, RCPT or DATA is ``SendOutcome.reply``.
   After a rejection the session is reset (RSET) and kept, unless the reply was 421,
   which ends it. Trouble below the reply level (refused, reset, timeout, TLS, a
   refusing greeting or HELO) is ``SendOutcome.failure``. No wire or socket error
   leaves this module. When the server offers PIPELINING (RFC 2920), MAIL, RCPT and
   DATA go in one write and their replies are read in order; the stage is that of
   the first refusing reply among them. A 354 after a refused MAIL or RCPT gets a
   lone ``.`` (RFC 2920 3.1), then RSET. Without PIPELINING, one command at a time.
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
   The wire protocol itself is in :mod:`warmup.adapters.smtp_wire`.
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

from warmup.adapters.smtp_wire import (
    Reply,
    SMTPWire,
    WireError,
    data_payload,
    hello,
    open_wire,
    quote_address,
)
from warmup.core.attempt import STAGES, SendOutcome
from warmup.core.model import SendStage
from warmup.core.replies.classify import ConnectionFailure, SMTPReply, parse_reply
from warmup.core.settings import SourceIP, Timeouts, TLSSettings

__all__ = ["STAGES", "SMTPSender", "SendOutcome", "SenderStats"]

logger = logging.getLogger(__name__)

# (host name, IP version) -> an address to connect to, or None when it has none.
AddressLookup = Callable[[str, int], Awaitable[str | None]]
_TLS_MODES = frozenset({"off", "opportunistic", "required"})
# OSError covers the wire's errors, TimeoutError and SSLError
_ERRORS = (OSError,)
_CONTROL = re.compile("[\x00-\x1f\x7f]")  # C0 controls and DEL
_DATA = b"DATA\r\n"


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
    wire: SMTPWire
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
            session.wire.is_connected and now - session.idle_since <= self._max_idle_s
        )

    async def _run(
        self, pool: _Pool, session: _Session, envelope: _Envelope
    ) -> SendOutcome:
        try:
            outcome = await self._transact(session, envelope)
        except BaseException:  # cancelled mid-transaction: the session state is unknown
            session.wire.close()
            raise
        await self._release(pool, session)
        return outcome

    async def _release(self, pool: _Pool, session: _Session) -> None:
        if (
            session.wire.is_connected
            and session.messages < self._per_connection
            and not self._closed
        ):
            session.idle_since = asyncio.get_running_loop().time()
            pool.idle.append(session)
        else:
            await self._quit(session)

    async def _quit(self, session: _Session) -> None:
        wire = session.wire
        try:
            if wire.is_connected:
                await wire.command(b"QUIT\r\n", self._command_s)
        except _ERRORS:
            pass
        finally:
            wire.close()

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
        stage = SendStage.connect
        wire: SMTPWire | None = None
        try:
            wire, greeting = await open_wire(
                address, target.port, target.source.address, self._connect_s
            )
            refused: Reply | SendOutcome | None = greeting
            if greeting.code == 220:
                self.stats.connections_opened += 1
                stage = SendStage.ehlo
                refused = await hello(wire, target.source.helo, self._command_s)
            if refused is None and starttls:
                stage = SendStage.starttls
                refused = await self._upgrade(wire, target)
        except _ERRORS as exc:
            if wire is not None:
                wire.close()
            return _failure(exc, stage)
        except BaseException:
            if wire is not None:
                wire.close()
            raise
        if refused is None:
            return _Session(wire)
        wire.close()
        return refused if isinstance(refused, SendOutcome) else _refusal(refused, stage)

    async def _upgrade(self, wire: SMTPWire, target: _Target) -> SendOutcome | None:
        """STARTTLS as the settings say; an outcome when the session must not go on."""
        required = self._tls.starttls == "required"
        if "starttls" not in wire.extensions:
            if required:
                return SendOutcome(
                    reply=None,
                    failure=ConnectionFailure.tls,
                    detail="server does not offer STARTTLS",
                    stage=SendStage.starttls,
                )
            return None
        context = await self._context()
        reply = await wire.command(b"STARTTLS\r\n", self._command_s)
        if reply.code != 220:
            if required or not wire.is_connected:
                return _refusal(reply, SendStage.starttls)
            return None  # refused with a reply: the session goes on in plain text
        await wire.start_tls(context, target.host, self._command_s)
        refused = await hello(wire, target.source.helo, self._command_s)
        return None if refused is None else _refusal(refused, SendStage.starttls)

    async def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = await asyncio.to_thread(
                _tls_context, verify=self._tls.verify
            )
        return self._ssl_context

    # --- one transaction -------------------------------------------------------------

    async def _transact(self, session: _Session, envelope: _Envelope) -> SendOutcome:
        wire = session.wire
        commands = _commands(wire, envelope)
        if isinstance(commands, SMTPReply):
            return SendOutcome(reply=commands, failure=None, stage=SendStage.mail)
        session.messages += 1
        self.stats.transactions += 1
        mail, rcpt = commands
        if "pipelining" in wire.extensions:
            decided = await self._pipelined(wire, mail, rcpt, envelope.message)
        else:
            decided = await self._stepwise(wire, mail, rcpt, envelope.message)
        if isinstance(decided, SendOutcome):
            return decided
        stage, reply = decided
        if not 200 <= reply.code < 300:
            await self._reset(wire, reply.code)
        return SendOutcome(reply=_to_reply(reply), failure=None, stage=stage)

    async def _stepwise(
        self, wire: SMTPWire, mail: bytes, rcpt: bytes, message: bytes
    ) -> tuple[SendStage, Reply] | SendOutcome:
        """MAIL, RCPT, DATA, each after the reply to the one before."""
        stage = SendStage.mail
        try:
            reply = await wire.command(mail, self._command_s)
            if reply.code == 250:
                stage = SendStage.rcpt
                reply = await wire.command(rcpt, self._command_s)
            if reply.code in (250, 251):
                stage = SendStage.data
                reply = await wire.command(_DATA, self._data_s)
                if reply.code == 354:
                    wire.send(data_payload(message), 1)
                    reply = await wire.reply(self._data_s)
        except _ERRORS as exc:
            wire.close()
            return _failure(exc, stage)
        return stage, reply

    async def _pipelined(
        self, wire: SMTPWire, mail: bytes, rcpt: bytes, message: bytes
    ) -> tuple[SendStage, Reply] | SendOutcome:
        """MAIL, RCPT and DATA in one write (RFC 2920); the first refusal decides."""
        decided: tuple[SendStage, Reply] | None = None
        stage, reply = SendStage.mail, Reply(0, "")
        try:
            wire.send(mail + rcpt + _DATA, 3)
            for stage, success, timeout in (
                (SendStage.mail, (250,), self._command_s),
                (SendStage.rcpt, (250, 251), self._command_s),
                (SendStage.data, (354,), self._data_s),
            ):
                reply = await wire.reply(timeout)
                if decided is None and reply.code not in success:
                    decided = stage, reply
                if reply.code == 421:  # the server is closing: read no further
                    wire.close()
                    return decided or (stage, reply)
            if decided is None:
                wire.send(data_payload(message), 1)
                return SendStage.data, await wire.reply(self._data_s)
            if reply.code == 354:  # RFC 2920 3.1: end the data the server awaits
                wire.send(b".\r\n", 1)
                await wire.reply(self._data_s)
            return decided
        except _ERRORS as exc:
            wire.close()
            return decided if decided is not None else _failure(exc, stage)

    async def _reset(self, wire: SMTPWire, code: int) -> None:
        """RSET after a rejection; a 421 or a failing RSET ends the session."""
        if code == 421 or not wire.is_connected:
            wire.close()
            return
        try:
            reply = await wire.command(b"RSET\r\n", self._command_s)
        except _ERRORS:
            wire.close()
            return
        if reply.code != 250:
            wire.close()


# --- helpers ------------------------------------------------------------------------


def _commands(wire: SMTPWire, envelope: _Envelope) -> tuple[bytes, bytes] | SMTPReply:
    """The MAIL and RCPT command lines, or a local rejection of the envelope."""
    addresses = envelope.sender + envelope.recipient
    if _CONTROL.search(addresses):
        return SMTPReply(
            code=None,
            enhanced="5.1.3",
            text="address contains control characters (not sent)",
        )
    extensions = wire.extensions
    options = (
        b""
        if envelope.message.isascii() or "8bitmime" not in extensions
        else b" BODY=8BITMIME"
    )
    encoding = "ascii"
    if not addresses.isascii():
        if "smtputf8" not in extensions:
            return SMTPReply(
                code=None,
                enhanced="5.6.7",
                text="non-ASCII address and the server lacks SMTPUTF8 (not sent)",
            )
        options, encoding = options + b" SMTPUTF8", "utf-8"
    try:
        sender = quote_address(envelope.sender).encode(encoding)
        recipient = quote_address(envelope.recipient).encode(encoding)
    except ValueError as exc:
        return SMTPReply(code=None, enhanced="5.1.3", text=f"{exc} (not sent)")
    return b"MAIL FROM:" + sender + options + b"\r\n", b"RCPT TO:" + recipient + b"\r\n"


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
    if isinstance(exc, TimeoutError):
        return ConnectionFailure.timeout
    if stage is SendStage.starttls or isinstance(exc, ssl.SSLError):
        return ConnectionFailure.tls
    if stage is SendStage.connect:
        if isinstance(exc, socket.gaierror):
            return ConnectionFailure.dns
        if isinstance(exc, WireError | ConnectionResetError):
            return ConnectionFailure.reset
        return ConnectionFailure.refused
    return ConnectionFailure.reset


def _refusal(reply: Reply, stage: SendStage) -> SendOutcome:
    """A greeting, HELO or STARTTLS answered with a refusal."""
    detail = _reply_text(reply.code, reply.message)
    failure = (
        ConnectionFailure.tls
        if stage is SendStage.starttls
        else ConnectionFailure.greeting421
    )
    return SendOutcome(reply=None, failure=failure, detail=detail, stage=stage)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    return f"{text}: {cause}" if cause is not None and str(cause) not in text else text


def _reply_text(code: int, message: str) -> str:
    """A reply's (code, lines joined by LF) back to reply text, a code per line."""
    *head, last = message.split("\n")
    return "\r\n".join([*(f"{code}-{line}" for line in head), f"{code} {last}"])


def _to_reply(reply: Reply) -> SMTPReply:
    return parse_reply(_reply_text(reply.code, reply.message))


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
