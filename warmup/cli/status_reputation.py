"""The reputation part of ``warmup status`` and ``warmup reputation fetch``: the
ISPs' own figures (latest day per domain and per IP) and what they decide."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, RenderableType

from warmup.cli.fit import Column, fit_table
from warmup.core.lanes.reputation import (
    PostmasterDay,
    ReputationAction,
    SNDSRow,
    decide_reputation,
)

__all__ = ["postmaster_record", "reputation_records", "reputation_view", "snds_record"]


def _pct(rate: float | None) -> float | None:
    return None if rate is None else round(100.0 * rate, 3)


def _action(actions: set[ReputationAction]) -> str | None:
    for action in (ReputationAction.pause, ReputationAction.hold):
        if action in actions:
            return action.value
    return None


def postmaster_record(day: PostmasterDay, ips: Sequence[str]) -> dict[str, Any]:
    decisions = decide_reputation(postmaster=[day], ips_of_domain={day.domain: ips})
    return {
        "source": "postmaster",
        "domain": day.domain,
        "ip": None,
        "day": day.day.isoformat(),
        "spam_rate_pct": _pct(day.spam_rate),
        "domain_reputation": day.domain_reputation,
        "ip_reputation": dict(sorted((day.ip_reputation or {}).items())),
        "spf_pct": _pct(day.spf_rate),
        "dkim_pct": _pct(day.dkim_rate),
        "dmarc_pct": _pct(day.dmarc_rate),
        "filter_result": None,
        "complaint_rate_pct": None,
        "trap_hits": None,
        "action": _action({d.action for d in decisions}),
        "causes": sorted({d.cause for d in decisions}),
    }


def snds_record(row: SNDSRow) -> dict[str, Any]:
    decisions = decide_reputation(snds=[row], ips_of_domain={})
    return {
        "source": "snds",
        "domain": None,
        "ip": row.ip,
        "day": None if row.day is None else row.day.isoformat(),
        "spam_rate_pct": None,
        "domain_reputation": None,
        "ip_reputation": {},
        "spf_pct": None,
        "dkim_pct": None,
        "dmarc_pct": None,
        "filter_result": row.filter_result,
        "complaint_rate_pct": _pct(row.complaint_rate),
        "trap_hits": row.trap_hits,
        "action": _action({d.action for d in decisions}),
        "causes": sorted({d.cause for d in decisions}),
    }


def reputation_records(
    postmaster: Sequence[PostmasterDay], snds: Sequence[SNDSRow], ips: Sequence[str]
) -> list[dict[str, Any]]:
    """One JSON object per figure, Postmaster domains first."""
    return [postmaster_record(day, ips) for day in postmaster] + [
        snds_record(row) for row in snds
    ]


def _figures(r: dict[str, Any]) -> str:
    if r["source"] == "postmaster":
        parts = [
            f"spam {r['spam_rate_pct']}%" if r["spam_rate_pct"] is not None else "",
            f"domain {r['domain_reputation']}" if r["domain_reputation"] else "",
            *(f"{ip} {cat}" for ip, cat in r["ip_reputation"].items()),
            *(
                f"{key.removesuffix('_pct').upper()} {r[key]}%"
                for key in ("spf_pct", "dkim_pct", "dmarc_pct")
                if r[key] is not None
            ),
        ]
    else:
        complaints = r["complaint_rate_pct"]
        parts = [
            r["filter_result"] or "",
            f"complaints {complaints}%" if complaints is not None else "",
            f"trap hits {r['trap_hits']}" if r["trap_hits"] is not None else "",
        ]
    return ", ".join(part for part in parts if part)


_STYLES = {"pause": "bold red", "hold": "yellow"}


def reputation_view(
    console: Console, records: Sequence[dict[str, Any]]
) -> list[RenderableType]:
    """Source, what and day in the table; the figures in a column when there is
    room, else below it (warmup.cli.fit)."""
    ramp = {"pause": "paused", "hold": "held"}
    columns = [
        Column(header="source", cells=[r["source"] for r in records], in_key=True),
        Column(
            header="domain / ip",
            cells=[r["domain"] or r["ip"] for r in records],
            in_key=True,
        ),
        Column(header="day", cells=[r["day"] or "?" for r in records]),
        Column(header="ramp", cells=[ramp.get(r["action"] or "", "") for r in records]),
        Column(header="figures", cells=[_figures(r) for r in records], keep=1),
    ]
    return fit_table(
        console,
        title="reputation (Google Postmaster Tools, Microsoft SNDS)",
        keys=[f"{r['source']} {r['domain'] or r['ip']}" for r in records],
        columns=columns,
        styles=[_STYLES.get(r["action"] or "") for r in records],
    )
