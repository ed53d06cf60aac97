"""The authentication part of ``warmup status``: each IP's DMARC pass rate, from
the aggregate reports ingested (``warmup dmarc ingest``, the bounce domain)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from warmup.core.dmarc import AuthDay, failing_ips
from warmup.core.settings import DMARCSettings

__all__ = ["auth_records", "auth_table"]


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


def auth_table(records: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="authentication (DMARC aggregate reports)")
    table.add_column("ip")
    table.add_column("last day")
    for name in ("messages", "DMARC pass %", "DKIM al. %", "SPF al. %", "all days %"):
        table.add_column(name, justify="right")
    table.add_column("")
    for r in records:
        table.add_row(
            r["ip"],
            r["day"],
            f"{r['messages']:,}",
            f"{r['dmarc_pass_pct']:.1f}",
            f"{r['dkim_aligned_pct']:.1f}",
            f"{r['spf_aligned_pct']:.1f}",
            f"{r['dmarc_pass_pct_total']:.1f}",
            "auth_failing: ramp held" if r["auth_failing"] else "",
            style="bold red" if r["auth_failing"] else None,
        )
    return table
