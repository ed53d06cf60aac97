"""`warmup status` at 80 columns: no line longer than the console, nothing cut
mid-word; what does not fit in the table is said below it."""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from warmup.app.store_rows import LastEvent
from warmup.cli.fit import Column, fit_table, shorten
from warmup.cli.status_cmd import lane_record
from warmup.cli.status_view import Snapshot, render
from warmup.core.lanes.lane import DayStats, Lane
from warmup.core.lanes.schedule import RampStep, Schedule, Window
from warmup.core.model import LaneState

TZ = ZoneInfo("Asia/Tokyo")
NOW = datetime(2030, 1, 1, 11, tzinfo=UTC)  # 20:00 in Tokyo: the window is shut
SCHEDULE = Schedule(
    isp="microsoft",
    window=Window(start=time(1), end=time(5)),
    steps=(RampStep(first_day=1, last_day=30, per_hour=12000),),
)
REPLY = (
    "421 4.7.28 Our system has detected an unusual rate of unsolicited mail "
    "originating from your IP address. To protect our users from spam, mail "
    "sent from your IP address has been temporarily rate limited."
)


def _lanes() -> list[dict[str, Any]]:
    stats = DayStats(attempted=123456, delivered=120000, soft=2000, hard=1456)
    lanes = [
        Lane(ip="203.0.113.254", isp="microsoft", ramp_day=29, stats=stats),
        Lane(
            ip="203.0.113.253",
            isp="microsoft",
            state=LaneState.paused,
            operator=True,
            paused_until=NOW + timedelta(days=2),
            stats=stats,
        ),
        Lane(ip="203.0.113.252", isp="gmail", state=LaneState.backed_off, factor=0.25),
    ]
    event: LastEvent = {
        "at": NOW,
        "cause": "throttle",
        "reply": REPLY,
        "old_state": None,
        "new_state": None,
        "detail": None,
    }
    records = [
        lane_record(lane, 3000.0, SCHEDULE, event, now=NOW, tz=TZ) for lane in lanes
    ]
    owners = [("mx-frankfurt-01", True), ("mx-amsterdam-02", True), ("old", False)]
    for record, (node, alive) in zip(records, owners, strict=True):
        record["owner"] = {
            "process": f"{node}:123456",
            "node": node,
            "machine": node,
            "alive": alive,
        }
    return records


def _snapshot() -> Snapshot:
    return Snapshot(
        lanes=_lanes(),
        campaigns=[
            {
                "name": "spring-newsletter-2030-customers",
                "pending": 1246912,
                "queued": 1234567,
                "sending": 12345,
                "delivered": 9876543,
                "bounced": 123456,
                "suppressed": 12345,
                "expired": 1234,
                "cancelled": 0,
                "total": 11357336,
            }
        ],
        held=[
            {
                "campaign": "spring-newsletter-2030-customers",
                "recipients": 1234,
                "reason": "no DKIM key for its From domain news.example.com "
                "(dkim.unsigned: hold)",
            }
        ],
        auth=[
            {
                "ip": "203.0.113.254",
                "day": "2029-12-31",
                "messages": 123456,
                "dmarc_pass_pct": 97.5,
                "dkim_aligned_pct": 99.1,
                "spf_aligned_pct": 98.2,
                "dmarc_pass_pct_total": 97.9,
                "auth_failing": True,
            }
        ],
        backlog={"webhook:https://hooks.example.com/warmup/events/receiver": 123456},
        reputation=[],
    )


def _printed(width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, soft_wrap=True)
    console.print(render(_snapshot(), console, TZ, NOW))
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 60])
def test_no_line_is_longer_than_the_console(width: int) -> None:
    text = _printed(width)
    assert max(len(line) for line in text.splitlines()) <= width
    flat = " ".join(text.split())
    # Nothing is lost: what left the table is on the lines below it.
    assert "mx-amsterdam-02:123456" in flat
    assert "old:123456 (lapsed)" in flat
    assert "by operator until 01-03 20:00" in flat
    assert "closed, opens 01:00 Asia/Tokyo, in 5 h" in flat
    assert "throttle · 421 4.7.28 Our system has detected an unusual" in flat
    assert "hooks.example.com/warmup/events/receiver: 123,456" in flat
    assert "no DKIM key for its From domain news.example.com" in flat
    assert "1,234,567" in flat and "spring-newsletter-2030-customers" in flat


def test_at_80_columns_the_lane_table_keeps_its_figures_in_columns() -> None:
    lines = _printed(80).splitlines()
    assert lines[1].split() == [
        *("ip", "isp", "state", "day", "sent/plan"),
        *("deliv%", "hard%", "defer%", "compl"),
    ]
    assert lines[3].split() == [
        *("203.0.113.254", "microsoft", "ramping", "29/30", "123456/48000"),
        *("97.2", "1.2", "1.6", "0"),
    ]
    # The owner, the rate, the window and the last event: below the table.
    assert lines[6].startswith("  203.0.113.254 microsoft: owner mx-frankfurt-01")


def test_a_wide_console_shows_everything_in_the_table() -> None:
    lines = _printed(250).splitlines()
    rows = [line for line in lines if "203.0.113." in line and "throttle" in line]
    assert len(rows) == 3  # no line below the table repeats a lane
    assert all("throttle · 421 4.7.28" in row for row in rows)


def test_a_reply_is_shortened_between_words() -> None:
    short = shorten(REPLY, 48)
    assert len(short) <= 48 and short.endswith("…")
    assert REPLY.startswith(short[:-1])
    assert REPLY[len(short) - 1] == " "  # the cut falls between two words
    assert shorten("a  b\n c", 48) == "a b c"


def test_when_nothing_fits_every_row_becomes_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, width=30, force_terminal=False, soft_wrap=True)
    columns = [
        Column(header="name", cells=["a-rather-long-name"], in_key=True),
        Column(header="count", cells=["123,456,789"], justify="right"),
        Column(header="other", cells=["123,456,789"], justify="right"),
    ]
    for part in fit_table(
        console, title="t", keys=["a-rather-long-name"], columns=columns
    ):
        console.print(part)
    lines = out.getvalue().splitlines()
    assert lines == [
        "t",
        "  a-rather-long-name: count",
        "    123,456,789; other",
        "    123,456,789",
    ]
