"""SMTP client wire: one asyncio Protocol per outbound session, able to pipeline.

Rules:

1. ``send(data, replies=n)`` writes ``data`` at once and announces ``n`` replies; the
   caller may write several commands in one write (RFC 2920) and then read their
   replies in order with ``reply()``. Data arriving while no reply is announced is
   dropped, never paired with a later command.
2. Replies are parsed incrementally from a bytearray as they arrive, split anyhow
   (byte by byte, several in one segment, multi-line ``250-``). A reply is
   ``Reply(code, message)`` with the text of each line joined by LF, as aiosmtplib's
   ``SMTPResponse``. A reply longer than ``MAX_REPLY`` bytes (a server streaming
   without CRLF) or a malformed line ends the session with :class:`WireProtocolError`.
3. ``reply(seconds)`` returns a reply already parsed without waiting; otherwise it
   waits on one future with one timer (:class:`WireTimeout`). EOF or a lost
   connection fails every reply not yet received with :class:`WireClosed`.
4. Message data as aiosmtplib puts it on the wire: lone CR or LF become CRLF, a final
   CRLF is ensured, leading dots are doubled, then ``.`` CRLF.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import ssl
from collections import deque
from typing import NamedTuple, cast

from warmup.core.errors import WarmupError
from warmup.core.recipients.address import DOT_ATOM

__all__ = [
    "MAX_REPLY",
    "PLAIN_ADDRESS",
    "Reply",
    "SMTPWire",
    "WireClosed",
    "WireError",
    "WireProtocolError",
    "WireTimeout",
    "data_payload",
    "hello",
    "open_wire",
    "parse_extensions",
    "quote_address",
]

MAX_REPLY = 32 * 1024  # as aiosmtplib's MAX_RESPONSE_LENGTH: over any real EHLO
_SEPARATORS = (b" ", b"-", b"\r", b"\n")
_LINE_ENDINGS = re.compile(rb"(?:\r\n|\n|\r(?!\n))")
_LEADING_DOT = re.compile(rb"(?m)^\.")
# An ASCII dot-atom address (RFC 5322 3.2.3): it goes on the command line as is,
# skipping the email.utils.parseaddr pass (~15 us per address) other addresses take.
PLAIN_ADDRESS = re.compile(rf"{DOT_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# Characters that would end the address on a command line (aiosmtplib's rule).
_UNSAFE = re.compile(r'[\s<>"]')
_QUOTED_LOCAL_PART = re.compile(r'^"(?:[^"\\\r\n]|\\.)*"')


class Reply(NamedTuple):
    """One server reply: its code and the text of its lines joined by LF."""

    code: int
    message: str


class WireError(WarmupError, ConnectionError):
    """The session cannot go on."""


class WireClosed(WireError):
    """The server closed the connection (EOF or reset) before replying."""


class WireProtocolError(WireError):
    """The server sent something that is not an SMTP reply, or one too long."""


class WireTimeout(WarmupError, TimeoutError):
    """No reply within the step's timeout."""


class SMTPWire(asyncio.Protocol):
    """The client side of one SMTP connection (see the module rules)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._lines: list[str] = []  # lines of the reply being parsed
        self._size = 0  # bytes of the reply being parsed
        self._pending = 1  # replies announced and not yet parsed: the greeting
        self._replies: deque[Reply] = deque()
        self._error: WireError | None = None
        self._waiter: asyncio.Future[None] | None = None
        #: EHLO keywords (lower case) -> their parameters
        self.extensions: dict[str, str] = {}

    # --- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._pending:
            return
        self._buffer += data
        try:
            self._parse()
        except WireProtocolError as exc:
            self._fail(exc)
            self.close()
            return
        if self._replies:
            self._wake()

    def eof_received(self) -> bool:
        self._fail(WireClosed("Unexpected EOF received"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        reason = f"Connection lost: {exc}" if exc is not None else "Connection lost"
        self._fail(WireClosed(reason))

    # --- parsing -----------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self._buffer
        while self._pending:
            end = buffer.find(b"\n")
            if end < 0:
                if self._size + len(buffer) > MAX_REPLY:
                    raise WireProtocolError(
                        f"Response too long (over {MAX_REPLY} bytes)"
                    )
                return
            line = bytes(buffer[: end + 1])
            del buffer[: end + 1]
            self._size += len(line)
            if self._size > MAX_REPLY:
                raise WireProtocolError(f"Response too long (over {MAX_REPLY} bytes)")
            code = line[:3]
            separator = line[3:4]
            if not (code.isdigit() and len(code) == 3 and separator in _SEPARATORS):
                text = line.decode("utf-8", "replace").strip()
                raise WireProtocolError(f"Malformed SMTP response line: {text}")
            self._lines.append(
                line[4:].strip(b" \t\r\n").decode("utf-8", "surrogateescape")
            )
            if separator == b"-":
                continue
            self._replies.append(Reply(int(code), "\n".join(self._lines)))
            self._lines = []
            self._size = 0
            self._pending -= 1
        buffer.clear()  # nothing announced: unsolicited data is dropped

    def _fail(self, error: WireError) -> None:
        if self._error is None:
            self._error = error
        self._pending = 0
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @staticmethod
    def _expire(waiter: asyncio.Future[None], timeout: float) -> None:
        if not waiter.done():
            waiter.set_exception(WireTimeout(f"no reply within {timeout:g} s"))

    # --- used by the sender ------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        transport = self._transport
        return (
            transport is not None and not transport.is_closing() and self._error is None
        )

    def send(self, data: bytes, replies: int) -> None:
        """Write ``data`` in one write; ``replies`` replies are to come for it."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._error is not None:
            raise WireClosed("Connection lost")
        self._pending += replies
        transport.write(data)

    async def reply(self, seconds: float | None) -> Reply:
        """The next reply, in order; raises a WireError or WireTimeout."""
        if self._replies:
            return self._replies.popleft()
        if self._error is None:
            waiter = self._waiter = self._loop.create_future()
            timer = (
                None
                if seconds is None
                else self._loop.call_later(seconds, self._expire, waiter, seconds)
            )
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if self._replies:
                return self._replies.popleft()
        error = self._error or WireClosed("Connection lost")
        raise type(error)(*error.args)

    async def command(self, line: bytes, seconds: float | None) -> Reply:
        """Write one command line (with its CRLF) and read its reply."""
        self.send(line, 1)
        return await self.reply(seconds)

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, seconds: float
    ) -> None:
        """Upgrade after the server's 220 to STARTTLS (RFC 3207)."""
        transport = self._transport
        if transport is None or self._error is not None:
            raise WireClosed("Connection lost")
        # RFC 3207 4.2: plain text after the 220 may be injected; drop it
        self._buffer.clear()
        upgraded = await self._loop.start_tls(
            transport,
            self,
            context,
            server_hostname=server_hostname,
            ssl_handshake_timeout=seconds,
        )
        if upgraded is None:
            raise WireClosed("Connection lost during the TLS handshake")
        self._transport = upgraded

    def close(self) -> None:
        """Close the connection (buffered writes are flushed)."""
        if self._transport is not None:
            self._transport.close()
        self._fail(WireClosed("Connection closed"))


async def open_wire(
    host: str, port: int, source: str, seconds: float
) -> tuple[SMTPWire, Reply]:
    """Connect from ``source`` and read the greeting, both within ``seconds``."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(seconds):
        _transport, wire = await loop.create_connection(
            SMTPWire, host, port, local_addr=(source, 0)
        )
        try:
            greeting = await wire.reply(None)
        except BaseException:
            wire.close()
            raise
    return wire, greeting


async def hello(wire: SMTPWire, name: str, seconds: float) -> Reply | None:
    """EHLO, or HELO when EHLO is refused (not with 421); the refusing reply, if any.

    Sets ``wire.extensions`` from the EHLO reply (none after HELO).
    """
    wire.extensions = {}
    reply = await wire.command(b"EHLO " + name.encode("ascii") + b"\r\n", seconds)
    if reply.code == 250:
        wire.extensions = parse_extensions(reply.message)
        return None
    if reply.code == 421 or not wire.is_connected:
        return reply
    reply = await wire.command(b"HELO " + name.encode("ascii") + b"\r\n", seconds)
    return None if reply.code == 250 else reply


def parse_extensions(message: str) -> dict[str, str]:
    """EHLO keywords (lower case) and their parameters; the first line is a greeting."""
    extensions: dict[str, str] = {}
    for line in message.split("\n")[1:]:
        keyword, _, parameters = line.strip().partition(" ")
        if keyword:
            extensions[keyword.lower()] = parameters.strip()
    return extensions


def data_payload(message: bytes) -> bytes:
    """The bytes after a 354: normalised line ends, dot-stuffed, with the terminator.

    Counting is ~7x cheaper than the substitutions, which a message already in
    CRLF form without leading dots (the usual one) does not need.
    """
    body = message
    crlf = body.count(b"\r\n")
    if not (body.count(b"\n") == body.count(b"\r") == crlf and body.endswith(b"\r\n")):
        body = _LINE_ENDINGS.sub(b"\r\n", body)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
    if body.startswith(b".") or b"\n." in body:
        body = _LEADING_DOT.sub(b"..", body)
    return body + b".\r\n"


def quote_address(address: str) -> str:
    """``<address>`` for MAIL/RCPT as aiosmtplib quotes it; ValueError when the
    address cannot go on a command line safely."""
    if PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    _name, parsed = email.utils.parseaddr(address)
    parsed = parsed or address.strip()
    if _UNSAFE.search(_QUOTED_LOCAL_PART.sub("", parsed, count=1)):
        raise ValueError(f"address {address!r} cannot go on an SMTP command line")
    return f"<{parsed}>"
