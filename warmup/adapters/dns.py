"""MX lookups with dnspython: cached by TTL, bounded by a timeout, errors as values."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from warmup.app.ports import DNSAnswer, MXAnswer
from warmup.core.model import DNSError

__all__ = ["DNSRecords", "DNSResolver", "make_resolver"]

logger = logging.getLogger(__name__)
_NEGATIVE_TTL = timedelta(minutes=5)
_MAX_TTL = timedelta(hours=6)


def make_resolver(
    nameservers: Sequence[tuple[str, int]], timeout: timedelta
) -> dns.asyncresolver.Resolver:
    """A dnspython resolver asking ``nameservers`` (``dns.nameservers``: host,
    port; UDP, and TCP for truncated answers), or the system's when empty."""
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers
        ]
    resolver.lifetime = timeout.total_seconds()
    return resolver


class DNSResolver:
    """The Resolver port. NXDOMAIN and Null MX (RFC 7505) are answers the routing
    weighs as evidence (core/recipients/dns_evidence.py); SERVFAIL and timeouts are
    ``temporary`` and never cached."""

    def __init__(
        self,
        *,
        timeout: timedelta,
        now: Callable[[], datetime],
        nameservers: Sequence[str | tuple[str, int]] = (),
        port: int = 53,
    ) -> None:
        servers = [(s, port) if isinstance(s, str) else s for s in nameservers]
        self._resolver = make_resolver(servers, timeout)
        self._now = now
        self._cache: dict[str, tuple[datetime, MXAnswer]] = {}
        self._addresses: dict[tuple[str, int], tuple[datetime, str | None]] = {}

    async def address(self, host: str, version: int) -> str | None:
        """An IPv4 (``version`` 4) or IPv6 address of ``host``, cached by TTL;
        None when it has none or the lookup failed (for SMTPSender)."""
        key = (host.lower(), version)
        cached = self._addresses.get(key)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        rdtype = dns.rdatatype.AAAA if version == 6 else dns.rdatatype.A
        try:
            result = await self._resolver.resolve(host, rdtype, search=False)
        except dns.exception.DNSException as exc:
            logger.warning("address lookup for %s failed: %s", host, exc)
            return None
        found = str(next(iter(result))) if len(result) else None
        ttl = result.rrset.ttl if result.rrset is not None else 300
        expires = self._now() + min(timedelta(seconds=ttl), _MAX_TTL)
        self._addresses[key] = (expires, found)
        return found

    async def mx(self, domain: str) -> MXAnswer:
        cached = self._cache.get(domain)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        answer, ttl = await self._lookup(domain)
        if answer.error is not DNSError.temporary:
            self._cache[domain] = (self._now() + min(ttl, _MAX_TTL), answer)
        return answer

    async def _lookup(self, domain: str) -> tuple[MXAnswer, timedelta]:
        try:
            result = await self._resolver.resolve(domain, dns.rdatatype.MX)
        except dns.resolver.NXDOMAIN:
            return MXAnswer(error=DNSError.nxdomain), _NEGATIVE_TTL
        except dns.resolver.NoAnswer:
            # No MX: RFC 5321 §5.1 falls back to the domain's own address.
            return MXAnswer(hosts=(domain,)), _NEGATIVE_TTL
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            logger.warning("MX lookup for %s failed: %s", domain, exc)
            return MXAnswer(error=DNSError.temporary), timedelta(0)
        except dns.exception.DNSException as exc:
            logger.warning("MX lookup for %s failed: %s", domain, exc)
            return MXAnswer(error=DNSError.temporary), timedelta(0)
        ttl = timedelta(seconds=result.rrset.ttl if result.rrset is not None else 300)
        records = sorted(result, key=lambda r: r.preference)
        hosts = tuple(str(r.exchange).rstrip(".").lower() for r in records)
        if hosts in ((), ("",)):
            return MXAnswer(error=DNSError.nullmx), ttl
        return MXAnswer(hosts=hosts), ttl


def _text(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        strings: tuple[bytes, ...] = rdata.strings  # type: ignore[attr-defined]
        return b"".join(strings).decode("utf-8", errors="replace")
    if rdtype == "MX":
        # The root stays "." (a null MX, RFC 7505), not an empty host name.
        exchange = str(rdata.exchange).rstrip(".").lower() or "."  # type: ignore[attr-defined]
        return f"{rdata.preference} {exchange}"  # type: ignore[attr-defined]
    return str(rdata).rstrip(".").lower()


class DNSRecords:
    """The DNSLookup port: any record type, errors as values, no cache."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self._resolver = resolver

    async def lookup(self, name: str, rdtype: str) -> DNSAnswer:
        try:
            result = await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return DNSAnswer(error=DNSError.nxdomain)
        except dns.resolver.NoAnswer:
            return DNSAnswer(error=DNSError.nodata)
        except dns.exception.DNSException as exc:
            logger.warning("%s lookup for %s failed: %s", rdtype, name, exc)
            return DNSAnswer(error=DNSError.temporary)
        return DNSAnswer(records=tuple(_text(r, rdtype) for r in result))
