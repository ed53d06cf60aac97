"""Suppression entries and the pure part of filtering against them."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from warmup.core.model import SuppressionKind
from warmup.core.recipients.address import normalize_suppression

__all__ = [
    "Suppression",
    "bounce_target",
    "is_suppressed",
    "lookup_keys",
    "make_suppression",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    """An address (or ``@domain``) that must never be mailed again."""

    address: str
    kind: SuppressionKind
    reason: str
    source: str
    created_at: datetime


def make_suppression(
    text: str, *, reason: str, source: str, now: datetime
) -> Suppression:
    """Normalise ``text`` into a suppression; AddressError if it is not usable."""
    address = normalize_suppression(text)
    kind = (
        SuppressionKind.domain if address.startswith("@") else SuppressionKind.address
    )
    return Suppression(
        address=address, kind=kind, reason=reason, source=source, created_at=now
    )


def bounce_target(
    address: str, domain: str, reason: str, *, whole_domain: bool = True
) -> str:
    """What a hard bounce suppresses: the domain when it does not exist
    (``hostunknown``) and ``whole_domain`` is allowed, else the address."""
    return "@" + domain if whole_domain and reason == "hostunknown" else address


def lookup_keys(addresses: Iterable[str]) -> set[str]:
    """Suppression keys covering normalised addresses: each and its @domain."""
    keys: set[str] = set()
    for address in addresses:
        keys.add(address)
        keys.add("@" + address.rpartition("@")[2])
    return keys


def is_suppressed(address: str, keys: Collection[str]) -> bool:
    """Whether a normalised address is on a suppression list, given as its keys
    (addresses and ``@domain`` entries; see :func:`lookup_keys`): the address
    itself or its whole domain."""
    return address in keys or "@" + address.rpartition("@")[2] in keys
