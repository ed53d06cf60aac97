"""The relay's AUTH users: a file of salted scrypt hashes (stdlib ``hashlib``).

One user per line, ``name:scrypt$N$r$p$salt$hash`` (salt and hash in base64),
optionally followed by ``:key=value`` fields: ``priority=`` (the user's default
X-Warmup-Priority: high, normal, low or 0-100) and ``changed=`` (when the
password was last set, ISO 8601 basic format in UTC, ``20261203T160000Z``);
lines without them (older files) stay valid. Blank lines and ``#`` comments
are ignored. ``warmup relay adduser`` writes it, ``warmup relay users remove``
takes a user out.
Checking a password costs ~50 ms of CPU and 16 MiB (scrypt N=2**14, r=8, p=1):
call :meth:`UserFile.verify` in a thread, never on the event loop. Unknown users
cost the same as known ones, so timing does not tell which names exist. The file
is read again when it changes, so added users need no restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from warmup.core.errors import InputError
from warmup.core.relay.message import parse_priority

__all__ = [
    "USER_NAME",
    "RelayUser",
    "UserFile",
    "add_user",
    "hash_password",
    "read_users",
    "remove_user",
    "verify_password",
]

#: User names: they name the campaign of what the user submits.
USER_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
_N, _R, _P = 2**14, 8, 1
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="


def hash_password(
    password: bytes, *, n: int = _N, r: int = _R, p: int = _P, salt: bytes = b""
) -> str:
    """``scrypt$N$r$p$salt$hash`` for a password (a fresh random salt if none)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32)
    encoded = [base64.b64encode(x).decode("ascii") for x in (salt, digest)]
    return f"scrypt${n}${r}${p}${encoded[0]}${encoded[1]}"


def verify_password(password: bytes, stored: str) -> bool:
    """Whether ``password`` matches a ``scrypt$…`` string (constant-time compare)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.scrypt(
            password,
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayUser:
    """One line of the users file."""

    name: str
    stored: str  # scrypt$N$r$p$salt$hash
    priority: str | None = None  # default X-Warmup-Priority of what it submits
    changed: datetime | None = None  # when the password was last set

    def line(self) -> str:
        extra = ""
        if self.priority is not None:
            extra += f":priority={self.priority}"
        if self.changed is not None:
            # ISO 8601 basic format: no colon inside a field.
            extra += f":changed={self.changed.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        return f"{self.name}:{self.stored}{extra}"


def check_priority(text: str) -> str:
    """A default priority as written in the file; ValueError if it is none."""
    word = text.strip().lower()
    parse_priority(word, now=datetime.fromtimestamp(0, UTC))
    return word


def _user(where: str, line: str) -> RelayUser:
    name, sep, rest = line.partition(":")
    stored, *extra = rest.split(":")
    if not sep or not USER_NAME.match(name) or not stored.startswith("scrypt$"):
        raise InputError(where, "expected name:scrypt$N$r$p$salt$hash[:key=value]…")
    fields: dict[str, str] = {}
    for item in extra:
        key, equals, value = item.partition("=")
        if not equals or key not in ("priority", "changed") or key in fields:
            raise InputError(where, f"unknown or repeated field {item[:40]!r}")
        fields[key] = value
    try:
        priority = fields.get("priority")
        changed = fields.get("changed")
        return RelayUser(
            name=name,
            stored=stored,
            priority=None if priority is None else check_priority(priority),
            changed=None if changed is None else datetime.fromisoformat(changed),
        )
    except ValueError as exc:
        raise InputError(where, str(exc)) from None


def _parse(path: Path, text: str) -> dict[str, RelayUser]:
    users: dict[str, RelayUser] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user = _user(f"{path}:{number}", line)
        users[user.name] = user
    return users


def read_users(path: str | Path) -> dict[str, RelayUser]:
    """Every user of the file, in file order. InputError if unreadable or bad."""
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(target), f"cannot read: {exc}") from None
    return _parse(target, text)


@dataclass(slots=True)
class _Loaded:
    users: dict[str, RelayUser]
    stamp: tuple[int, int]  # (mtime_ns, size) when read


class UserFile:
    """The users file; read when first needed and again when it changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def users(self) -> dict[str, RelayUser]:
        """Name -> user (blocking I/O, a stat when unchanged). InputError if
        unreadable or bad."""
        with self._lock:
            try:
                info = self.path.stat()
                stamp = (info.st_mtime_ns, info.st_size)
                if self._loaded is None or self._loaded.stamp != stamp:
                    text = self.path.read_text(encoding="utf-8")
                    self._loaded = _Loaded(_parse(self.path, text), stamp)
            except OSError as exc:
                raise InputError(str(self.path), f"cannot read: {exc}") from None
            return self._loaded.users

    def verify(self, user: str, password: bytes) -> bool:
        """Blocking (scrypt): run it in a thread."""
        found = self.users().get(user)
        stored = None if found is None else found.stored
        matched = verify_password(password, stored or _DUMMY)
        return matched and stored is not None

    def priority(self, user: str) -> str | None:
        """The user's default priority as of the last read (None: none set, or
        an unknown user). No I/O, so the loop may call it: the file is read
        again, when it changed, at each AUTH (:meth:`verify`, in a thread)."""
        loaded = self._loaded
        found = None if loaded is None else loaded.users.get(user)
        return None if found is None else found.priority


def add_user(
    path: str | Path,
    user: str,
    password: bytes | None,
    *,
    priority: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Add or replace ``user`` (atomically, mode 0600); True if it was new.

    ``password`` None keeps the password (only for a user that exists) and
    changes the priority; ``priority`` None keeps the one set, "" clears it.
    """
    if not USER_NAME.match(user):
        raise InputError(user, "user names are 1-64 of A-Z a-z 0-9 . _ @ + -")
    if priority:
        try:
            priority = check_priority(priority)
        except ValueError as exc:
            raise InputError("--priority", str(exc)) from None
    target = Path(path)
    users = read_users(target) if target.exists() else {}
    old = users.get(user)
    if password is not None:
        stored, changed = hash_password(password), now
    elif old is not None:
        stored, changed = old.stored, old.changed
    else:
        raise InputError(user, f"no such user in {target}")
    kept = old.priority if old is not None else None
    users[user] = RelayUser(
        name=user,
        stored=stored,
        priority=kept if priority is None else (priority or None),
        changed=changed,
    )
    _rewrite(target, lambda line: _replace(line, users, user), users[user])
    return old is None


def remove_user(path: str | Path, user: str) -> None:
    """Take ``user`` out (atomically, mode 0600); InputError if it is not there."""
    target = Path(path)
    users = read_users(target)
    if user not in users:
        raise InputError(user, f"no such user in {target}")
    _rewrite(target, lambda line: None if _name(line) == user else line, None)


def _name(line: str) -> str:
    text = line.strip()
    return "" if text.startswith("#") else text.partition(":")[0]


def _replace(line: str, users: dict[str, RelayUser], user: str) -> str | None:
    return users[user].line() if _name(line) == user else line


def _rewrite(
    target: Path, edit: Callable[[str], str | None], append: RelayUser | None
) -> None:
    """Write the file again (comments kept), ``edit`` applied to each line and
    ``append`` added if no line named it; atomic (rename), mode 0600."""
    lines: list[str] = []
    if target.exists():
        for line in target.read_text(encoding="utf-8").splitlines():
            edited = edit(line)
            if edited is not None:
                lines.append(edited)
    if append is not None and not any(_name(line) == append.name for line in lines):
        lines.append(append.line())
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
