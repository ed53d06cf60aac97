"""SPF evaluation (RFC 7208 ``check_host``) over the DNSLookup port.

Written here rather than taken from pyspf: pyspf resolves synchronously through
module-wide resolver settings (it could not use ``dns.nameservers`` without
changing global state, nor run on the event loop) and has had no release since
2020. Covered: all, include, a, mx, ptr, ip4, ip6, exists, redirect=; the limit
of 10 DNS-querying terms (§4.6.4) and of 2 void lookups; no macro expansion.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from warmup.app.ports import DNSLookup
from warmup.core.auth.spf import SPFRecordError, Term, parse_spf, spf_records
from warmup.core.errors import WarmupError
from warmup.core.model import DNSError

__all__ = ["SPFResult", "check_host"]

MAX_LOOKUPS = 10
MAX_VOID = 2
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True, kw_only=True)
class SPFResult:
    """pass | fail | softfail | neutral | none | permerror | temperror, and why."""

    result: str
    detail: str


class _Abort(WarmupError):
    def __init__(self, result: str, detail: str) -> None:
        super().__init__(detail)
        self.result = SPFResult(result=result, detail=detail)


@dataclass(slots=True)
class _Evaluation:
    ip: IP
    dns: DNSLookup
    lookups: int = 0
    void: int = 0
    seen: list[str] = field(default_factory=list)

    def count(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _Abort(
                "permerror", f"more than {MAX_LOOKUPS} DNS lookups (at {term})"
            )

    async def addresses(self, name: str, *, six: bool) -> list[IP]:
        answer = await self.dns.lookup(name, "AAAA" if six else "A")
        if answer.error is DNSError.temporary:
            raise _Abort("temperror", f"looking up {name} failed")
        if answer.error is not None:
            self.void += 1
            if self.void > MAX_VOID:
                raise _Abort("permerror", f"more than {MAX_VOID} void lookups")
        return [ipaddress.ip_address(r) for r in answer.records]

    def within(self, address: IP, term: Term) -> bool:
        if address.version != self.ip.version:
            return False
        prefix = term.v6_prefix if self.ip.version == 6 else term.v4_prefix
        return self.ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False)

    async def record(self, domain: str) -> str | None:
        answer = await self.dns.lookup(domain, "TXT")
        if answer.error is DNSError.temporary:
            raise _Abort("temperror", f"looking up the SPF record of {domain} failed")
        records = spf_records(answer.records)
        if len(records) > 1:
            raise _Abort("permerror", f"{domain} has {len(records)} SPF records")
        return records[0] if records else None

    async def check(self, domain: str) -> SPFResult:
        record = await self.record(domain)
        if record is None:
            return SPFResult(result="none", detail=f"{domain} has no SPF record")
        try:
            terms, redirect = parse_spf(record)
        except SPFRecordError as exc:
            raise _Abort("permerror", f"{domain}: {exc}") from None
        for term in terms:
            if await self.matches(term, domain):
                where = (
                    f"{term.mechanism}:{term.value}" if term.value else term.mechanism
                )
                return SPFResult(result=term.result, detail=f"{where} of {domain}")
        if redirect is not None:
            self.count(f"redirect={redirect}")
            found = await self.check(redirect)
            if found.result == "none":
                raise _Abort("permerror", f"redirect={redirect} has no SPF record")
            return found
        return SPFResult(result="neutral", detail=f"no term of {domain} matched")

    async def matches(self, term: Term, domain: str) -> bool:
        if "%" in term.value:
            raise _Abort("permerror", f"macro in {term.value!r} (not evaluated)")
        target = term.value or domain
        kind = term.mechanism
        if kind == "all":
            return True
        if kind in ("ip4", "ip6"):
            return self.ip in ipaddress.ip_network(term.value)
        self.count(f"{kind}:{target}")
        if kind == "include":
            return await self.include(target)
        if kind == "a":
            six = self.ip.version == 6
            return any(
                self.within(a, term) for a in await self.addresses(target, six=six)
            )
        if kind == "mx":
            return await self.mx(term, target)
        if kind == "exists":
            return bool(await self.addresses(target, six=False))
        return await self.ptr(target)

    async def include(self, target: str) -> bool:
        found = await self.check(target)
        if found.result in ("temperror", "permerror"):
            raise _Abort(found.result, found.detail)
        if found.result == "none":
            raise _Abort("permerror", f"include:{target} has no SPF record")
        return found.result == "pass"

    async def mx(self, term: Term, target: str) -> bool:
        answer = await self.dns.lookup(target, "MX")
        if answer.error is DNSError.temporary:
            raise _Abort("temperror", f"looking up the MX of {target} failed")
        hosts = [r.split()[-1] for r in answer.records]
        if len(hosts) > MAX_LOOKUPS:
            raise _Abort("permerror", f"mx:{target} has more than {MAX_LOOKUPS} hosts")
        six = self.ip.version == 6
        for host in hosts:
            if any(self.within(a, term) for a in await self.addresses(host, six=six)):
                return True
        return False

    async def ptr(self, target: str) -> bool:
        answer = await self.dns.lookup(self.ip.reverse_pointer, "PTR")
        for name in answer.records[:MAX_LOOKUPS]:
            if name == target or name.endswith("." + target):
                six = self.ip.version == 6
                if self.ip in await self.addresses(name, six=six):
                    return True
        return False


async def check_host(ip: str, domain: str, dns: DNSLookup) -> SPFResult:
    """Whether ``domain``'s SPF authorises ``ip`` to send mail for it."""
    evaluation = _Evaluation(ip=ipaddress.ip_address(ip), dns=dns)
    try:
        return await evaluation.check(domain.rstrip(".").lower())
    except _Abort as abort:
        return abort.result
