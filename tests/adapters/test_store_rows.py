"""The store's typed rows match what it reads: the TypedDicts of
warmup.app.store_rows name exactly the columns and fields returned."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.dialects import sqlite

from warmup.adapters.db.database import sqlite_instant_text
from warmup.adapters.db.schema import UTCDateTime, bounce_events, events, lane_days
from warmup.adapters.db.store import SQLStore
from warmup.adapters.event_log import event_line
from warmup.app.ports import TemplateRecord
from warmup.app.store_rows import (
    CampaignCounts,
    EventRow,
    LaneDayRow,
    LateReportRow,
    TraceStep,
)
from warmup.cli.events_cmd import event_json
from warmup.core.event import EVENT_FIELDS
from warmup.core.model import RecipientState
from warmup.core.recipients.recipient import NewRecipient
from warmup.core.recipients.suppression import make_suppression

NOON = datetime(2030, 1, 1, 12, tzinfo=UTC)


def test_rows_read_whole_tables_name_every_column() -> None:
    # lane_history and late_report_rows return the table's row as it is.
    assert LaneDayRow.__required_keys__ == {"ip", "isp", *lane_days.c.keys()}
    assert LateReportRow.__required_keys__ == set(bounce_events.c.keys())


def test_campaign_counts_has_one_count_per_state() -> None:
    states = {state.value for state in RecipientState}
    assert CampaignCounts.__required_keys__ == {"name", "pending", "total", *states}


async def test_trace_steps_have_only_trace_step_fields(store: SQLStore) -> None:
    template = TemplateRecord(name="t", sha256="a" * 64, content=b"Subject: x\r\n\r\n")
    campaign = await store.ensure_campaign("spring", template, NOON)
    person = NewRecipient(
        address="a@b.example",
        domain="b.example",
        engagement_score=None,
        engaged_at=None,
        fields={"email": "a@b.example"},
    )
    await store.insert_recipients(campaign.id, [person], ["gmail"], NOON)
    later = NOON + timedelta(minutes=1)
    entry = make_suppression("a@b.example", reason="manual", source="cli", now=later)
    await store.add_suppressions([entry])
    await store.record_refused(campaign.id, ["a@b.example"], later, "relay")
    steps = await store.trace("a@b.example")
    assert [s["step"] for s in steps] == ["enqueued", "suppressed", "event"]
    for step in steps:
        assert set(step) <= set(TraceStep.__annotations__), step
        assert {"at", "step", "detail"} <= set(step)
    summary = await store.campaign_summary()
    assert summary == [
        {
            "name": "spring",
            "queued": 1,
            "sending": 0,
            "delivered": 0,
            "bounced": 0,
            "suppressed": 0,
            "expired": 0,
            "cancelled": 0,
            "pending": 1,
            "total": 1,
        }
    ]
    assert list(summary[0]) == list(CampaignCounts.__annotations__)  # JSON order


# One event with every field set, and its JSON as shipped before the outbox rows
# were typed: the accounting log's line and `warmup events --json`'s object.
EVENT = {
    "type": "bounced",
    "at": NOON,
    "campaign": "winter",
    "recipient": "zoë@x.example",
    "message_id": "<m1@x.example>",
    "ip": "127.0.0.2",
    "isp": "gmail",
    "reply": "550 5.1.1 no such user",
    "status": "5.1.1",
    "reason": "unknown",
    "source": "smtp",
}
LOG_LINE = (
    '{"id":1,"type":"bounced","at":"2030-01-01T12:00:00+00:00","campaign":"winter",'
    '"recipient":"zoë@x.example","message_id":"<m1@x.example>","ip":"127.0.0.2",'
    '"isp":"gmail","reply":"550 5.1.1 no such user","status":"5.1.1",'
    '"reason":"unknown","source":"smtp"}\n'
)
CLI_LINE = (
    '{"id": 1, "type": "bounced", "at": "2030-01-01T12:00:00+00:00", '
    '"campaign": "winter", "recipient": "zoë@x.example", '
    '"message_id": "<m1@x.example>", "ip": "127.0.0.2", "isp": "gmail", '
    '"reply": "550 5.1.1 no such user", "status": "5.1.1", "reason": "unknown", '
    '"source": "smtp"}'
)


def test_event_rows_name_the_event_fields_in_their_order() -> None:
    assert list(EventRow.__annotations__) == list(EVENT_FIELDS)
    assert EventRow.__required_keys__ == set(EVENT_FIELDS)


async def test_event_json_is_the_same_bytes_as_before(store: SQLStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(events).values(**EVENT))
    [event] = await store.read_events()
    assert event_line(event) == LOG_LINE
    assert json.dumps(event_json(event), ensure_ascii=False, default=str) == CLI_LINE


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 (hypothesis: naive bounds)
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from(
            [
                UTC,
                timezone(timedelta(hours=9)),
                timezone(timedelta(hours=-5, minutes=-30)),
            ]
        ),
    )
)
def test_sqlite_instants_are_bound_as_sqlalchemy_binds_them(moment: datetime) -> None:
    # The tick's record binds instants itself (several a send); the text must
    # be SQLAlchemy's to the character, or queries comparing instants break.
    dialect = sqlite.dialect()
    sqlalchemy_bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert sqlalchemy_bind is not None
    assert sqlite_instant_text(moment) == sqlalchemy_bind(moment)


def test_sqlite_instants_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_instant_text(datetime(2030, 1, 1))  # noqa: DTZ001 (the point)
