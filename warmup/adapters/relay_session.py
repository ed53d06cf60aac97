"""One relay session: aiosmtpd's SMTP with strict paths, per-client limits,
ceilings and AUTH checked off the loop (the listener is :mod:`warmup.adapters.relay`).

- Ceilings: ``max_connections`` sessions at once (421 beyond, before the
  per-client count; clients in ``allowed_networks`` always get in);
  ``max_concurrent_data`` messages being received at once, half of them at most
  from clients that may not relay (DATA waits up to half of ``timeout`` for a
  slot, then 451); a session older
  than ``max_session_age`` is closed at its next command (421); a client that may
  not relay (outside ``allowed_networks``, no AUTH) may send ``max_bounce_bytes``.
- AUTH (PLAIN, LOGIN): scrypt in a thread; each attempt counted before its check
  (:mod:`warmup.core.relay.policy` rule 4); an AUTH PLAIN authorization identity
  other than the user is refused; an overlong exchange line answers 500 5.5.6.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, AnyStr

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, syntax

from warmup.adapters.relay_users import USER_NAME
from warmup.adapters.smtp_server import ServerSession
from warmup.core.errors import InputError
from warmup.core.recipients.address import Address
from warmup.core.relay.policy import (
    Refusal,
    check_command,
    check_path,
    client_key,
    split_path,
)

if TYPE_CHECKING:
    from warmup.adapters.relay import RelayServer

__all__ = ["RelayEnvelope", "RelaySession"]

logger = logging.getLogger(__name__)

_SYNTAX_ERRORS = frozenset(
    {"500", "501", "502", "503", "504", b"500", b"501", b"502", b"503", b"504"}
)
_MAX_ERRORS = 10
_BUSY = "451 4.3.2 Too many messages in progress, try again later"
_TOO_OLD = "421 4.4.2 Session too long, closing"
Command = Callable[[str | None], Awaitable[None]]


class RelayEnvelope(Envelope):
    """aiosmtpd's envelope plus the recipients as parsed addresses."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[Address] = []


class RelaySession(ServerSession):
    """aiosmtpd's SMTP with per-client limits, strict paths and async AUTH."""

    def __init__(self, relay: RelayServer, handler: Any, **kwargs: Any) -> None:
        super().__init__(relay.listener, handler, **kwargs)
        self._relay = relay
        self.allowed_network = False
        self.refused: Refusal | None = None
        self.counted = False
        self.pending: Address | None = None  # the RCPT being handled
        self.errors = 0  # syntax and sequence errors (50x) in this session
        self.started_at: datetime | None = None
        # Every command goes through the session age check first, but DATA: a
        # message whose recipients were accepted is taken in (DATA is bounded by
        # the timeout), and the age is told at the next command.
        self._smtp_methods = {
            name: method if name == "DATA" else self._aged(method)
            for name, method in self._smtp_methods.items()
        }

    # -- connection (hooks of ServerSession) -------------------------------------

    def opened(self) -> None:
        self.allowed_network = self._relay.allowed(self.peer_ip)
        # With nothing to offer an outsider but AUTH, insist on TLS first.
        self.require_starttls = bool(
            self.tls_context and not self.allowed_network and not self._relay.has_sink
        )
        self.refused = self._relay.admit(self.peer_ip, trusted=self.allowed_network)
        self.counted = self.refused is None
        self.started_at = self._relay.clock.now()
        self.data_size_limit = self.size_limit()

    def closed(self) -> None:
        if self.counted:
            self.counted = False
            self._relay.leave(self.peer_ip)

    def greeting_refusal(self) -> str | None:
        return None if self.refused is None else self.refused.reply

    def new_envelope(self) -> RelayEnvelope:
        return RelayEnvelope()

    def may_relay(self) -> bool:
        return self.allowed_network or bool(self.session and self.session.authenticated)

    def size_limit(self) -> int:
        """What this client may send now: a client that may not relay has only
        reports for the bounce domain to give, and those are small."""
        settings = self._relay.settings
        if self.may_relay():
            return settings.max_message_bytes
        return min(settings.max_bounce_bytes, settings.max_message_bytes)

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

    def _aged(self, method: Command) -> Command:
        """``method`` behind the max_session_age check (a NOOP every 40 s must
        not keep a session forever)."""

        @functools.wraps(method)
        async def command(arg: str | None) -> None:
            age = self._relay.settings.max_session_age
            if self.started_at is not None and (
                self._relay.clock.now() - self.started_at >= age
            ):
                await self.push(_TOO_OLD)
                if self.transport is not None:
                    self.transport.close()
                return
            await method(arg)

        return command

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        refusal = _check_arg(arg, "FROM:", recipient=False, smtputf8=None)
        if isinstance(refusal, Refusal):
            await self.push(refusal.reply)
            return
        self.data_size_limit = self.size_limit()  # for SIZE=, after AUTH too
        await super().smtp_MAIL(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """At most ``max_concurrent_data`` messages are received at once."""
        self.data_size_limit = self.size_limit()
        if arg or self.envelope is None or not self.envelope.rcpt_tos:
            await super().smtp_DATA(arg)  # aiosmtpd's 501/503: nothing to receive
            return
        taken = await self._relay.data_slots(may_relay=self.may_relay())
        if taken is None:
            await self.push(_BUSY)
            return
        try:
            self._reset_timeout()  # the wait for the slot was not the client's
            await super().smtp_DATA(arg)
        finally:
            for slots in taken:
                slots.release()

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
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

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        refusal = check_command(hostname or "")
        if refusal is not None:
            await self.push(refusal.reply)
            return
        # Offer the full size: a client may log in after this EHLO and most do
        # not greet again; MAIL and DATA hold it to what it may send by then.
        self.data_size_limit = self._relay.settings.max_message_bytes
        await super().smtp_EHLO(hostname)

    @syntax("HELO hostname")
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
        authzid, login, password = parts
        if authzid and authzid != login:
            # Acting as another user is not offered: refused, not ignored.
            await self.push("535 5.7.8 Authorization identity must be the user")
            return AuthResult(success=False, handled=True)
        return await self._login(login, password)

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
        return await self._challenge(challenge)

    async def _challenge(self, challenge: str) -> bytes | None:
        """aiosmtpd's ``challenge_auth``, less its ValueError on a long line."""
        await self.push("334 " + base64.b64encode(challenge.encode()).decode("ascii"))
        try:
            line = await self._reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            await self._discard_line(exc.consumed)
            await self.push("500 5.5.6 Authentication exchange line is too long")
            return None
        except asyncio.IncompleteReadError:
            return None  # the client is gone
        if len(line) > self.line_length_limit:  # shorter than the read buffer
            await self.push("500 5.5.6 Authentication exchange line is too long")
            return None
        blob = line.strip()
        if blob == b"*":
            await self.push("501 5.7.0 Auth aborted")
            return None
        try:
            return base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            await self.push("501 5.5.2 Cannot decode base64")
            return None

    async def _discard_line(self, consumed: int) -> None:
        """Skip the rest of an overlong line (the idle timeout bounds it)."""
        await self._reader.read(consumed)
        while True:
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await self._reader.read(exc.consumed)

    async def _login(self, login: bytes, password: bytes) -> AuthResult:
        """Check a password, counted before the check (relay_policy rule 4)."""
        relay, ip = self._relay, self.peer_ip
        try:
            user = login.decode("utf-8")
        except UnicodeDecodeError:
            user = ""
        name = user if USER_NAME.match(user) else None
        refusal = await self._auth_turn(name)
        if refusal is not None:
            logger.debug("relay: AUTH refused from %s: locked out", ip)
            return AuthResult(success=False, handled=False, message=refusal.reply)
        failed = True  # a hang-up mid-check counts: the check still runs
        try:
            failed = not await self._verify(user, password)
        except InputError as exc:
            failed = False  # our users file, not the client's guess
            logger.error("relay: cannot check AUTH: %s", exc)
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 Temporary authentication failure",
            )
        finally:
            delay = relay.limits.auth_end(
                ip, name, failed=failed, now=relay.clock.now()
            )
            relay.auth_ended()
        if not failed:
            return AuthResult(success=True, auth_data=user)
        logger.warning("relay: AUTH failed from %s", ip)
        self._log_new_lock(name)
        await relay.clock.sleep(delay.total_seconds())
        return AuthResult(success=False, handled=False)

    async def _auth_turn(self, name: str | None) -> Refusal | None:
        """:meth:`ClientLimits.auth_begin`, waiting while only checks in progress
        (not failures) stand in the way: a tool's parallel logins all get
        checked, in turn, and a guesser still gets no more checks than the limit
        (each turn ends when a check ends, so the waits are bounded by them)."""
        relay, ip = self._relay, self.peer_ip
        while True:
            refusal = relay.limits.auth_begin(ip, name, relay.clock.now())
            if refusal is None or relay.limits.auth_locked(ip, name, relay.clock.now()):
                return refusal
            await relay.auth_turn.wait()

    def _log_new_lock(self, user: str | None) -> None:
        """Say once when a failure has just locked the client or the user name."""
        limits, settings = self._relay.limits, self._relay.settings
        client = limits.failures.get(client_key(self.peer_ip))
        if client is not None and client.count == settings.auth_failures_before_lockout:
            logger.warning(
                "relay: AUTH from %s locked for %s", self.peer_ip, settings.lockout
            )
        account = limits.user_failures.get(user) if user is not None else None
        limit = settings.user_auth_failures_before_lockout
        if account is not None and account.count == limit:
            logger.warning(
                "relay: AUTH for user %r locked for %s after %d failures",
                user,
                settings.lockout,
                limit,
            )

    async def _verify(self, user: str, password: bytes) -> bool:
        users = self._relay.users
        if users is None or not USER_NAME.match(user):
            return False
        return await asyncio.to_thread(users.verify, user, password)

    async def push(self, status: AnyStr) -> None:
        if self.transport is None:  # the client is gone: nobody to tell
            return
        await super().push(status)
        self._relay.counts.reply(_text(status))  # the metrics: refusals by reason
        head = status[:3]
        if head in _SYNTAX_ERRORS:
            self.errors += 1
            if self.errors >= _MAX_ERRORS and self.transport is not None:
                # A client that keeps sending garbage is cut off (Postfix does too).
                await super().push("421 4.7.0 Too many errors, closing")
                self.transport.close()


def _text(reply: str | bytes) -> str:
    return reply.decode("ascii", "replace") if isinstance(reply, bytes) else reply


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
