"""`warmup doctor`: the DNS set-up of each source IP and each signing and bounce
domain, checked before day 1 and any day after (verdicts in core.auth.doctor)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from warmup.app.ports import DNSLookup
from warmup.app.spf import check_host
from warmup.core.auth.doctor import (
    Check,
    CheckStatus,
    judge_dkim,
    judge_dmarc,
    judge_helo,
    judge_mx,
    judge_ptr,
    judge_ptr_forward,
    judge_spf,
)
from warmup.core.settings import SourceIP

__all__ = ["DKIMPublicKey", "DoctorSetup", "diagnose"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DKIMPublicKey:
    """A configured key's public part, as its TXT record must carry it."""

    domain: str
    selector: str
    kind: str  # k=: rsa | ed25519
    public: str  # p=: base64


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorSetup:
    ips: Sequence[SourceIP]
    bounce_domain: str
    keys: Sequence[DKIMPublicKey]
    # Addresses this relay is reached at (for the bounce domain's MX).
    ours: tuple[str, ...]


def _family(ip: str) -> str:
    return "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"


async def _addresses(dns: DNSLookup, name: str, family: str) -> tuple[str, ...]:
    answer = await dns.lookup(name, family)
    return tuple(str(ipaddress.ip_address(r)) for r in answer.records)


async def _ip_checks(
    source: SourceIP, bounce_domain: str, dns: DNSLookup
) -> list[Check]:
    ip = source.address
    family = _family(ip)
    ptr = await dns.lookup(ipaddress.ip_address(ip).reverse_pointer, "PTR")
    checks = [judge_ptr(ip, ptr.records, ptr.error)]
    name = ptr.records[0] if ptr.records else None
    forward = await _addresses(dns, name, family) if name else ()
    checks.append(judge_ptr_forward(ip, name, forward))
    helo = await _addresses(dns, source.helo, family)
    checks.append(judge_helo(ip, source.helo, ptr.records, helo))
    spf = await check_host(ip, bounce_domain, dns)
    checks.append(judge_spf(ip, bounce_domain, spf.result, spf.detail))
    return checks


async def _mx_check(setup: DoctorSetup, dns: DNSLookup) -> Check:
    domain = setup.bounce_domain
    answer = await dns.lookup(domain, "MX")
    hosts = tuple(r.split()[-1] for r in answer.records if r.split()[-1] != ".")
    reaching = []
    for host in hosts:
        found = set(await _addresses(dns, host, "A"))
        found |= set(await _addresses(dns, host, "AAAA"))
        if found & set(setup.ours):
            reaching.append(host)
    return judge_mx(domain, hosts, tuple(reaching), setup.ours)


async def diagnose(setup: DoctorSetup, dns: DNSLookup) -> list[Check]:
    """Every check, per IP first, then per domain."""
    checks: list[Check] = []
    for source in setup.ips:
        checks.extend(await _ip_checks(source, setup.bounce_domain, dns))
    if not setup.keys:
        checks.append(
            Check(
                ip="",
                domain="",
                check="dkim",
                status=CheckStatus.fail,
                detail="no dkim.keys: mail goes out unsigned",
                fix="warmup dkim keygen DOMAIN --selector S, publish it, add dkim.keys",
            )
        )
    for key in setup.keys:
        answer = await dns.lookup(f"{key.selector}._domainkey.{key.domain}", "TXT")
        checks.append(
            judge_dkim(key.domain, key.selector, answer.records, (key.kind, key.public))
        )
    for domain in sorted({key.domain for key in setup.keys}):
        answer = await dns.lookup(f"_dmarc.{domain}", "TXT")
        checks.append(judge_dmarc(domain, answer.records))
    checks.append(await _mx_check(setup, dns))
    return checks
