"""The relay's AUTH users: a file of salted scrypt hashes (stdlib ``hashlib``).

One user per line, ``name:scrypt$N$r$p$salt$hash`` (salt and hash in base64);
blank lines and ``#`` comments are ignored. ``warmup relay adduser`` writes it.
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
from dataclasses import dataclass
from pathlib import Path

from warmup.core.errors import InputError

__all__ = ["USER_NAME", "UserFile", "add_user", "hash_password", "verify_password"]

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


def _parse(path: Path, text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not USER_NAME.match(name) or not stored.startswith("scrypt$"):
            raise InputError(f"{path}:{number}", "expected name:scrypt$N$r$p$salt$hash")
        users[name] = stored
    return users


@dataclass(slots=True)
class _Loaded:
    users: dict[str, str]
    stamp: tuple[int, int]  # (mtime_ns, size) when read


class UserFile:
    """The users file; read when first needed and again when it changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def users(self) -> dict[str, str]:
        """Name -> stored hash (blocking I/O). InputError if unreadable or bad."""
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
        stored = self.users().get(user)
        matched = verify_password(password, stored or _DUMMY)
        return matched and stored is not None


def add_user(path: str | Path, user: str, password: bytes) -> bool:
    """Add or replace ``user`` (atomically, mode 0600); True if it was new."""
    if not USER_NAME.match(user):
        raise InputError(user, "user names are 1-64 of A-Z a-z 0-9 . _ @ + -")
    target = Path(path)
    lines: list[str] = []
    new = True
    if target.exists():
        _parse(target, target.read_text(encoding="utf-8"))  # refuse to extend junk
        for line in target.read_text(encoding="utf-8").splitlines():
            if line.partition(":")[0].strip() == user:
                new = False
                continue
            lines.append(line)
    lines.append(f"{user}:{hash_password(password)}")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return new
