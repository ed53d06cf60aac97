"""`warmup doctor`'s verdicts: DNS answers in, one :class:`Check` out (pure).

Each check is ``ok``, ``warn`` or ``fail``, with a one-line fix when not ok.
The lookups themselves are made by :mod:`warmup.app.doctor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "STATUSES",
    "Check",
    "CheckStatus",
    "judge_dkim",
    "judge_dmarc",
    "judge_helo",
    "judge_mx",
    "judge_ptr",
    "judge_ptr_forward",
    "judge_spf",
    "parse_tags",
]


class CheckStatus(StrEnum):
    """How one `warmup doctor` check came out (the JSON ``status``)."""

    ok = "ok"
    warn = "warn"
    fail = "fail"


STATUSES = tuple(CheckStatus)


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    ip: str  # "" for a check of a domain alone
    domain: str  # "" for a check of an IP alone
    check: str
    status: CheckStatus
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def parse_tags(text: str) -> dict[str, str]:
    """A DKIM/DMARC tag list (``k=v; k=v``), keys lower-cased, spaces removed
    from values (folded base64)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), "".join(value.split()))
    return tags


def judge_ptr(ip: str, names: tuple[str, ...], error: str | None) -> Check:
    if names:
        return Check(
            ip=ip,
            domain="",
            check="ptr",
            status=CheckStatus.ok,
            detail=", ".join(names),
        )
    why = "the lookup failed" if error == "temporary" else "no PTR record"
    return Check(
        ip=ip,
        domain="",
        check="ptr",
        status=CheckStatus.warn if error == "temporary" else CheckStatus.fail,
        detail=why,
        fix=f"ask whoever runs {ip}'s network to set its PTR to the IP's HELO name",
    )


def judge_ptr_forward(ip: str, name: str | None, addresses: tuple[str, ...]) -> Check:
    if name is None:
        return Check(
            ip=ip,
            domain="",
            check="ptr_forward",
            status=CheckStatus.fail,
            detail="no PTR name to confirm",
            fix=f"set a PTR for {ip}, then an A/AAAA record of that name to {ip}",
        )
    if ip in addresses:
        return Check(
            ip=ip,
            domain=name,
            check="ptr_forward",
            status=CheckStatus.ok,
            detail=f"{name} -> {ip}",
        )
    shown = ", ".join(addresses) or "nothing"
    return Check(
        ip=ip,
        domain=name,
        check="ptr_forward",
        status=CheckStatus.fail,
        detail=f"{name} resolves to {shown}, not {ip}",
        fix=f"add an A/AAAA record {name} -> {ip}",
    )


def judge_helo(
    ip: str, helo: str, ptr_names: tuple[str, ...], addresses: tuple[str, ...]
) -> Check:
    if helo.lower() in ptr_names:
        return Check(
            ip=ip,
            domain=helo,
            check="helo",
            status=CheckStatus.ok,
            detail="HELO is the PTR name",
        )
    if ip in addresses:
        return Check(
            ip=ip,
            domain=helo,
            check="helo",
            status=CheckStatus.ok,
            detail=f"HELO {helo} resolves to {ip}",
        )
    target = ptr_names[0] if ptr_names else "the IP's PTR name"
    return Check(
        ip=ip,
        domain=helo,
        check="helo",
        status=CheckStatus.fail,
        detail=f"HELO {helo} is not the PTR name and resolves to "
        f"{', '.join(addresses) or 'nothing'}",
        fix=f"set ips[].helo to {target} (or point {helo} at {ip})",
    )


def judge_spf(ip: str, domain: str, result: str, detail: str) -> Check:
    if result == "pass":
        return Check(
            ip=ip, domain=domain, check="spf", status=CheckStatus.ok, detail=detail
        )
    mechanism = "ip6" if ":" in ip else "ip4"
    return Check(
        ip=ip,
        domain=domain,
        check="spf",
        status=CheckStatus.warn if result == "temperror" else CheckStatus.fail,
        detail=f"{result}: {detail}",
        fix=f"add {mechanism}:{ip} to the SPF record (TXT) of {domain}",
    )


def judge_dkim(
    domain: str,
    selector: str,
    records: tuple[str, ...],
    expected: tuple[str, str],
) -> Check:
    """``expected`` is the configured key's (k=, p=) pair."""
    name = f"{selector}._domainkey.{domain}"
    kind, public = expected
    publish = f'publish TXT {name} "v=DKIM1; k={kind}; p={public}"'
    keys = [parse_tags(r) for r in records if "p=" in r]
    if not keys:
        return Check(
            ip="", domain=domain, check="dkim", status=CheckStatus.fail,
            detail=f"no DKIM record at {name}", fix=publish,
        )  # fmt: skip
    if any(tags.get("p") == public for tags in keys):
        return Check(
            ip="", domain=domain, check="dkim", status=CheckStatus.ok,
            detail=f"{name} matches the configured {kind} key",
        )  # fmt: skip
    revoked = all(not tags.get("p") for tags in keys)
    return Check(
        ip="",
        domain=domain,
        check="dkim",
        status=CheckStatus.fail,
        detail=f"{name} is revoked (empty p=)"
        if revoked
        else f"{name} publishes another key than dkim.keys configures",
        fix=publish.replace("publish", "replace it with", 1),
    )


def judge_dmarc(domain: str, records: tuple[str, ...]) -> Check:
    found = [parse_tags(r) for r in records if r.lower().startswith("v=dmarc1")]
    example = f"v=DMARC1; p=none; rua=mailto:dmarc@{domain}"
    if len(found) != 1:
        detail = "no DMARC record" if not found else "more than one DMARC record"
        return Check(
            ip="", domain=domain, check="dmarc", status=CheckStatus.fail,
            detail=f"{detail} at _dmarc.{domain}",
            fix=f'publish one TXT _dmarc.{domain} "{example}"',
        )  # fmt: skip
    tags = found[0]
    policy, rua = tags.get("p", ""), tags.get("rua", "")
    detail = f"p={policy or '?'}" + (f", rua={rua}" if rua else ", no rua")
    if policy not in ("none", "quarantine", "reject"):
        return Check(
            ip="", domain=domain, check="dmarc", status=CheckStatus.fail,
            detail=detail, fix=f'set p= in _dmarc.{domain}, e.g. "{example}"',
        )  # fmt: skip
    if not rua:
        return Check(
            ip="", domain=domain, check="dmarc", status=CheckStatus.warn, detail=detail,
            fix=f"add rua=mailto:… to _dmarc.{domain} to get aggregate reports",
        )  # fmt: skip
    return Check(
        ip="", domain=domain, check="dmarc", status=CheckStatus.ok, detail=detail
    )


def judge_mx(
    domain: str,
    hosts: tuple[str, ...],
    reaching: tuple[str, ...],
    ours: tuple[str, ...],
) -> Check:
    """``reaching``: the MX hosts whose addresses are among ``ours`` (the relay's
    listen address and the source IPs)."""
    if not hosts:
        return Check(
            ip="", domain=domain, check="mx", status=CheckStatus.fail,
            detail=f"no MX for the bounce domain {domain}",
            fix=f"publish an MX for {domain} pointing at the host that runs the relay",
        )  # fmt: skip
    if reaching:
        return Check(
            ip="", domain=domain, check="mx", status=CheckStatus.ok,
            detail=f"MX {', '.join(reaching)} reaches this relay",
        )  # fmt: skip
    return Check(
        ip="",
        domain=domain,
        check="mx",
        status=CheckStatus.warn,
        detail=f"MX {', '.join(hosts)} resolves to none of "
        f"{', '.join(ours) or 'our addresses'}",
        fix=f"point {domain}'s MX at this relay, or have that host pass bounces on "
        "(bounces.maildir or `warmup bounces ingest`)",
    )
