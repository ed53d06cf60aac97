"""The authentication part of ``warmup status``: each IP's DMARC pass rate, from
the aggregate reports ingested (``warmup dmarc ingest``, the bounce domain)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, RenderableType

from warmup.cli.fit import Column, fit_table
from warmup.core.auth.dmarc import AuthDay, failing_ips
from warmup.core.settings import DMARCSettings

__all__ = ["auth_records", "auth_view"]


def _pct(count: int, total: int) -> float:
    return round(100.0 * count / total, 2) if total else 0.0


def auth_records(days: Sequence[AuthDay], rules: DMARCSettings) -> list[dict[str, Any]]:
    """Per IP: its latest reported day and the whole span read, as JSON objects."""
    failing = failing_ips(
        days, min_messages=rules.min_messages, min_pass_rate=rules.min_pass_rate
    )
    by_ip: dict[str, list[AuthDay]] = {}
    for item in days:
        by_ip.setdefault(item.ip, []).append(item)
    records = []
    for ip, items in sorted(by_ip.items()):
        last = max(items, key=lambda item: item.day)
        total = sum(item.messages for item in items)
        records.append(
            {
                "ip": ip,
                "day": last.day.isoformat(),
                "messages": last.messages,
                "dmarc_pass_pct": _pct(last.dmarc_pass, last.messages),
                "dkim_aligned_pct": _pct(last.dkim_aligned, last.messages),
                "spf_aligned_pct": _pct(last.spf_aligned, last.messages),
                "days": len(items),
                "messages_total": total,
                "dmarc_pass_pct_total": _pct(
                    sum(item.dmarc_pass for item in items), total
                ),
                "auth_failing": failing.get(ip) is not None,
            }
        )
    return records


def auth_view(
    console: Console, records: Sequence[dict[str, Any]]
) -> list[RenderableType]:
    """The table, fitted to the console (warmup.cli.fit)."""

    def cells(fmt: Any) -> list[str]:
        return [fmt(r) for r in records]

    def pct(key: str) -> list[str]:
        return cells(lambda r: f"{r[key]:.1f}")

    columns = [
        Column(header="ip", cells=cells(lambda r: r["ip"]), in_key=True),
        Column(header="last day", cells=cells(lambda r: r["day"])),
        Column(
            header="messages",
            cells=cells(lambda r: f"{r['messages']:,}"),
            justify="right",
        ),
        Column(header="DMARC%", cells=pct("dmarc_pass_pct"), justify="right"),
        Column(
            header="DKIM al%",
            cells=pct("dkim_aligned_pct"),
            justify="right",
            keep=1,
            label="DKIM aligned %",
        ),
        Column(
            header="SPF al%",
            cells=pct("spf_aligned_pct"),
            justify="right",
            keep=1,
            label="SPF aligned %",
        ),
        Column(
            header="all days%",
            cells=pct("dmarc_pass_pct_total"),
            justify="right",
            keep=2,
            label="DMARC pass % all days",
        ),
        Column(
            header="ramp",
            cells=cells(lambda r: "held" if r["auth_failing"] else ""),
            label="auth_failing: ramp",
        ),
    ]
    return fit_table(
        console,
        title="authentication (DMARC aggregate reports)",
        keys=cells(lambda r: r["ip"]),
        columns=columns,
        styles=cells(lambda r: "bold red" if r["auth_failing"] else None),
    )
