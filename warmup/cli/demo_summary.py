"""What `warmup demo` reports: the JSON summary, the lane table, plain words."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from typing import Any

from rich.table import Table

from warmup.adapters.db.store import SQLStore
from warmup.app.store_rows import LaneDayRow, LateReportRow

__all__ = ["build_summary", "lane_table", "plain_words"]

_COUNTS = ("planned", "attempted", "delivered", "soft", "hard", "throttle", "block")


async def build_summary(
    store: SQLStore, *, start: date, meta: dict[str, Any]
) -> dict[str, Any]:
    days = [_day(row, start) for row in await store.lane_history()]
    events = [
        {
            "ip": e["ip"],
            "isp": e["isp"],
            "at": e["at"].isoformat(),
            "cause": e["cause"],
            "old_state": e["old_state"],
            "new_state": e["new_state"],
            "detail": e["detail"],
            "reply": e["reply"],
        }
        # Lanes send concurrently: events of one instant are listed by lane,
        # not in the order the lanes happened to record them.
        for e in sorted(
            await store.all_events(), key=lambda e: (e["at"], e["ip"], e["isp"])
        )
    ]
    lanes = [
        {
            "ip": lane.ip,
            "isp": lane.isp,
            "state": lane.state.value,
            "ramp_day": lane.ramp_day,
            "allowance_per_hour": round(rate, 2),
        }
        for _, lane, rate in await store.all_lanes()
    ]
    return {
        **meta,
        "lanes": lanes,
        "days": days,
        "events": events,
        "recipients": await store.count_recipients(),
        "suppressed": await store.count_suppressions(),
        "sent_to_suppressed": await store.sent_to_suppressed(),
        "late_reports": _late_reports(await store.late_report_rows()),
    }


def _late_reports(rows: list[LateReportRow]) -> dict[str, int]:
    """Bounces and complaints mailed back after a 250, by what they did."""
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["outcome"]] += 1
    return dict(sorted(counts.items()))


def _day(row: LaneDayRow, start: date) -> dict[str, Any]:
    fields: Mapping[str, object] = row
    return {
        "ip": row["ip"],
        "isp": row["isp"],
        "day": (row["day"] - start).days + 1,
        "date": row["day"].isoformat(),
        "ramp_day": row["ramp_day"],
        "allowance_per_hour": round(row["allowance_per_hour"], 2),
        **{name: fields[name] for name in _COUNTS},
        "max_per_minute": row["max_per_minute"],
    }


def _per_lane(summary: dict[str, Any]) -> dict[tuple[str, str], dict[str, int]]:
    totals: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: defaultdict(int)
    )
    for day in summary["days"]:
        lane = totals[(day["ip"], day["isp"])]
        for name in _COUNTS:
            lane[name] += day[name]
    for event in summary["events"]:
        if event["new_state"] == "paused" and event["old_state"] != "paused":
            totals[(event["ip"], event["isp"])]["pauses"] += 1
    return totals


def lane_table(summary: dict[str, Any]) -> Table:
    totals = _per_lane(summary)
    table = Table(title="lanes after the simulation")
    for name in (
        "IP",
        "ISP",
        "state",
        "ramp day",
        "allowance/h",
        "sent",
        "delivered",
        "hard",
        "soft",
        "throttles",
        "pauses",
    ):
        table.add_column(
            name, justify="left" if name in ("IP", "ISP", "state") else "right"
        )
    for lane in sorted(summary["lanes"], key=lambda x: (x["isp"], x["ip"])):
        t = totals[(lane["ip"], lane["isp"])]
        table.add_row(
            lane["ip"],
            lane["isp"],
            lane["state"],
            str(lane["ramp_day"]),
            f"{lane['allowance_per_hour']:g}",
            f"{t['attempted']:,}",
            f"{t['delivered']:,}",
            f"{t['hard']:,}",
            f"{t['soft']:,}",
            f"{t['throttle']:,}",
            f"{t['pauses']:,}",
        )
    return table


_LATE_WORDS = {
    "suppressed": "hard bounces (suppressed)",
    "complaint": "complaints (suppressed)",
    "retry": "soft failures (retried)",
    "ignored": "notices without effect",
    "unmatched": "about no send of ours",
}
_PAUSE_CAUSES = {
    "block": "block replies",
    "throttle": "repeated throttles",
    "complaint_rate": "complaint rate over the limit",
}


def _pause_causes(summary: dict[str, Any], isp: str) -> str:
    """What paused an ISP's lanes, e.g. 'repeated throttles x6, block replies x2'."""
    causes: dict[str, int] = defaultdict(int)
    for event in summary["events"]:
        paused = event["new_state"] == "paused" and event["old_state"] != "paused"
        if paused and event["isp"] == isp:
            causes[_PAUSE_CAUSES.get(event["cause"], event["cause"])] += 1
    return ", ".join(f"{cause} x{n}" for cause, n in sorted(causes.items()))


def plain_words(summary: dict[str, Any]) -> list[str]:
    totals = _per_lane(summary)
    sent = sum(t["attempted"] for t in totals.values())
    delivered = sum(t["delivered"] for t in totals.values())
    ips, isps = len({ip for ip, _ in totals}), len({isp for _, isp in totals})
    lines = [
        f"{ips} IPs warmed at {isps} ISPs over {summary['days_simulated']} "
        f"simulated days: {sent:,} attempts, "
        f"{delivered:,} delivered ({delivered / max(sent, 1):.1%})."
    ]
    by_isp: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lane in summary["lanes"]:
        by_isp[lane["isp"]].append(lane)
    for isp, lanes in sorted(by_isp.items()):
        throttles = sum(totals[(lane["ip"], isp)]["throttle"] for lane in lanes)
        pauses = sum(totals[(lane["ip"], isp)]["pauses"] for lane in lanes)
        days = sorted(lane["ramp_day"] for lane in lanes)
        text = f"{isp}: lanes reached ramp day {days[0]}" + (
            f"-{days[-1]}" if days[-1] != days[0] else ""
        )
        if throttles:
            text += (
                f"; {throttles} throttle replies, each answered at once by halving "
                "that lane's rate, then recovering"
            )
        if pauses:
            text += f"; {pauses} pauses ({_pause_causes(summary, isp)})"
        lines.append(text + ".")
    late = summary.get("late_reports") or {}
    if late:
        lines.append(
            "Mailed back after a 250 and read from the bounce mailbox: "
            + ", ".join(
                f"{n:,} {_LATE_WORDS.get(outcome, outcome)}"
                for outcome, n in late.items()
            )
            + "; each counted on the lane that sent the original, like a live reply."
        )
    recipients = summary["recipients"]
    lines.append(
        f"Hard bounces suppressed: {summary['suppressed']:,}; mail sent to an address "
        f"after it was suppressed: {summary['sent_to_suppressed']} (must be 0). "
        f"Recipients: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(recipients.items()))
        + "."
    )
    return lines
