"""The aiosmtpd scaffolding the relay, the test server and the simulated ISP share.

:class:`SMTPListener` starts an aiosmtpd server in the running event loop on a
host and port (0: any free port), keeps the open sessions and closes them at stop.
:class:`ServerSession` is aiosmtpd's ``SMTP`` with the hooks the three need, in
one place, so that only this module leans on aiosmtpd's private methods
(``_handle_client``, ``_create_envelope``, ``_call_handler_hook``,
``_getaddr``, ``_original_transport``):

- :meth:`ServerSession.opened` / :meth:`ServerSession.closed`: once per
  connection (a STARTTLS upgrade is not a new one), the peer's IP known;
- :meth:`ServerSession.greeting_refusal`: a 4xx/5xx greeting instead of the 220,
  and the connection closed;
- :meth:`ServerSession.new_envelope` and :meth:`ServerSession.on_command`;
- ``hang_up_on_421``: close the connection after any 421 reply, as real servers do;
- a read buffer of :data:`READ_LIMIT` instead of aiosmtpd's 1,001 bytes;
- a plain ``<local@domain>`` path taken without ``email``'s header parser.

:class:`Served` gives their servers ``async with`` over ``start`` and ``stop``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from types import TracebackType
from typing import Any, AnyStr, Self

from aiosmtpd.smtp import SMTP, Envelope

from warmup.core.recipients.address import DOT_ATOM

#: The read buffer's limit. aiosmtpd sizes its StreamReader by
#: ``line_length_limit`` (1,001), so the reader stops reading the socket each
#: time more than 2,002 bytes wait in it (every message over 2 KB, once per
#: read) and starts again once the session has taken them: two epoll calls and a
#: loop turn per message. Lines are still held to their limits: aiosmtpd checks
#: each command's and each DATA line's length itself (the same replies), and the
#: AUTH exchange in :mod:`warmup.adapters.relay_session` checks its own.
READ_LIMIT = 64 * 1024


# ``<local@domain>`` with both parts plain dot-atoms, then parameters without
# comments or quoting: what nearly every client sends.
_PLAIN_PATH = re.compile(rf"[ \t]*<({DOT_ATOM}@{DOT_ATOM})>([^(\"\\]*)\Z")


class ServerSession(SMTP):
    """aiosmtpd's SMTP tied to an :class:`SMTPListener`; override the hooks."""

    hang_up_on_421 = False

    def __init__(self, listener: SMTPListener, handler: Any, **kwargs: Any) -> None:
        # aiosmtpd reads line_length_limit in __init__ only to size its reader.
        self.line_length_limit = READ_LIMIT
        super().__init__(handler, **kwargs)
        self.line_length_limit = SMTP.line_length_limit  # DATA's line check
        self.listener = listener
        self.peer_ip = ""

    # -- hooks -------------------------------------------------------------------

    def opened(self) -> None:
        """A client connected (``peer_ip`` is set); called before the greeting."""

    def closed(self) -> None:
        """The connection is gone; called once."""

    def greeting_refusal(self) -> str | None:
        """A refusal to greet the client with (then hang up), or None to serve it."""
        return None

    def new_envelope(self) -> Envelope:
        return Envelope()

    def on_command(self, verb: str, argument: str) -> None:
        """A command is about to reach the handler (``handle_<verb>``)."""

    # -- aiosmtpd's protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the TLS upgrade of a connection
            peer = transport.get_extra_info("peername")
            self.peer_ip = str(peer[0]) if peer else ""
            self.listener.live.add(self)
            self.opened()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._gone()
        super().connection_lost(error)

    def hang_up(self, *, abort: bool = False) -> None:
        """Close the connection (``abort``: at once, unsent replies lost)."""
        transport = self.transport
        if transport is None:
            self._gone()
        elif abort and isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()

    async def push(self, status: AnyStr) -> None:
        await super().push(status)
        head: str | bytes = status[:3]
        if self.hang_up_on_421 and head in ("421", b"421") and self.transport:
            self.transport.close()

    async def _handle_client(self) -> None:
        refusal = self.greeting_refusal()
        if refusal is None:
            await super()._handle_client()
            return
        await self.push(refusal)
        if self.transport is not None:
            self.transport.close()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's MAIL/RCPT path parser, without ``email``'s header parser
        (and the class aiosmtpd defines at each call) for a plain
        ``<local@domain>``, ~0.1 ms per command; anything else goes to it. Same
        results (a property test compares them)."""
        found = _PLAIN_PATH.match(arg) if arg else None
        if found is None:
            return super()._getaddr(arg)
        address = found.group(1)
        local = address.rpartition("@")[0]
        if self.local_part_limit and len(local) > self.local_part_limit:
            return None, None
        return address, found.group(2).lstrip(" \t")

    def _create_envelope(self) -> Envelope:
        return self.new_envelope()

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        self.on_command(command, args[0] if args and isinstance(args[0], str) else "")
        return await super()._call_handler_hook(command, *args)

    def _gone(self) -> None:
        if self in self.listener.live:
            self.listener.forget(self)
            self.closed()


class Served:
    """``async with`` for a server: :meth:`start` on entry, :meth:`stop` on exit."""

    async def start(self) -> Any:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

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


class SMTPListener:
    """An aiosmtpd server in the running loop; ``live`` holds its open sessions."""

    def __init__(self, session: Callable[[], ServerSession]) -> None:
        self.live: set[ServerSession] = set()
        self.host = ""
        self.port = 0
        self._session = session
        self._server: asyncio.Server | None = None
        self._emptied = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self, host: str, port: int = 0) -> int:
        """Listen on ``host:port`` and return the bound port."""
        if self._server is not None:
            raise RuntimeError(f"already listening on {self.host}:{self.port}")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._session, host, port)
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def stop_listening(self) -> None:
        """Take no new connection; the open sessions go on until :meth:`stop`."""
        if self._server is not None:
            self._server.close()

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening, close every session (aborted if still open after
        ``grace`` seconds); a second call does nothing."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for session in list(self.live):
            session.hang_up()
        if self.live:
            self._emptied.clear()
            try:
                await asyncio.wait_for(self._emptied.wait(), grace)
            except TimeoutError:
                for session in list(self.live):
                    session.hang_up(abort=True)
        await server.wait_closed()

    def forget(self, session: ServerSession) -> None:
        self.live.discard(session)
        if not self.live:
            self._emptied.set()
