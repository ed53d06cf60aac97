"""The ramp's side of the ISPs' reputation data (app/reputation.py): figures
stored and revised, the latest within the lookback decides, a pause once per
figure, holds that come and go."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from warmup.adapters.db.store import SQLStore
from warmup.app.lanes import LaneRuntime
from warmup.app.reputation import REPUTATION_PAUSE, apply_reputation, latest_figures
from warmup.core.attempt import TickRecord
from warmup.core.lanes.lane import Lane
from warmup.core.lanes.reputation import PostmasterDay, SNDSRow
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.model import LaneState
from warmup.core.settings import PostmasterSettings, ReputationSettings, SourceIP

NOW = datetime(2030, 3, 2, 8, tzinfo=UTC)
D1 = date(2030, 3, 1)
IP = "127.0.0.2"
SETTINGS = ReputationSettings(
    google_postmaster=PostmasterSettings(credentials_file="t", domains=("shop.test",))
)
SCHEDULE = Schedule(isp="x", steps=(RampStep(first_day=1, last_day=9, per_hour=60),))


def _runtime(isp: str, lane: Lane | None = None) -> LaneRuntime:
    return LaneRuntime(
        id=1 if isp == "gmail" else 2,
        lane=lane or Lane(ip=IP, isp=isp),
        schedule=SCHEDULE,
        source=SourceIP(address=IP, helo="a.test"),
        tz=UTC,
    )


def _pm(day: date, rate: float, domain: str = "shop.test") -> PostmasterDay:
    return PostmasterDay(domain=domain, day=day, spam_rate=rate, ip_reputation={})


def _snds(day: date | None, result: str, ip: str = IP) -> SNDSRow:
    return SNDSRow(
        ip=ip, day=day, filter_result=result, complaint_rate=None, trap_hits=None
    )


async def _apply(
    store: SQLStore, runtimes: list[LaneRuntime], now: datetime = NOW
) -> TickRecord:
    record = TickRecord(claimer="t")
    await apply_reputation(
        store, runtimes, ips=[IP], settings=SETTINGS, now=now, record=record
    )
    return record


async def test_figures_are_stored_revised_and_read_back(store: SQLStore) -> None:
    day = PostmasterDay(
        domain="shop.test",
        day=D1,
        spam_rate=0.002,
        domain_reputation="MEDIUM",
        ip_reputation={IP: "LOW", "10.0.0.1": "HIGH"},
        spf_rate=1.0,
        dkim_rate=0.98,
        dmarc_rate=0.97,
    )
    assert await store.save_reputation(
        [day], [_snds(D1, "RED"), _snds(None, "RED")], NOW
    )
    # A later fetch of the same day replaces its figures (Google revises them).
    await store.save_reputation([_pm(D1, 0.0005)], [_snds(D1, "GREEN")], NOW)
    postmaster, snds = await store.reputation_days()
    assert [(d.day, d.spam_rate, d.domain_reputation) for d in postmaster] == [
        (D1, 0.0005, None)
    ]
    assert [(r.ip, r.day, r.filter_result) for r in snds] == [(IP, D1, "GREEN")]
    await store.save_reputation([day], [], NOW)
    [read] = (await store.reputation_days(since=D1))[0]
    assert read == day
    assert (await store.reputation_days(since=D1 + timedelta(days=1))) == ([], [])


def test_the_latest_day_of_each_domain_and_ip_counts() -> None:
    days, rows = latest_figures(
        [_pm(D1, 0.01), _pm(D1 - timedelta(days=1), 0.0), _pm(D1, 0.0, "b.test")],
        [_snds(D1, "GREEN"), _snds(D1 - timedelta(days=2), "RED"), _snds(None, "RED")],
    )
    assert [(d.domain, d.spam_rate) for d in days] == [
        ("b.test", 0.0),
        ("shop.test", 0.01),
    ]
    assert [r.filter_result for r in rows] == ["GREEN"]


async def test_a_pause_is_applied_once_per_figure_and_holds_too(
    store: SQLStore,
) -> None:
    gmail, microsoft = _runtime("gmail"), _runtime("microsoft")
    await store.save_reputation([_pm(D1, 0.004)], [_snds(D1, "YELLOW")], NOW)
    record = await _apply(store, [gmail, microsoft])
    assert gmail.lane.state is LaneState.paused
    assert gmail.lane.paused_until == NOW + REPUTATION_PAUSE
    assert [(e.cause, lane) for lane, e in record.events] == [
        ("reputation", 1),
        ("reputation_hold", 2),
    ]
    assert (
        "gmail spam rate 0.40% for shop.test on 2030-03-01"
        in record.events[0][1].detail
    )
    assert "SNDS filter result YELLOW" in record.events[1][1].detail
    assert microsoft.lane.state is LaneState.ramping
    assert set(gmail.holds) == {"reputation"} and set(microsoft.holds) == {"reputation"}
    # The operator resumes; the same figure on the next beats pauses it no more.
    gmail.lane = Lane(ip=IP, isp="gmail")
    later = await _apply(store, [gmail, microsoft], NOW + timedelta(minutes=1))
    assert later.events == [] and gmail.lane.state is LaneState.ramping
    # A clean figure lifts the holds at once.
    await store.save_reputation(
        [_pm(D1 + timedelta(days=1), 0.0001)],
        [_snds(D1 + timedelta(days=1), "GREEN")],
        NOW,
    )
    await _apply(store, [gmail, microsoft])
    assert gmail.holds == {} and microsoft.holds == {}


async def test_a_figure_past_the_lookback_decides_nothing(store: SQLStore) -> None:
    old = D1 - timedelta(days=10)
    await store.save_reputation([_pm(old, 0.01)], [_snds(old, "RED")], NOW)
    gmail, microsoft = _runtime("gmail"), _runtime("microsoft")
    record = await _apply(store, [gmail, microsoft])
    assert record.events == [] and gmail.lane.state is LaneState.ramping
    assert microsoft.lane.state is LaneState.ramping
