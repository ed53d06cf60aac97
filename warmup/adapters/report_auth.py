"""The authentication chart of ``warmup report``: each source IP's DMARC pass
rate per day, from the aggregate reports, against the rate under which its
ramps hold."""

from __future__ import annotations

import plotly.graph_objects as go

from warmup.app.report import Report
from warmup.core.auth.dmarc import AuthDay

__all__ = ["auth_figure"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]


def _hover(item: AuthDay) -> str:
    return (
        f"{item.ip} {item.day.isoformat()}<br>DMARC pass {item.pass_rate:.1%} of "
        f"{item.messages:,}<br>DKIM aligned {item.dkim_aligned:,} · SPF aligned "
        f"{item.spf_aligned:,}"
    )


def auth_figure(report: Report) -> go.Figure:
    """Lines of DMARC pass % per IP per day; the dashed line is the threshold."""
    figure = go.Figure()
    by_ip: dict[str, list[AuthDay]] = {}
    for item in report.auth:
        by_ip.setdefault(item.ip, []).append(item)
    for index, (ip, items) in enumerate(sorted(by_ip.items())):
        figure.add_trace(
            go.Scatter(
                name=ip,
                x=[item.day.isoformat() for item in items],
                y=[round(100 * item.pass_rate, 2) for item in items],
                mode="lines+markers",
                line={"color": _PALETTE[index % len(_PALETTE)], "width": 2},
                hovertext=[_hover(item) for item in items],
                hoverinfo="text",
            )
        )
    days = sorted({item.day for item in report.auth})
    if days:
        threshold = 100 * report.auth_min_pass_rate
        figure.add_trace(
            go.Scatter(
                name=f"hold under {threshold:g} %",
                x=[days[0].isoformat(), days[-1].isoformat()],
                y=[threshold, threshold],
                mode="lines",
                line={"color": "#d62728", "dash": "dash", "width": 1.5},
                hoverinfo="skip",
            )
        )
    figure.update_layout(
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        hovermode="closest",
        font={"size": 12},
        title={"text": "authentication: DMARC pass rate per IP per day"},
        height=360,
        yaxis={"title": "DMARC pass %", "range": [0, 101]},
    )
    return figure
