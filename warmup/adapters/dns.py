"""MX lookups with dnspython: cached by TTL, bounded by a timeout, errors as values."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from warmup.app.ports import MXAnswer

__all__ = ["DNSResolver"]

logger = logging.getLogger(__name__)
_NEGATIVE_TTL = timedelta(minutes=5)
_MAX_TTL = timedelta(hours=6)


class DNSResolver:
    """The Resolver port. NXDOMAIN and Null MX (RFC 7505) are answers the routing
    weighs as evidence (core/dns_evidence.py); SERVFAIL and timeouts are
    ``temporary`` and never cached."""

    def __init__(
        self,
        *,
        timeout: timedelta,
        now: Callable[[], datetime],
        nameservers: list[str] | None = None,
        port: int = 53,
    ) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
        if nameservers is not None:
            self._resolver.nameservers = nameservers
            self._resolver.port = port
        self._resolver.lifetime = timeout.total_seconds()
        self._now = now
        self._cache: dict[str, tuple[datetime, MXAnswer]] = {}

    async def mx(self, domain: str) -> MXAnswer:
        cached = self._cache.get(domain)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        answer, ttl = await self._lookup(domain)
        if answer.error != "temporary":
            self._cache[domain] = (self._now() + min(ttl, _MAX_TTL), answer)
        return answer

    async def _lookup(self, domain: str) -> tuple[MXAnswer, timedelta]:
        try:
            result = await self._resolver.resolve(domain, dns.rdatatype.MX)
        except dns.resolver.NXDOMAIN:
            return MXAnswer(error="nxdomain"), _NEGATIVE_TTL
        except dns.resolver.NoAnswer:
            # No MX: RFC 5321 §5.1 falls back to the domain's own address.
            return MXAnswer(hosts=(domain,)), _NEGATIVE_TTL
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            logger.warning("MX lookup for %s failed: %s", domain, exc)
            return MXAnswer(error="temporary"), timedelta(0)
        except dns.exception.DNSException as exc:
            logger.warning("MX lookup for %s failed: %s", domain, exc)
            return MXAnswer(error="temporary"), timedelta(0)
        ttl = timedelta(seconds=result.rrset.ttl if result.rrset is not None else 300)
        records = sorted(result, key=lambda r: r.preference)
        hosts = tuple(str(r.exchange).rstrip(".").lower() for r in records)
        if hosts in ((), ("",)):
            return MXAnswer(error="nullmx"), ttl
        return MXAnswer(hosts=hosts), ttl
