"""Recipient addresses: validation and normalisation.

Addresses are compared normalised: the domain lower-cased (and IDNA-decoded names
kept as Unicode, lower-cased), the local part exactly as written. A suppression
entry for a whole domain is written ``@example.com``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = [
    "DOT_ATOM",
    "Address",
    "AddressError",
    "mask_address",
    "mask_addresses",
    "normalize_suppression",
    "parse_address",
]

# RFC 5322 3.2.3: an atom of atext, and a dot-atom (the plain addresses the SMTP
# adapters read and write without a full parser).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_LOCAL = re.compile(r"^[^\s@<>()\[\],;:\\\"]+$")
_QUOTED_LOCAL = re.compile(r'^"(?:[^"\\\r\n]|\\.)+"$')
_LABEL = re.compile(r"^(?!-)[^\s@.<>()\[\],;:\\\"/]{1,63}(?<!-)$")
# An address inside free text (a reply, an exception): local@dotted.domain.
_IN_TEXT = re.compile(
    r"(\"(?:[^\"\\\r\n]|\\.)+\"|[^\s@<>()\[\],;:\\\"'=]+)@((?:[\w-]+\.)+[\w-]+)"
)


class AddressError(ValueError):
    """An address that cannot be mailed; the message says why."""


@dataclass(frozen=True, slots=True)
class Address:
    local: str
    domain: str

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"


def _domain(text: str, original: str) -> str:
    domain = text.lower().rstrip(".")
    problem = _domain_problem(domain)
    if problem is not None:
        raise AddressError(f"{problem}, got {original!r}")
    return domain


@functools.lru_cache(maxsize=4096)
def _domain_problem(domain: str) -> str | None:
    """What is wrong with a lower-cased domain, if anything (a list's
    addresses share a few domains: each is judged once)."""
    if domain.startswith("[") and domain.endswith("]"):
        return "address literals are not accepted"
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253:
        return "domain needs at least one dot"
    if not all(_LABEL.match(label) for label in labels):
        return "invalid domain"
    if labels[-1].isdigit():
        return "domain must not be numeric"
    return None


def parse_address(text: str) -> Address:
    """Validate and normalise one address; raise AddressError on anything unsendable."""
    if "\r" in text or "\n" in text:
        raise AddressError(f"line break inside the address, got {text!r}")
    candidate = text.strip()
    if not candidate:
        raise AddressError("empty address")
    local, at, domain = candidate.rpartition("@")
    if not at or not local:
        raise AddressError(f"expected local@domain, got {text!r}")
    if len(local) > 64 or len(candidate) > 254:
        raise AddressError(f"address too long, got {text!r}")
    if not (_LOCAL.match(local) or _QUOTED_LOCAL.match(local)):
        raise AddressError(f"invalid local part, got {text!r}")
    dotted = local.startswith(".") or local.endswith(".") or ".." in local
    if dotted and not local.startswith('"'):
        raise AddressError(f"invalid dots in the local part, got {text!r}")
    return Address(local, _domain(domain, text))


def normalize_suppression(text: str) -> str:
    """Normalise a suppression entry: ``user@Example.COM`` or ``@Example.COM``."""
    candidate = text.strip()
    if candidate.startswith("@"):
        return "@" + _domain(candidate[1:], text)
    return parse_address(candidate).address


def _mask_local(local: str) -> str:
    masked = local[:1] + "***"
    return local if local[1:] == "***" or local == "***" else masked


def mask_address(address: str) -> str:
    """``john.doe@example.com`` -> ``j***@example.com``, for logs.

    The domain stays (it says which ISP); the local part, which names a person,
    keeps only its first character. Text without ``@`` becomes ``***``.
    """
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{_mask_local(local)}@{domain}"


def mask_addresses(text: str) -> str:
    """Every address inside ``text`` masked as by :func:`mask_address`."""
    return _IN_TEXT.sub(lambda m: f"{_mask_local(m.group(1))}@{m.group(2)}", text)
