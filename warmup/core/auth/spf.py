"""SPF records (RFC 7208) parsed into terms; evaluation is in :mod:`warmup.app.spf`.

Macros (``%{i}`` …) are not expanded: a term holding one is reported as such.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["MECHANISMS", "SPFRecordError", "Term", "parse_spf", "spf_records"]

MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_CIDR = re.compile(r"^(?P<spec>[^/]*)(?:/(?P<v4>\d{1,2}))?(?://(?P<v6>\d{1,3}))?$")
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$")


class SPFRecordError(ValueError):
    """The record breaks RFC 7208's syntax (a permerror)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """One directive: ``result`` when it matches (its qualifier), ``mechanism``,
    its domain-spec or network (``value``) and CIDR lengths for a and mx."""

    result: str
    mechanism: str
    value: str = ""
    v4_prefix: int = 32
    v6_prefix: int = 128


def spf_records(texts: tuple[str, ...]) -> list[str]:
    """The TXT strings that are SPF records (``v=spf1`` then a space or the end)."""
    return [t for t in texts if re.match(r"(?i)^v=spf1(\s|$)", t)]


def _term(word: str) -> Term:
    result = _QUALIFIERS.get(word[0])
    if result is not None:
        word = word[1:]
    name, sep, rest = word.partition(":")
    if not sep:
        name, sep, rest = word.partition("/")
        rest = "/" + rest if sep else ""
    name = name.lower()
    if name not in MECHANISMS:
        raise SPFRecordError(f"unknown mechanism {word!r}")
    if name in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(rest, strict=False)
        except ValueError:
            raise SPFRecordError(f"bad network in {word!r}") from None
        if network.version != int(name[-1]):
            raise SPFRecordError(f"{name} with an IPv{network.version} network")
        return Term(result=result or "pass", mechanism=name, value=str(network))
    found = _CIDR.match(rest)
    if found is None or (name in ("all",) and rest):
        raise SPFRecordError(f"bad term {word!r}")
    v4, v6 = int(found["v4"] or 32), int(found["v6"] or 128)
    if v4 > 32 or v6 > 128:
        raise SPFRecordError(f"bad prefix length in {word!r}")
    return Term(
        result=result or "pass",
        mechanism=name,
        value=found["spec"].rstrip(".").lower(),
        v4_prefix=v4,
        v6_prefix=v6,
    )


def parse_spf(record: str) -> tuple[list[Term], str | None]:
    """(directives in order, the ``redirect=`` domain or None)."""
    terms: list[Term] = []
    redirect: str | None = None
    for word in record.split()[1:]:
        modifier = _MODIFIER.match(word)
        if modifier is not None:
            key = modifier.group(1).lower()
            if key == "redirect":
                if redirect is not None:
                    raise SPFRecordError("redirect= given twice")
                redirect = modifier.group(2).rstrip(".").lower()
            continue  # exp= and unknown modifiers do not change the result
        terms.append(_term(word))
    return terms, redirect
