"""The statements of a tick's record that go to the driver as they are
(compiled once by :meth:`Database.bound`, values converted by the caller):
:mod:`warmup.adapters.db.recording` sends them in one batch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, exists, null, update

from warmup.adapters.db.database import Database
from warmup.adapters.db.rows import lane_row
from warmup.adapters.db.schema import (
    attempts,
    ip_leases,
    lanes,
    recipients,
    suppressions,
)
from warmup.core.lanes.lane import Lane

__all__ = [
    "insert_attempt",
    "insert_suppression",
    "lane_instants",
    "sent",
    "update_lanes",
]


def insert_attempt() -> Any:
    return attempts.insert().values(
        {
            name: bindparam(name)
            for name in (
                "recipient_id",
                "lane_id",
                "attempted_at",
                "verdict",
                "reason",
                "code",
                "enhanced",
                "reply",
                "rule",
            )
        }
    )


def insert_suppression(db: Database) -> Any:
    columns = ("address", "kind", "reason", "source", "created_at")
    return (
        db.insert(suppressions)
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_nothing(index_elements=["address"])
    )


def sent(*, owned: bool) -> Any:
    """A sent recipient's new state; with ``owned``, only while still our claim."""
    still_ours = (
        recipients.c.claimed_by == bindparam("claimer")
        if owned
        else recipients.c.id.is_not(None)
    )
    return (
        update(recipients)
        .where(recipients.c.id == bindparam("rid"), still_ours)
        .values(
            state=bindparam("new_state"),
            next_attempt_at=bindparam("next_at"),
            attempts=bindparam("count"),
            lane_id=bindparam("lane"),
            claimed_by=null(),
            claimed_until=null(),
            last_reply=bindparam("reply"),
            updated_at=bindparam("now"),
        )
    )


def lane_instants(lane: Lane) -> dict[str, datetime | None]:
    """The instants of ``lane_row``, to be converted for the driver."""
    return {
        "backoff_until": lane.hold_until,
        "recover_at": lane.recover_at,
        "paused_until": lane.paused_until,
        "last_sent_at": lane.last_sent_at,
    }


def update_lanes(owned: bool) -> Any:
    """A lane's row from its state (``lane_row``'s columns); a lane whose IP
    another process holds now is not ours to write."""
    columns = lane_row(Lane(ip="", isp=""), 0.0, datetime.min.replace(tzinfo=UTC))
    statement = (
        update(lanes)
        .where(lanes.c.id == bindparam("lane"))
        .values({name: bindparam(name) for name in columns})
    )
    if owned:
        statement = statement.where(
            ~exists().where(
                ip_leases.c.ip == lanes.c.ip,
                ip_leases.c.claimer != bindparam("claimer"),
            )
        )
    return statement
