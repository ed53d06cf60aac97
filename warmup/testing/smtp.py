"""ScriptedSMTPServer: a real aiosmtpd server in the test's own event loop.

Shape (aiosmtplib's ``tests/smtpd.py`` plus Mailman's ``testing/mta.py``):

- ``async with ScriptedSMTPServer() as server:`` listens on ``server.host`` and
  ``server.port`` (an ephemeral port on 127.0.0.1), started in the running loop by
  :class:`warmup.adapters.smtp_server.SMTPListener`; no threads.
- It records what it saw: ``received`` (accepted messages), ``commands`` (every command
  with the peer IP), ``peers`` (one entry per connection), ``max_active`` (most
  connections open at once).
- Scripting: ``server.script`` is a FIFO of one-shot replies. A command takes the first
  entry whose command, ``match`` (an address or a domain) and ``peer`` fit, e.g.
  ``server.script.on_rcpt("gmail.test", "421 4.7.28 rate limited")``. Then the optional
  ``reply_for(peer_ip, command, argument)`` hook may answer (per-source-IP behaviour);
  otherwise the command is accepted. ``on_data`` answers the end of the message data.
- Any reply starting with ``421`` closes the connection after it is sent, as real
  servers do; ``hang_up_on_421=False`` keeps it open, to check that the client hangs
  up by itself.
- ``greeting`` replaces the 220 banner with a refusal such as ``"421 4.7.0 busy"``,
  after which the connection is closed.
- ``ehlo=False`` answers EHLO with 502, like a server that knows only HELO.
- ``pipelining=True`` offers PIPELINING (RFC 2920) in the EHLO reply; aiosmtpd
  handles pipelined commands either way.
- STARTTLS is offered when a ``tls_context`` is given; :func:`self_signed_context` makes
  one with the ``openssl`` command. ``starttls_reply`` (e.g. ``"454 4.7.0 no TLS"``)
  answers STARTTLS instead of starting TLS.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from aiosmtpd.smtp import SMTP, Envelope, Session

from warmup.adapters.smtp_server import Served, ServerSession, SMTPListener

__all__ = [
    "Command",
    "ReceivedMessage",
    "ReplyHook",
    "Script",
    "ScriptedReply",
    "ScriptedSMTPServer",
    "self_signed_context",
]

#: ``reply_for(peer_ip, command, argument) -> reply or None``; ``command`` is ``MAIL``,
#: ``RCPT`` or ``DATA``; ``argument`` is the address (for DATA: the recipients, joined
#: by commas). ``None`` lets the server accept.
ReplyHook: TypeAlias = Callable[[str, str, str], str | None]

_COMMANDS = frozenset({"MAIL", "RCPT", "DATA"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedMessage:
    """A message the server accepted."""

    peer_ip: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    helo: str | None = None
    tls: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One command the server handled, with the IP address of the client."""

    peer_ip: str
    verb: str
    argument: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptedReply:
    """A one-shot reply to the next ``command`` that fits ``match`` and ``peer``.

    ``match`` is an address or a domain (case-insensitive), compared with the MAIL or
    RCPT address, or for DATA with any recipient of the message. ``delay`` (seconds)
    holds the reply back, to make a client time out.
    """

    command: str
    reply: str
    match: str | None = None
    peer: str | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.command not in _COMMANDS:
            raise ValueError(
                f"command must be MAIL, RCPT or DATA, got {self.command!r}"
            )
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay!r}")

    def fits(self, command: str, addresses: Sequence[str], peer_ip: str) -> bool:
        if command != self.command or self.peer not in (None, peer_ip):
            return False
        if self.match is None:
            return True
        wanted = self.match.lower()
        return any(
            address.lower() == wanted or address.lower().rpartition("@")[2] == wanted
            for address in addresses
        )


class Script:
    """A FIFO of :class:`ScriptedReply`; each entry answers one command."""

    def __init__(self) -> None:
        self.entries: list[ScriptedReply] = []

    def add(self, entry: ScriptedReply) -> None:
        self.entries.append(entry)

    def on_mail(
        self,
        reply: str,
        *,
        match: str | None = None,
        peer: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self.add(
            ScriptedReply(
                command="MAIL", reply=reply, match=match, peer=peer, delay=delay
            )
        )

    def on_rcpt(
        self,
        match: str | None,
        reply: str,
        *,
        peer: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self.add(
            ScriptedReply(
                command="RCPT", reply=reply, match=match, peer=peer, delay=delay
            )
        )

    def on_data(
        self,
        reply: str,
        *,
        match: str | None = None,
        peer: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self.add(
            ScriptedReply(
                command="DATA", reply=reply, match=match, peer=peer, delay=delay
            )
        )

    def take(
        self, command: str, addresses: Sequence[str], peer_ip: str
    ) -> ScriptedReply | None:
        """Remove and return the first entry that fits, if any."""
        for index, entry in enumerate(self.entries):
            if entry.fits(command, addresses, peer_ip):
                return self.entries.pop(index)
        return None


class ScriptedSMTPServer(Served):
    """An aiosmtpd server on loopback that records sessions and replies as scripted."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        hostname: str = "mx.test",
        greeting: str | None = None,
        reply_for: ReplyHook | None = None,
        tls_context: ssl.SSLContext | None = None,
        idle_timeout: float = 300.0,
        ehlo: bool = True,
        hang_up_on_421: bool = True,
        starttls_reply: str | None = None,
        pipelining: bool = False,
    ) -> None:
        if greeting is not None and greeting.startswith("2"):
            raise ValueError(f"greeting must be a refusal (4xx/5xx), got {greeting!r}")
        self.host = host
        self.port = 0
        self.hostname = hostname
        self.greeting = greeting
        self.reply_for = reply_for
        self.tls_context = tls_context
        self.idle_timeout = idle_timeout
        self.ehlo = ehlo
        self.hang_up_on_421 = hang_up_on_421
        self.starttls_reply = starttls_reply
        self.pipelining = pipelining
        self.script = Script()
        self.received: list[ReceivedMessage] = []
        self.commands: list[Command] = []
        self.peers: list[str] = []
        self.active = 0
        self.max_active = 0
        self._listener = SMTPListener(self._protocol)

    @property
    def connections(self) -> int:
        """How many connections the server has accepted."""
        return len(self.peers)

    def on_mail(
        self, reply: str, *, match: str | None = None, peer: str | None = None
    ) -> None:
        self.script.on_mail(reply, match=match, peer=peer)

    def on_rcpt(
        self, match: str | None, reply: str, *, peer: str | None = None
    ) -> None:
        self.script.on_rcpt(match, reply, peer=peer)

    def on_data(
        self, reply: str, *, match: str | None = None, peer: str | None = None
    ) -> None:
        self.script.on_data(reply, match=match, peer=peer)

    def verbs(self, peer_ip: str | None = None) -> list[str]:
        """The command verbs seen (from one peer, if given), in order."""
        return [c.verb for c in self.commands if peer_ip in (None, c.peer_ip)]

    def disconnect(self, peer_ip: str | None = None) -> None:
        """Abort the open connections (from ``peer_ip``, if given), as a crash would."""
        for protocol in list(self._listener.live):
            if peer_ip in (None, protocol.peer_ip):
                protocol.hang_up(abort=True)

    async def start(self) -> None:
        self.port = await self._listener.start(self.host, 0)

    async def stop(self) -> None:
        """Stop listening and drop every open connection."""
        await self._listener.stop()

    # --- called by the protocol ------------------------------------------------------

    def _protocol(self) -> _ScriptedSMTP:
        return _ScriptedSMTP(
            self,
            self._listener,
            _Handler(self),
            hostname=self.hostname,
            tls_context=self.tls_context,
            timeout=self.idle_timeout,
            enable_SMTPUTF8=True,
            loop=asyncio.get_running_loop(),
        )

    def _opened(self, peer_ip: str) -> None:
        self.peers.append(peer_ip)
        self.active += 1
        self.max_active = max(self.max_active, self.active)

    def _closed(self) -> None:
        self.active -= 1

    async def _reply(
        self, command: str, session: Session, addresses: Sequence[str]
    ) -> str | None:
        peer_ip = _peer_ip(session)
        entry = self.script.take(command, addresses, peer_ip)
        if entry is not None:
            if entry.delay:
                await asyncio.sleep(entry.delay)
            return entry.reply
        if self.reply_for is not None:
            return self.reply_for(peer_ip, command, ",".join(addresses))
        return None


def _peer_ip(session: Session | None) -> str:
    peer: Any = session.peer if session is not None else None
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _accepted(reply: str | None) -> bool:
    return reply is None or reply.startswith("2")


class _Handler:
    """aiosmtpd hooks: scripted replies, envelope bookkeeping, recording."""

    def __init__(self, owner: ScriptedSMTPServer) -> None:
        self._owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        if not self._owner.ehlo:
            session.extended_smtp = False
            return ["502 5.5.2 Error: command not recognized"]
        session.host_name = hostname
        if self._owner.pipelining:
            return [responses[0], "250-PIPELINING", *responses[1:]]
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        reply = await self._owner._reply("MAIL", session, (address,))
        if _accepted(reply):
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return reply or "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        reply = await self._owner._reply("RCPT", session, (address,))
        if _accepted(reply):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        return reply or "250 2.1.5 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        reply = await self._owner._reply("DATA", session, tuple(envelope.rcpt_tos))
        if _accepted(reply):
            content = envelope.original_content or b""
            self._owner.received.append(
                ReceivedMessage(
                    peer_ip=_peer_ip(session),
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    content=content,
                    helo=session.host_name,
                    tls=session.ssl is not None,
                )
            )
        return reply or "250 2.0.0 OK: queued"


class _ScriptedSMTP(ServerSession):
    """aiosmtpd's SMTP with connection tracking, command recording, refusals."""

    def __init__(
        self,
        owner: ScriptedSMTPServer,
        listener: SMTPListener,
        handler: _Handler,
        **kwargs: Any,
    ) -> None:
        super().__init__(listener, handler, **kwargs)
        self._owner = owner
        self.hang_up_on_421 = owner.hang_up_on_421

    def opened(self) -> None:
        self._owner._opened(self.peer_ip)

    def closed(self) -> None:
        self._owner._closed()

    def greeting_refusal(self) -> str | None:
        return self._owner.greeting

    def on_command(self, verb: str, argument: str) -> None:
        self._owner.commands.append(
            Command(peer_ip=_peer_ip(self.session), verb=verb, argument=argument)
        )

    async def smtp_STARTTLS(self, arg: str) -> None:
        self._owner.commands.append(
            Command(peer_ip=_peer_ip(self.session), verb="STARTTLS")
        )
        if self._owner.starttls_reply is not None:
            await self.push(self._owner.starttls_reply)
            return
        await super().smtp_STARTTLS(arg)


def self_signed_context(
    directory: Path, *, common_name: str = "localhost"
) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate (``cert.pem``).

    Uses the ``openssl`` command; raises RuntimeError when it is missing or fails.
    Blocking: call it from a synchronous fixture.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is not installed")
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [
        openssl, "req", "-x509", "-nodes", "-days", "2",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-subj", f"/CN={common_name}", "-addext", f"subjectAltName=DNS:{common_name}",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, check=False, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl failed: {done.stderr.decode(errors='replace')!r}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
