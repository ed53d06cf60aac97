"""How ``warmup status`` reads on a screen or in a pipe: tables that fit the
console's width (80 columns in a pipe unless COLUMNS says otherwise), short forms
in the columns, the long ones (window and pause, last event, owner) in columns
when there is room, else on lines below the table. ``--json`` is elsewhere
(status_cmd) and never changes with the width."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from rich.console import Console, Group, RenderableType

from warmup.app.store_rows import CampaignCounts, HeldRow, LastEvent
from warmup.cli.fit import Column, fit_table, shorten, wrapped
from warmup.cli.status_auth import auth_view
from warmup.cli.status_reputation import reputation_view

__all__ = ["Snapshot", "render", "state_cell", "state_note"]

REPLY_WIDTH = 48
_COUNTS = ("queued", "sending", "delivered", "bounced", "suppressed", "expired")
_STYLES = {"paused": "bold red", "backed_off": "yellow", "high_rates": "magenta"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    lanes: list[dict[str, Any]]
    campaigns: list[CampaignCounts]
    held: list[HeldRow]
    auth: list[dict[str, Any]]
    backlog: dict[str, int]  # outcome events each consumer has still to take
    reputation: list[dict[str, Any]]


def _event_cell(event: LastEvent | None, tz: tzinfo) -> str:
    if event is None:
        return ""
    at: datetime = event["at"]
    parts = [
        event["cause"],
        shorten(event["reply"], REPLY_WIDTH),
        f"{at.astimezone(tz):%m-%d %H:%M}",
    ]
    return " · ".join(part for part in parts if part)


def state_note(record: dict[str, Any], tz: tzinfo, now: datetime) -> str:
    """A closed window and when it opens ("closed, opens 01:00 Asia/Tokyo, in
    5 h"), a pause by whom and until when ("paused by operator until resumed");
    "" for an open, unpaused lane."""
    if record["state"] != "paused":
        opens: datetime | None = record["opens_at"]
        if opens is None:
            return ""
        hours = (opens - now).total_seconds() / 3600
        wait = f", in {hours:.0f} h" if hours >= 1 else ""
        return f"closed, opens {opens.astimezone(tz):%H:%M} {tz}{wait}"
    who = "paused by operator" if record["operator_paused"] else "paused"
    until: datetime | None = record["paused_until"]
    if until is None:
        return f"{who} until resumed" if record["operator_paused"] else who
    return f"{who} until {until.astimezone(tz):%m-%d %H:%M}"


def state_cell(record: dict[str, Any], tz: tzinfo, now: datetime) -> str:
    """The state and its note as one phrase ("ramping, closed, opens …")."""
    note = state_note(record, tz, now)
    if record["state"] == "paused":
        return note
    return f"{record['state']}, {note}" if note else str(record["state"])


def _owner_cell(owner: dict[str, Any] | None) -> str:
    if owner is None:
        return "-"
    process = str(owner["process"])
    return process if owner["alive"] else f"{process} (lapsed)"


def _owner_column(records: list[dict[str, Any]]) -> Column | None:
    """The owner, only when the lanes are spread over more than one node or an
    owner's heartbeat lapsed (else it says nothing a reader needs)."""
    owners = [r["owner"] for r in records if r["owner"] is not None]
    nodes = {owner["node"] for owner in owners}
    if len(nodes) <= 1 and all(owner["alive"] for owner in owners):
        return None
    cells = [_owner_cell(r["owner"]) for r in records]
    return Column(header="owner", cells=cells, keep=3, label="owner")


def _lane_columns(
    records: list[dict[str, Any]], tz: tzinfo, now: datetime
) -> list[Column]:
    def cells(fmt: Any) -> list[str]:
        return [fmt(r) for r in records]

    owner = _owner_column(records)
    return [
        Column(header="ip", cells=cells(lambda r: r["ip"]), in_key=True),
        *([owner] if owner else []),
        Column(header="isp", cells=cells(lambda r: r["isp"]), in_key=True),
        Column(
            header="state",
            cells=cells(lambda r: r["state"]),
        ),
        Column(
            header="day",
            cells=cells(
                lambda r: (
                    f"{r['ramp_day']}/{r['last_ramp_day']}"
                    + ("*" if r["idle_reset"] else "")
                )
            ),
        ),
        Column(
            header="rate/h",
            cells=cells(
                lambda r: f"{r['allowance_per_hour']:g}/{r['schedule_per_hour']}"
            ),
            justify="right",
            keep=2,
            label="rate/h",
        ),
        Column(
            header="sent/plan",
            cells=cells(lambda r: f"{r['sent']}/{r['planned']}"),
            justify="right",
        ),
        Column(
            header="deliv%",
            cells=cells(lambda r: f"{r['delivered_pct']:.1f}"),
            justify="right",
        ),
        Column(
            header="hard%",
            cells=cells(lambda r: f"{r['hard_pct']:.1f}"),
            justify="right",
        ),
        Column(
            header="defer%",
            cells=cells(lambda r: f"{r['deferred_pct']:.1f}"),
            justify="right",
        ),
        Column(
            header="compl", cells=cells(lambda r: str(r["complaints"])), justify="right"
        ),
        Column(
            header="window / pause",
            cells=cells(lambda r: state_note(r, tz, now)),
            keep=4,
        ),
        Column(
            header="last event",
            cells=cells(lambda r: _event_cell(r["last_event"], tz)),
            keep=1,
            label="last event",
        ),
    ]


def _lanes_view(
    console: Console, records: list[dict[str, Any]], tz: tzinfo, now: datetime
) -> list[RenderableType]:
    parts = fit_table(
        console,
        title=f"lanes ({len(records)})",
        keys=[f"{r['ip']} {r['isp']}" for r in records],
        columns=_lane_columns(records, tz, now),
        styles=[_STYLES.get(r["problem"] or "") for r in records],
    )
    if any(r["idle_reset"] for r in records):
        parts.extend(
            wrapped(
                "day*: idle past idle_reset, the lane restarts at ramp day 1",
                console.width,
            )
        )
    return parts


def _count(campaign: CampaignCounts, name: str) -> object:
    fields: Mapping[str, object] = campaign
    return fields[name]


def _campaigns_view(
    console: Console, campaigns: list[CampaignCounts]
) -> list[RenderableType]:
    names = [c["name"] for c in campaigns]
    columns = [Column(header="name", cells=names, in_key=True)]
    columns.append(
        Column(
            header="pending",
            cells=[f"{c['pending']:,}" for c in campaigns],
            justify="right",
            keep=1,
            label="pending",
        )
    )
    columns.extend(
        Column(
            header=name,
            cells=[f"{_count(c, name):,}" for c in campaigns],
            justify="right",
        )
        for name in _COUNTS
    )
    return fit_table(
        console,
        title="campaigns",
        keys=names,
        columns=columns,
    )


def _held_view(console: Console, held: list[HeldRow]) -> list[RenderableType]:
    lines: list[RenderableType] = list(wrapped("held back (not sent):", console.width))
    for item in held:
        text = (
            f"{item['campaign']}: {item['recipients']:,} recipients, {item['reason']}"
        )
        lines.extend(wrapped(text, console.width, "  "))
    return lines


def render(snapshot: Snapshot, console: Console, tz: tzinfo, now: datetime) -> Group:
    """Everything ``status`` prints, fitted to ``console``'s width."""
    parts: list[RenderableType] = [
        *_lanes_view(console, snapshot.lanes, tz, now),
        *_campaigns_view(console, snapshot.campaigns),
    ]
    if snapshot.held:
        parts.extend(_held_view(console, snapshot.held))
    if snapshot.auth:
        parts.extend(auth_view(console, snapshot.auth))
    for name, count in snapshot.backlog.items():
        text = f"outcome events waiting for {name}: {count:,}"
        parts.extend(wrapped(text, console.width))
    if snapshot.reputation:
        parts.extend(reputation_view(console, snapshot.reputation))
    return Group(*parts)
