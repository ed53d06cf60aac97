"""`warmup report` as one self-contained HTML file: plotly charts, plotly.js inlined.

Every chart is a ``div.chart`` with a stable id (``chart-overview``,
``chart-timeline``, ``chart-auth`` once DMARC reports exist,
``chart-lane-<ip>-<isp>``), so a browser test can find what was drawn.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from warmup.adapters.report_auth import auth_figure
from warmup.adapters.report_charts import (
    format_rate,
    lane_figure,
    overview_figure,
    timeline_figure,
)
from warmup.adapters.report_reputation import reputation_section
from warmup.app.report import ISPSummary, Report

__all__ = ["render_html"]

_CONFIG = {"displaylogo": False, "responsive": True}


def _chart(figure: go.Figure, chart_id: str, css: str) -> str:
    div = pio.to_html(
        figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=chart_id,
        config=_CONFIG,
    )
    return f'<div class="chart {css}" data-chart="{chart_id}">{div}</div>'


def _isp_table(isps: Iterable[ISPSummary]) -> str:
    head = (
        "ISP",
        "lanes",
        "states",
        "ramp day",
        "sent / planned",
        "delivered",
        "hard",
        "deferred",
        "throttles",
        "complaints",
        "throttle events",
        "pauses",
        "step backs",
        "needs a look",
        "limits (hard · deferral · complaints)",
    )
    rows = []
    for s in isps:
        low, high = s.ramp_days
        days = f"{low}" if low == high else f"{low}-{high}"
        if low > s.last_ramp_day:
            days = f"{days} (ramp done: {s.last_ramp_day} days)"
        else:
            days = f"{days} of {s.last_ramp_day}"
        limits = {(lim.rate_name, lim.effect): lim.value for lim in s.limits}
        cells = (
            s.isp,
            str(s.lanes),
            ", ".join(f"{n} {state}" for state, n in sorted(s.states.items())),
            days,
            f"{s.counts['attempted']:,} / {s.planned:,}",
            format_rate(s.rate("delivered")),
            format_rate(s.rate("hard")),
            format_rate(s.rate("deferred")),
            f"{s.counts['throttle']:,}",
            format_rate(s.rate("complaints")),
            str(s.throttle_events),
            str(s.pauses),
            str(s.step_backs),
            ", ".join(f"{n} {name}" for name, n in sorted(s.problems.items())),
            f"{limits.get(('hard', 'steps back'), 0):.1%} · "
            f"{limits.get(('deferred', 'blocks the advance'), 0):.1%} · "
            f"{limits.get(('complaints', 'pauses'), 0):.1%}",
        )
        row = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        rows.append(f'<tr data-isp="{html.escape(s.isp)}">{row}</tr>')
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return (
        '<table id="isp-summary" class="summary"><thead><tr>'
        f"{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _headline(report: Report) -> str:
    counts = report.counts
    sent = counts.get("attempted", 0)
    period = (
        f"{report.first_day} to {report.last_day}"
        if report.first_day is not None
        else "no sending days yet"
    )
    events = report.events
    facts = [
        f"{len(report.lanes)} lanes ({len({lane.ip for lane in report.lanes})} IPs x "
        f"{len(report.isps)} ISPs)",
        f"sending days {period} ({report.timezone})",
        f"{sent:,} sent of {report.planned:,} planned",
        f"{counts.get('delivered', 0):,} delivered "
        f"({format_rate(_ratio(counts, 'delivered'))})",
        f"hard bounces {format_rate(_ratio(counts, 'hard'))}",
        f"{sum(e.cause == 'throttle' for e in events)} throttle events",
        f"{sum(e.pauses for e in events)} pauses",
    ]
    items = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
    return f'<ul id="headline" class="headline">{items}</ul>'


def _ratio(counts: Any, name: str) -> float | None:
    sent = counts.get("attempted", 0)
    return counts.get(name, 0) / sent if sent else None


_LANES_NOTE = """<p class="note">Bars: messages sent per day by outcome; line: the
plan (schedule rate &times; window). Markers: throttles, blocks and step-backs. Below:
the day's rates; dashed limits make the lane react, dotted ones stop the ramp from
advancing. Hollow points are days with too few sends for the limits to apply.</p>"""
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
.generated { color: #666; margin-top: 0; }
.headline { display: flex; flex-wrap: wrap; gap: 8px 24px; padding: 0;
  list-style: none; font-size: 15px; }
.headline li { background: #f3f5f8; padding: 6px 10px; border-radius: 4px; }
table.summary { border-collapse: collapse; font-size: 13px; }
table.summary th, table.summary td { border: 1px solid #ddd; padding: 4px 8px;
  text-align: right; }
table.summary th { background: #f3f5f8; }
table.summary td:first-child, table.summary th:first-child { text-align: left; }
.lanes { display: grid; grid-template-columns: 1fr; gap: 16px; max-width: 1400px; }
.chart { border: 1px solid #eee; border-radius: 4px; }
h3 { margin: 24px 0 8px; }
.note { color: #555; max-width: 960px; }
"""


def _lane_sections(report: Report) -> list[str]:
    """Per ISP, a heading and its lanes' charts."""
    parts = []
    for summary in report.isps:
        isp = html.escape(summary.isp)
        parts.append(f'<h3 id="isp-{isp}">{isp}</h3>')
        parts.append(f'<div class="lanes" data-isp="{isp}">')
        parts += [
            _chart(lane_figure(lane), f"chart-lane-{lane.key}", "lane")
            for lane in report.lanes
            if lane.isp == summary.isp
        ]
        parts.append("</div>")
    return parts


def _auth_section(report: Report) -> list[str]:
    """The DMARC pass-rate chart, once aggregate reports were ingested."""
    if not report.auth:
        return []
    return [
        "<h2>Authentication</h2>",
        '<p class="note">DMARC pass rate per sending IP per day, from the '
        "receivers' aggregate reports. Under the dashed line (over at least "
        "dmarc.min_messages messages) the IP's lanes get auth_failing and their "
        "ramps hold.</p>",
        _chart(auth_figure(report), "chart-auth", "auth"),
    ]


def render_html(report: Report, *, title: str = "warmup report") -> str:
    """The whole report as one HTML document (plotly.js inlined: works offline)."""
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="generated">generated {report.generated_at:%Y-%m-%d %H:%M %Z}</p>',
        _headline(report),
        "<h2>Per ISP</h2>",
        _isp_table(report.isps),
        _chart(overview_figure(report), "chart-overview", "overview"),
        *_auth_section(report),
        *reputation_section(report),
        "<h2>Lane events</h2>",
        '<p class="note">Each lane\'s state over time; markers are lane events '
        "(hover for the reply that caused them).</p>",
        _chart(timeline_figure(report), "chart-timeline", "timeline"),
        "<h2>Lanes: plan and actual, rates and limits</h2>",
        _LANES_NOTE,
        *_lane_sections(report),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
