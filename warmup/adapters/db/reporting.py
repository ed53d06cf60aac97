"""Read-only queries behind ``warmup status`` and reports.

Plain async functions over an open :class:`SQLStore`; they never write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from warmup.adapters.db.counts import counted
from warmup.adapters.db.failure import describe
from warmup.adapters.db.schema import (
    HELD_QUEUED,
    campaigns,
    lane_events,
    recipient_counts,
    recipients,
)
from warmup.adapters.db.store import SQLStore
from warmup.core.errors import StoreError
from warmup.core.model import RecipientState

__all__ = ["campaign_summary", "held_messages", "last_events"]

_STATES = tuple(state.value for state in RecipientState)


async def last_events(store: SQLStore) -> dict[int, dict[str, Any]]:
    """The newest lane event of every lane that has one, keyed by lane id.

    Each value has ``at``, ``cause``, ``old_state``, ``new_state``, ``reply``
    and ``detail``.
    """
    newest = (
        select(func.max(lane_events.c.id).label("id"))
        .group_by(lane_events.c.lane_id)
        .subquery()
    )
    query = select(
        lane_events.c.lane_id,
        lane_events.c.at,
        lane_events.c.cause,
        lane_events.c.old_state,
        lane_events.c.new_state,
        lane_events.c.reply,
        lane_events.c.detail,
    ).join(newest, newest.c.id == lane_events.c.id)
    try:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    except SQLAlchemyError as exc:
        raise StoreError("reading lane events", describe(exc)) from exc
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        event = dict(row._mapping)
        found[int(event.pop("lane_id"))] = event
    return found


async def campaign_summary(store: SQLStore) -> list[dict[str, Any]]:
    """Recipients per state of every campaign, oldest campaign first.

    Each item has ``name``, one count per recipient state (zero when none),
    ``pending`` (queued + sending) and ``total``.
    """
    per_state = counted(recipient_counts.c.campaign_id, recipient_counts.c.state)
    counts = per_state.subquery()
    query = (
        select(campaigns.c.id, campaigns.c.name, counts.c.state, counts.c.n)
        .join(counts, counts.c.campaign_id == campaigns.c.id, isouter=True)
        .order_by(campaigns.c.id)
    )
    try:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    except SQLAlchemyError as exc:
        raise StoreError("counting recipients", describe(exc)) from exc
    summary: dict[int, dict[str, Any]] = {}
    for campaign_id, name, state, count in rows:
        item = summary.setdefault(
            int(campaign_id), {"name": str(name)} | dict.fromkeys(_STATES, 0)
        )
        if state is not None:
            item[str(state)] = item.get(str(state), 0) + int(count)
    for item in summary.values():
        item["pending"] = item["queued"] + item["sending"]
        item["total"] = sum(item[state] for state in _STATES)
    return list(summary.values())


async def held_messages(store: SQLStore) -> list[dict[str, Any]]:
    """Queued recipients held back unsent (no DKIM key covers their From
    domain), per campaign and reason: ``campaign``, ``reason``, ``recipients``."""
    query = (
        select(campaigns.c.name, recipients.c.last_reply, func.count())
        .join(recipients, recipients.c.campaign_id == campaigns.c.id)
        .where(text(HELD_QUEUED))
        .group_by(campaigns.c.name, recipients.c.last_reply)
        .order_by(campaigns.c.name, recipients.c.last_reply)
    )
    try:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    except SQLAlchemyError as exc:
        raise StoreError("counting held recipients", describe(exc)) from exc
    return [
        {"campaign": str(name), "reason": str(reply), "recipients": int(count)}
        for name, reply, count in rows
    ]
