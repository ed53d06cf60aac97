"""Which simulated recipients exist: a pure, stable decision from the address alone.

Rules:

1. Test prefixes win: a local part starting with ``unknown`` is an unknown user,
   ``full`` a full mailbox, ``grey`` a greylisting mailbox, ``dsnbounce`` one accepted
   with 250 that bounces later with a DSN, ``complain`` one accepted with 250 whose
   owner then reports it as spam (an ARF report) (case-insensitive).
2. Every other address is placed by a keyed BLAKE2b hash of the address (lower-cased,
   angle brackets stripped) against the shares, in the order unknown, full, greylist,
   dsn, complainer. The key comes from the simulation's seed, so one address always
   behaves the same within a seed, whatever Python's per-process ``hash``
   randomisation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["PREFIXES", "Mailbox", "MailboxShares", "classify_mailbox"]


class Mailbox(StrEnum):
    """How a simulated mailbox answers RCPT."""

    normal = "normal"
    unknown = "unknown"  # 550 5.1.1 on every attempt
    full = "full"  # 452 4.2.2 on every attempt
    greylist = "greylist"  # 451 on the first attempt per source IP, then accepted
    dsn = "dsn"  # accepted with 250, then bounced by a DSN
    complainer = "complainer"  # accepted with 250, then an ARF complaint


#: Local-part prefixes that force a mailbox kind (for tests and demos).
PREFIXES: tuple[tuple[str, Mailbox], ...] = (
    ("unknown", Mailbox.unknown),
    ("full", Mailbox.full),
    ("grey", Mailbox.greylist),
    ("dsnbounce", Mailbox.dsn),
    ("complain", Mailbox.complainer),
)

_SCALE = float(1 << 64)


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxShares:
    """Shares of all recipients per kind; the rest are normal mailboxes."""

    unknown: float = 0.02
    full: float = 0.005
    greylist: float = 0.01
    dsn: float = 0.005
    complainer: float = 0.0

    def __post_init__(self) -> None:
        for name in ("unknown", "full", "greylist", "dsn", "complainer"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}_share must be within [0, 1], got {value!r}")
        total = self.unknown + self.full + self.greylist + self.dsn + self.complainer
        if total > 1.0:
            raise ValueError(f"the shares must add up to at most 1, got {total!r}")


def classify_mailbox(address: str, *, key: bytes, shares: MailboxShares) -> Mailbox:
    """The kind of mailbox behind ``address`` for the simulation keyed by ``key``."""
    normalised = address.strip().strip("<>").lower()
    local = normalised.rpartition("@")[0] or normalised
    for prefix, kind in PREFIXES:
        if local.startswith(prefix):
            return kind
    digest = hashlib.blake2b(normalised.encode(), key=key, digest_size=8).digest()
    draw = int.from_bytes(digest, "big") / _SCALE
    for kind, share in (
        (Mailbox.unknown, shares.unknown),
        (Mailbox.full, shares.full),
        (Mailbox.greylist, shares.greylist),
        (Mailbox.dsn, shares.dsn),
        (Mailbox.complainer, shares.complainer),
    ):
        if draw < share:
            return kind
        draw -= share
    return Mailbox.normal
