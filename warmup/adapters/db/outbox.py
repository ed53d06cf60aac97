"""Writing outcome events into the outbox inside the transactions that make the
outcomes (see warmup.core.event and warmup.adapters.db.events).

An event row copies what the campaign tool needs (campaign name, address, the
client's Message-ID, lane IP and ISP) from the recipient row at writing time, by
``INSERT … SELECT``, so shipping never joins and a later change never rewrites
history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, cast, literal, select

from warmup.adapters.db.schema import (
    UTCDateTime,
    campaigns,
    events,
    lanes,
    messages,
    recipients,
)
from warmup.core.attempt import TickRecord
from warmup.core.event import EventType, attempt_event

__all__ = ["insert_outcome_events", "insert_recipient_events", "outcome_rows"]

_COLUMNS = (
    "type",
    "at",
    "campaign",
    "recipient",
    "message_id",
    "ip",
    "isp",
    "reply",
    "status",
    "reason",
    "source",
    "recipient_id",
)
_ROW_PARAMS = ("type", "at", "reply", "status", "reason", "source")


def _param(name: str, dialect: str, *, instant: bool = False) -> Any:
    """A bound value in a SELECT list; PostgreSQL needs its type spelled out,
    SQLite must not cast (its CAST would turn a date string into a number)."""
    value: Any = bindparam(name)
    if dialect != "postgresql":
        return value
    return cast(value, UTCDateTime() if instant else String())


def _source_joins() -> Any:
    return recipients.join(campaigns, campaigns.c.id == recipients.c.campaign_id)


def insert_outcome_events(dialect: str) -> Any:
    """One event per row of ``rid, lane, type, at, reply, status, reason,
    source`` (for the driver's executemany; see Database.executemany)."""
    values = {name: _param(name, dialect, instant=name == "at") for name in _ROW_PARAMS}
    source = (
        select(
            values["type"],
            values["at"],
            campaigns.c.name,
            recipients.c.address,
            messages.c.client_message_id,
            lanes.c.ip,
            lanes.c.isp,
            values["reply"],
            values["status"],
            values["reason"],
            values["source"],
            recipients.c.id,
        )
        .select_from(
            _source_joins()
            .outerjoin(messages, messages.c.id == recipients.c.message_id)
            .outerjoin(lanes, lanes.c.id == bindparam("lane"))
        )
        .where(recipients.c.id == bindparam("rid"))
    )
    return events.insert().from_select(list(_COLUMNS), source)


def insert_recipient_events(
    kind: EventType,
    at: datetime,
    source: str,
    reply: str | None,
    *where: Any,
    status: str | None = None,
    reason: str | None = None,
    lane_id: int | None = None,
) -> Any:
    """One ``kind`` event per recipient matching ``where`` (bulk acts: a
    campaign cancel, deadlines), to run before the update that changes them."""
    selected = (
        select(
            literal(kind.value, String()),
            literal(at, UTCDateTime()),
            campaigns.c.name,
            recipients.c.address,
            messages.c.client_message_id,
            lanes.c.ip,
            lanes.c.isp,
            literal(reply, String()),
            literal(status, String()),
            literal(reason or kind.value, String()),
            literal(source, String()),
            recipients.c.id,
        )
        .select_from(
            _source_joins()
            .outerjoin(messages, messages.c.id == recipients.c.message_id)
            .outerjoin(
                lanes,
                lanes.c.id == (recipients.c.lane_id if lane_id is None else lane_id),
            )
        )
        .where(*where)
    )
    return events.insert().from_select(list(_COLUMNS), selected)


def outcome_rows(
    tick: TickRecord, stamp: Any, to_db: Callable[[datetime], Any]
) -> list[dict[str, Any]]:
    """The events of one tick, as driver-ready rows for insert_outcome_events."""
    rows = [
        {
            "rid": a.recipient_id,
            "lane": a.lane_id,
            "type": attempt_event(a.decision.state).value,
            "at": to_db(a.attempted_at),
            "reply": a.reply[:2000],
            "status": a.enhanced,
            "reason": a.reason,
            "source": "smtp",
        }
        for a in tick.attempts
    ]
    for ids, kind, source in (
        (tick.dropped, EventType.suppressed, "suppression list"),
        (tick.cancelled, EventType.cancelled, "campaign cancelled"),
        (tick.late, EventType.expired, "deadline"),
    ):
        rows.extend(
            {
                "rid": rid,
                "lane": None,
                "type": kind.value,
                "at": stamp,
                "reply": None,
                "status": None,
                "reason": kind.value,
                "source": source,
            }
            for rid in ids
        )
    return rows
