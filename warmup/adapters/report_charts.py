"""The plotly figures of `warmup report`: per lane (plan and actual, rates and
limits), per ISP (sends against the plan) and the lane-state timeline.

Trace names are stable ("planned", "sent: delivered", "hard %", "event: throttle",
…): the browser test looks for them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from warmup.app.report import (
    EventRow,
    LaneReport,
    Limit,
    Report,
    report_end,
    state_spans,
)

__all__ = [
    "COLORS",
    "EVENT_MARKS",
    "STATE_COLORS",
    "format_rate",
    "lane_figure",
    "overview_figure",
    "timeline_figure",
]

COLORS = {
    "planned": "#1f3b73",
    "delivered": "#2ca02c",
    "deferred": "#ff9f1c",
    "bounced": "#d62728",
    "hard": "#d62728",
    "soft": "#ffbf69",
    "throttle": "#e4572e",
    "complaints": "#7b2cbf",
}
STATE_COLORS = {
    "ramping": "#9ecae1",
    "warmed": "#74c476",
    "backed_off": "#fd8d3c",
    "paused": "#de2d26",
}
# Lane events drawn as markers: cause -> (legend name, symbol, color, size).
EVENT_MARKS = {
    "throttle": ("throttle", "triangle-down", "#e4572e", 11),
    "block": ("block", "x", "#8b0000", 11),
    "complaint_rate": ("complaint pause", "x", "#7b2cbf", 11),
    "step_back": ("step back", "triangle-down-open", "#7b2cbf", 11),
    "idle_reset": ("idle reset", "square-open", "#555555", 9),
    "unreachable": ("ISP unreachable (hold)", "hourglass", "#636363", 9),
    "resume": ("resume", "circle-open", "#2171b5", 8),
    "recovering": ("recovering", "triangle-up-open", "#6baed6", 7),
    "recovered": ("recovered", "triangle-up", "#2171b5", 8),
    "repeat": ("repeat day", "circle-open", "#888888", 7),
    "advance": ("advance", "circle", "#bbbbbb", 5),
}
# On the lane charts only the backoffs are marked.
LANE_MARKS = ("throttle", "block", "complaint_rate", "step_back")
_RATE_LABELS = {"hard": "hard", "deferred": "deferral", "complaints": "complaint"}
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 60, "b": 40},
    "hovermode": "closest",
    "font": {"size": 12},
}


def format_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _day_start(day: date, tz: Any) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _short(text: str, width: int = 140) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _event_text(event: EventRow) -> str:
    parts = [
        f"{event.at:%Y-%m-%d %H:%M} {event.ip} {event.isp}",
        f"{event.cause}: {event.old_state} → {event.new_state}",
    ]
    if event.detail:
        parts.append(html.escape(_short(event.detail)))
    if event.reply:
        parts.append(html.escape(_short(event.reply)))
    return "<br>".join(parts)


# -- per lane -------------------------------------------------------------------


def _send_traces(lane: LaneReport) -> list[go.BaseTraceType]:
    x = [d.day.isoformat() for d in lane.days]
    hover = [
        f"{d.day} · ramp day {d.ramp_day} · {d.per_hour:g}/h<br>"
        f"planned {d.planned} · sent {d.counts['attempted']}<br>"
        f"delivered {d.counts['delivered']} · deferred {d.deferred} · "
        f"bounced {d.counts['hard'] + d.counts['block']}"
        for d in lane.days
    ]
    bars = {
        "delivered": [d.counts["delivered"] for d in lane.days],
        "deferred": [d.deferred for d in lane.days],
        "bounced": [d.counts["hard"] + d.counts["block"] for d in lane.days],
    }
    traces: list[go.BaseTraceType] = [
        go.Bar(
            name=f"sent: {name}",
            x=x,
            y=values,
            marker_color=COLORS[name],
            hovertext=hover,
            hoverinfo="text",
            legendgroup="sends",
        )
        for name, values in bars.items()
    ]
    traces.append(
        go.Scatter(
            name="planned",
            x=x,
            y=[d.planned for d in lane.days],
            mode="lines+markers",
            line={"shape": "hvh", "color": COLORS["planned"], "width": 2},
            marker={"size": 4},
            hovertext=hover,
            hoverinfo="text",
            legendgroup="sends",
        )
    )
    return traces + _event_marks(lane)


def _event_marks(lane: LaneReport) -> list[go.BaseTraceType]:
    """Backoffs on the send chart, at the height of that day's plan."""
    planned = {d.day: max(d.planned, d.counts["attempted"]) for d in lane.days}
    traces = []
    for cause in LANE_MARKS:
        events = [e for e in lane.events if e.cause == cause]
        if not events:
            continue
        name, symbol, color, size = EVENT_MARKS[cause]
        traces.append(
            go.Scatter(
                name=f"event: {name}",
                x=[e.at.isoformat() for e in events],
                y=[planned.get(e.at.date(), 0) * 1.08 + 0.5 for e in events],
                mode="markers",
                marker={"symbol": symbol, "color": color, "size": size + 2},
                hovertext=[_event_text(e) for e in events],
                hoverinfo="text",
                legendgroup="events",
            )
        )
    return traces


def _rate_traces(lane: LaneReport) -> list[go.BaseTraceType]:
    x = [d.day.isoformat() for d in lane.days]
    judged = [d.counts["attempted"] >= lane.min_sample for d in lane.days]
    hover = [
        f"{d.day}: {d.counts['attempted']} sent"
        + ("" if ok else f" (under {lane.min_sample}: limits not applied)")
        for d, ok in zip(lane.days, judged, strict=True)
    ]
    traces: list[go.BaseTraceType] = []
    for name, stack in (
        ("soft", "deferred"),
        ("throttle", "deferred"),
        ("hard", None),
        ("complaints", None),
    ):
        values = [_asformat_rate(d.rate(name)) for d in lane.days]
        traces.append(
            go.Scatter(
                name=f"{name} %",
                x=x,
                y=values,
                mode="lines+markers",
                stackgroup=stack,
                line={"color": COLORS[name], "width": 2},
                marker={
                    "color": COLORS[name],
                    "symbol": ["circle" if ok else "circle-open" for ok in judged],
                },
                hovertext=[
                    f"{name} {format_rate(d.rate(name))}<br>{h}"
                    for d, h in zip(lane.days, hover, strict=True)
                ],
                hoverinfo="text",
                legendgroup="rates",
            )
        )
    return traces + _limit_traces(lane.limits, lane.days[0].day, lane.days[-1].day)


def _asformat_rate(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 3)


def _limit_traces(limits: Sequence[Limit], first: date, last: date) -> list[Any]:
    x = [
        (first - timedelta(hours=12)).isoformat(),
        f"{last.isoformat()}T12:00:00",
    ]
    traces = []
    for limit in limits:
        color = COLORS["deferred" if limit.rate_name == "deferred" else limit.rate_name]
        dash = "dot" if limit.effect == "blocks the advance" else "dash"
        label = (
            f"{_RATE_LABELS[limit.rate_name]} limit {limit.value:.1%}: {limit.effect}"
        )
        traces.append(
            go.Scatter(
                name=label,
                x=x,
                y=[limit.value * 100] * 2,
                mode="lines",
                line={"color": color, "dash": dash, "width": 1.5},
                hoverinfo="name",
                legendgroup="limits",
            )
        )
    return traces


def _day_ticks(days: int) -> dict[str, Any]:
    """Date ticks; one per day on a short range (plotly would show hours)."""
    ticks: dict[str, Any] = {"tickformat": "%b %d"}
    if days <= 14:
        ticks["dtick"] = 24 * 3600 * 1000  # milliseconds
    return ticks


def _ramp_position(ramp_day: int, last: int) -> str:
    if ramp_day > last:
        return f"ramp done ({last} days)"
    return f"ramp day {ramp_day} of {last}"


def _lane_title(lane: LaneReport) -> str:
    state = lane.state.replace("_", " ")
    position = _ramp_position(lane.ramp_day, lane.last_ramp_day)
    return (
        f"<b>{lane.ip} · {lane.isp}</b> — {state}, {position}, "
        f"{lane.allowance_per_hour:g}/h now"
    )


def lane_figure(lane: LaneReport) -> go.Figure:
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.6, 0.4],
        vertical_spacing=0.1,
        subplot_titles=("sends per day: plan and actual", "rates per day and limits"),
    )
    for trace in _send_traces(lane):
        figure.add_trace(trace, row=1, col=1)
    if lane.days:
        for trace in _rate_traces(lane):
            figure.add_trace(trace, row=2, col=1)
    figure.update_layout(
        **(_LAYOUT | {"margin": {"l": 60, "r": 20, "t": 90, "b": 40}}),
        title={"text": _lane_title(lane), "x": 0.01, "xanchor": "left"},
        barmode="stack",
        height=600,
        legend={"groupclick": "toggleitem", "font": {"size": 11}},
    )
    figure.update_xaxes(**_day_ticks(len(lane.days)))
    figure.update_yaxes(title_text="messages", row=1, col=1, rangemode="tozero")
    figure.update_yaxes(title_text="% of sent", row=2, col=1, rangemode="tozero")
    return figure


# -- the whole report -------------------------------------------------------------


def _isp_days(report: Report, isp: str) -> dict[date, tuple[int, int]]:
    """Per day, the ISP's lanes' sends and plan, summed."""
    totals: dict[date, tuple[int, int]] = {}
    for lane in report.lanes:
        if lane.isp == isp:
            for d in lane.days:
                sent, planned = totals.get(d.day, (0, 0))
                totals[d.day] = (sent + d.counts["attempted"], planned + d.planned)
    return dict(sorted(totals.items()))


def overview_figure(report: Report) -> go.Figure:
    """Per ISP: all its lanes' sends per day against their plan."""
    figure = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    for index, summary in enumerate(report.isps):
        color = palette[index % len(palette)]
        totals = _isp_days(report, summary.isp)
        x = [d.isoformat() for d in totals]
        figure.add_trace(
            go.Scatter(
                name=f"{summary.isp} sent",
                x=x,
                y=[sent for sent, _ in totals.values()],
                mode="lines+markers",
                line={"color": color, "width": 2},
                legendgroup=summary.isp,
            )
        )
        figure.add_trace(
            go.Scatter(
                name=f"{summary.isp} planned",
                x=x,
                y=[planned for _, planned in totals.values()],
                mode="lines",
                line={"color": color, "dash": "dash", "shape": "hvh", "width": 1.5},
                legendgroup=summary.isp,
            )
        )
    figure.update_layout(
        **_LAYOUT,
        title={"text": "sends per day per ISP (all IPs), against the plan"},
        height=420,
        yaxis_title="messages",
    )
    if report.first_day is not None and report.last_day is not None:
        span = (report.last_day - report.first_day).days + 1
        figure.update_xaxes(**_day_ticks(span))
    return figure


def timeline_figure(report: Report) -> go.Figure:
    """Every lane's state over time (bars), with its events (markers)."""
    tz = report.generated_at.tzinfo
    end = report_end(report)
    start = _day_start(report.first_day, tz) if report.first_day is not None else end
    label = {(lane.ip, lane.isp): f"{lane.isp} · {lane.ip}" for lane in report.lanes}
    figure = go.Figure()
    for state, color in STATE_COLORS.items():
        xs: list[str | None] = []
        ys: list[str | None] = []
        for lane in report.lanes:
            for span in state_spans(lane, start=start, end=end):
                if span.state == state:
                    name = label[(lane.ip, lane.isp)]
                    xs += [span.start.isoformat(), span.end.isoformat(), None]
                    ys += [name, name, None]
        figure.add_trace(
            go.Scatter(
                name=f"state: {state.replace('_', ' ')}",
                x=xs,
                y=ys,
                mode="lines",
                line={"color": color, "width": 14},
                hoverinfo="name",
                legendgroup="states",
            )
        )
    for cause, (name, symbol, color, size) in EVENT_MARKS.items():
        events = [e for e in report.events if e.cause == cause]
        if events:
            figure.add_trace(_timeline_marks(events, label, name, symbol, color, size))
    figure.update_layout(
        **_LAYOUT,
        title={"text": "lane states and events over time"},
        height=max(320, 140 + 34 * len(report.lanes)),
        yaxis={"autorange": "reversed", "type": "category"},
    )
    return figure


def _timeline_marks(
    events: Sequence[EventRow],
    label: dict[tuple[str, str], str],
    name: str,
    symbol: str,
    color: str,
    size: int,
) -> go.Scatter:
    return go.Scatter(
        name=f"event: {name}",
        x=[e.at.isoformat() for e in events],
        y=[label.get((e.ip, e.isp), f"{e.isp} · {e.ip}") for e in events],
        mode="markers",
        marker={
            "symbol": symbol,
            "color": color,
            "size": size,
            "line": {"width": 1, "color": color},
        },
        hovertext=[_event_text(e) for e in events],
        hoverinfo="text",
        legendgroup="events",
    )
