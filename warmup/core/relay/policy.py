"""What the submission relay lets in: addresses, relaying, per-client limits.

Pure: time is passed in, refusals are values (:class:`Refusal`), never exceptions.

Rules:

1. Paths. ``MAIL FROM``/``RCPT TO`` carry one plain ``local@domain`` (``<>`` only as
   a sender). Refused with 553: source routes (``<@a:b@c>``), percent hacks
   (``a%b@c``), bang paths (``a!b@c``), quoted local parts holding ``@ % ! : \\ "``,
   address literals, and non-ASCII without ``SMTPUTF8`` (5.6.7). Control characters
   anywhere in a command (header injection) get 501.
2. Relaying. Mail to the bounce domain is accepted from anyone (we are its
   destination) when a bounce sink exists, else 550. Anything else needs AUTH or an
   allowed network: 530 at MAIL when the client could send nothing at all, 554 at
   RCPT otherwise.
3. Per client IP: at most ``max_connections_per_client`` connections at once (421);
   ``messages_per_minute_per_client`` MAIL commands from a token bucket that holds a
   minute's worth (450); each failed AUTH is answered more slowly (1, 2, 4, 8 s) and
   ``auth_failures_before_lockout`` failures within ``lockout`` of each other refuse
   AUTH from that IP for ``lockout`` (454), right password or not.
4. AUTH accounting holds under concurrency. An attempt is counted *before* its
   password is checked: failures so far plus attempts still being checked may not
   reach the limit, so parallel sessions cannot all slip past it. A lock is lifted
   only by its expiry: a failure during a lock extends it, never restarts the
   count. The same accounting runs per user name
   (``user_auth_failures_before_lockout``), so many addresses guessing at one
   account are stopped too.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from warmup.core.recipients.address import Address, AddressError, parse_address
from warmup.core.settings import RelaySettings

__all__ = [
    "AUTH_REQUIRED",
    "NO_BOUNCE_INTAKE",
    "RELAY_DENIED",
    "AuthFailures",
    "ClientLimits",
    "RecipientRoute",
    "Refusal",
    "TokenBucket",
    "check_campaign_name",
    "check_command",
    "check_path",
    "client_key",
    "decide_recipient",
    "decide_sender",
    "next_auth_failures",
    "split_path",
    "take_token",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUOTED_FORBIDDEN = re.compile(r'[@%!:\\"\x00-\x1f\x7f]')
_MAX_DELAY_SECONDS = 8
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Refusal:
    """An SMTP refusal: code, enhanced status (RFC 3463) and text."""

    code: int
    enhanced: str
    text: str

    @property
    def reply(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


class RecipientRoute(StrEnum):
    """Where an accepted recipient's copy goes."""

    queue = "queue"  # relayed: queued for the ramp
    bounce = "bounce"  # addressed to us: the bounce intake


RELAY_DENIED = Refusal(554, "5.7.1", "Relay access denied")
AUTH_REQUIRED = Refusal(530, "5.7.0", "Authentication required")
NO_BOUNCE_INTAKE = Refusal(550, "5.1.1", "No such mailbox here")


# -- paths ---------------------------------------------------------------------------


def check_command(argument: str) -> Refusal | None:
    """Refuse control characters (a bare CR, NUL, ...) inside a command's argument."""
    if _CONTROL.search(argument):
        return Refusal(501, "5.5.2", "Control characters are not allowed in commands")
    return None


def split_path(argument: str, keyword: str) -> tuple[str, str] | Refusal:
    """``FROM:<a@b> SIZE=9`` -> (``a@b``, ``SIZE=9``) for keyword ``FROM:``."""
    if argument[: len(keyword)].upper() != keyword:
        return Refusal(501, "5.5.4", f"Syntax: {keyword}<address>")
    rest = argument[len(keyword) :].lstrip()
    if not rest.startswith("<"):
        path, _, params = rest.partition(" ")
        return path, params.strip()
    end = _closing_bracket(rest)
    if end < 0:
        return Refusal(501, "5.5.4", "Unterminated <path>")
    return rest[1:end], rest[end + 1 :].strip()


def _closing_bracket(text: str) -> int:
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            return index
    return -1


def check_path(path: str, *, recipient: bool, smtputf8: bool) -> Address | Refusal:
    """One mailbox of MAIL FROM or RCPT TO, by rule 1 (the null sender is the
    caller's business)."""
    status = "5.1.3" if recipient else "5.1.7"
    if path.startswith("@"):
        return Refusal(553, status, "Source routes are not accepted")
    local, _, domain = path.rpartition("@")
    if local.startswith('"'):
        if len(local) < 2 or not local.endswith('"'):
            return Refusal(553, status, "Bad quoted local part")
        if _QUOTED_FORBIDDEN.search(local[1:-1]):
            return Refusal(553, status, 'Quoted local parts with @ % ! : \\ " refused')
    elif "%" in local or "%" in domain:
        return Refusal(553, status, "Percent-hack routing is not accepted")
    elif "!" in path:
        return Refusal(553, status, "Bang paths are not accepted")
    if not path.isascii() and not smtputf8:
        return Refusal(553, "5.6.7", "Non-ASCII address without SMTPUTF8")
    try:
        path.encode("utf-8")  # aiosmtpd passes bytes that are not UTF-8 as surrogates
    except UnicodeEncodeError:
        return Refusal(553, "5.6.7", "Address is not valid UTF-8")
    try:
        return parse_address(path)
    except AddressError:
        what = "recipient" if recipient else "sender"
        return Refusal(553, status, f"Bad {what} address syntax")


def decide_sender(*, may_relay: bool, has_sink: bool) -> Refusal | None:
    """At MAIL: a client that can relay nothing and reach no intake is told now."""
    if may_relay or has_sink:
        return None
    return AUTH_REQUIRED


def decide_recipient(
    address: Address, *, bounce_domain: str, has_sink: bool, may_relay: bool
) -> RecipientRoute | Refusal:
    """At RCPT, by rule 2."""
    if address.domain == bounce_domain:
        return RecipientRoute.bounce if has_sink else NO_BOUNCE_INTAKE
    if may_relay:
        return RecipientRoute.queue
    return RELAY_DENIED


def check_campaign_name(text: str) -> str:
    """A campaign name as given by a header or an AUTH user; ValueError if unusable."""
    name = text.strip()
    if not name or len(name) > 255:
        raise ValueError(f"campaign name must be 1-255 characters, got {text!r}")
    if _CONTROL.search(name):
        raise ValueError(f"control characters in campaign name, got {text!r}")
    return name


# -- per-client limits ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenBucket:
    tokens: float
    at: datetime


def take_token(
    bucket: TokenBucket | None, *, per_minute: int, now: datetime
) -> tuple[bool, TokenBucket]:
    """Take one token from a bucket holding ``per_minute`` and refilling as fast."""
    tokens = float(per_minute)
    if bucket is not None:
        elapsed = max((now - bucket.at).total_seconds(), 0.0)
        tokens = min(tokens, bucket.tokens + elapsed * per_minute / 60)
    if tokens >= 1:
        return True, TokenBucket(tokens=tokens - 1, at=now)
    return False, TokenBucket(tokens=tokens, at=now)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailures:
    count: int
    last_at: datetime
    locked_until: datetime | None = None

    def delay(self) -> timedelta:
        """How long to hold back the answer to the latest failure."""
        return timedelta(seconds=min(2 ** max(self.count - 1, 0), _MAX_DELAY_SECONDS))

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def counted(self, now: datetime, lockout: timedelta) -> int:
        """Failures that still count at ``now`` (0 once forgotten)."""
        if self.locked_until is not None:
            return self.count if now < self.locked_until else 0
        return self.count if now - self.last_at <= lockout else 0


def next_auth_failures(
    state: AuthFailures | None, *, now: datetime, limit: int, lockout: timedelta
) -> AuthFailures:
    """Count one more failure. During a lock the count goes on and the lock is
    extended; only an expired lock, or ``lockout`` without failures, starts over."""
    count = 1 + (state.counted(now, lockout) if state is not None else 0)
    if count >= limit:
        return AuthFailures(count=count, last_at=now, locked_until=now + lockout)
    return AuthFailures(count=count, last_at=now)


@functools.lru_cache(maxsize=4096)  # asked at every message: parsing is not free
def client_key(ip: str) -> str:
    """Whom the per-client limits count: an IPv4 address (IPv4-mapped IPv6 too),
    or an IPv6 address's /64, since one host usually holds a whole /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ClientLimits:
    """Rule 3's state for every client (:func:`client_key`); bounded to
    ``max_clients`` entries each. A successful login does not clear the failures
    counted against its client: they fade ``lockout`` after the last one, so a
    holder of one account cannot reset the count while guessing another's."""

    def __init__(self, settings: RelaySettings, *, max_clients: int = 10_000) -> None:
        self._settings = settings
        self._max_clients = max_clients
        self.connections: dict[str, int] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.failures: dict[str, AuthFailures] = {}
        self.user_failures: dict[str, AuthFailures] = {}
        # AUTH attempts being checked now, per client and per user name.
        self.checking: dict[str, int] = {}
        self.user_checking: dict[str, int] = {}

    def open(self, client: str) -> Refusal | None:
        """A new connection; on a refusal it is not counted (do not :meth:`close`)."""
        client = client_key(client)
        count = self.connections.get(client, 0)
        if count >= self._settings.max_connections_per_client:
            return Refusal(421, "4.7.0", "Too many connections from your address")
        self.connections[client] = count + 1
        return None

    def close(self, client: str) -> None:
        client = client_key(client)
        count = self.connections.get(client, 0) - 1
        if count > 0:
            self.connections[client] = count
        else:
            self.connections.pop(client, None)

    def message(self, client: str, now: datetime) -> Refusal | None:
        client = client_key(client)
        per_minute = self._settings.messages_per_minute_per_client
        ok, bucket = take_token(
            self.buckets.get(client), per_minute=per_minute, now=now
        )
        self.buckets[client] = bucket
        if len(self.buckets) > self._max_clients:
            self._prune_buckets(now)
        if ok:
            return None
        return Refusal(450, "4.7.1", "Too many messages from your address, slow down")

    def auth_begin(
        self, client: str, user: str | None, now: datetime
    ) -> Refusal | None:
        """Count an AUTH attempt before its password is checked; a Refusal (454)
        if the client or the user name is locked, or would be by the attempts
        already counted. Without a refusal, :meth:`auth_end` must follow."""
        checks = self._auth_checks(client, user)
        for failures, checking, key, limit in checks:
            if self._counted(failures, key, now) + checking.get(key, 0) >= limit:
                return Refusal(454, "4.7.0", "Too many failed logins, try again later")
        for _, checking, key, _ in checks:
            checking[key] = checking.get(key, 0) + 1
        return None

    def auth_locked(self, client: str, user: str | None, now: datetime) -> bool:
        """Whether failures alone (not checks in progress) lock the client or the
        user name: when :meth:`auth_begin` refused and this is false, the attempt
        may wait for a check in progress to end and ask again."""
        return any(
            self._counted(failures, key, now) >= limit
            for failures, _, key, limit in self._auth_checks(client, user)
        )

    def _auth_checks(
        self, client: str, user: str | None
    ) -> list[tuple[dict[str, AuthFailures], dict[str, int], str, int]]:
        checks = [
            (self.failures, self.checking, client_key(client), self._client_limit)
        ]
        if user is not None:
            checks.append(
                (self.user_failures, self.user_checking, user, self._user_limit)
            )
        return checks

    def _counted(
        self, failures: dict[str, AuthFailures], key: str, now: datetime
    ) -> int:
        state = failures.get(key)
        return state.counted(now, self._settings.lockout) if state else 0

    def auth_end(
        self, client: str, user: str | None, *, failed: bool, now: datetime
    ) -> timedelta:
        """The attempt counted by :meth:`auth_begin` is over; a failure is recorded
        for the client and the user name. Returns how long to hold back the 535."""
        client = client_key(client)
        _release(self.checking, client)
        if user is not None:
            _release(self.user_checking, user)
        if not failed:
            return timedelta(0)
        state = self._fail(self.failures, client, self._client_limit, now)
        if user is not None:
            self._fail(self.user_failures, user, self._user_limit, now)
        return state.delay()

    @property
    def _client_limit(self) -> int:
        return self._settings.auth_failures_before_lockout

    @property
    def _user_limit(self) -> int:
        return self._settings.user_auth_failures_before_lockout

    def _fail(
        self, failures: dict[str, AuthFailures], key: str, limit: int, now: datetime
    ) -> AuthFailures:
        lockout = self._settings.lockout
        state = next_auth_failures(
            failures.get(key), now=now, limit=limit, lockout=lockout
        )
        failures[key] = state
        if len(failures) > self._max_clients:
            _prune_failures(failures, self._max_clients, now, lockout)
        return state

    def _prune_buckets(self, now: datetime) -> None:
        """Drop full buckets (idle a minute: same as absent), then the oldest."""
        idle = now - timedelta(minutes=1)
        self.buckets = {c: b for c, b in self.buckets.items() if b.at > idle}
        _trim_oldest(self.buckets, self._max_clients, key=lambda b: (False, b.at))


def _release(checking: dict[str, int], key: str) -> None:
    count = checking.get(key, 0) - 1
    if count > 0:
        checking[key] = count
    else:
        checking.pop(key, None)


def _prune_failures(
    failures: dict[str, AuthFailures], size: int, now: datetime, lockout: timedelta
) -> None:
    """Drop forgotten failures, then the oldest unlocked ones (in place)."""
    for key in [k for k, f in failures.items() if not f.counted(now, lockout)]:
        del failures[key]
    _trim_oldest(failures, size, key=_unlocked_age)


def _unlocked_age(state: AuthFailures) -> tuple[bool, datetime]:
    return state.locked_until is not None, state.last_at


def _trim_oldest(
    entries: dict[str, V], size: int, *, key: Callable[[V], tuple[bool, datetime]]
) -> None:
    """Keep the ``size`` entries with the largest ``key`` (in place)."""
    if len(entries) <= size:
        return
    for client, _ in sorted(entries.items(), key=lambda item: key(item[1]))[
        : len(entries) - size
    ]:
        del entries[client]
