"""An independent DKIM verifier for tests: dkimpy against published TXT records."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import dkim
from dkim.util import parse_tag_value

from warmup.core.auth.dkim import split_message

__all__ = ["dnsfunc", "signed_names", "verify_all"]


def dnsfunc(records: Mapping[str, str]) -> Callable[..., bytes | None]:
    """A dkimpy ``dnsfunc`` answering from ``records`` (name without final dot)."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        found = records.get(name.decode().rstrip("."))
        return None if found is None else found.encode()

    return lookup


def signed_names(message: bytes) -> list[list[str]]:
    """The h= names of each DKIM-Signature, top first."""
    out = []
    for name, raw in split_message(message)[0]:
        if name == "dkim-signature":
            tags = parse_tag_value(raw.partition(b":")[2])
            out.append(b"".join(tags[b"h"].split()).decode().lower().split(":"))
    return out


def verify_all(message: bytes, records: Mapping[str, str]) -> int:
    """How many signatures the message carries; AssertionError if one fails."""
    count = len(signed_names(message))
    lookup = dnsfunc(records)
    for index in range(count):
        assert dkim.DKIM(message).verify(idx=index, dnsfunc=lookup), index
    return count
