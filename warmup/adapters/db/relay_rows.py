"""The rows the relay's writer inserts for a batch: ``messages`` and
``recipients`` (``queued``, or ``suppressed`` when the suppression lookup found
the address), shared by the SQLAlchemy writer and SQLite's
(:mod:`warmup.adapters.db.relay_sqlite`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from warmup.adapters.db.database import Database
from warmup.adapters.db.outbox import insert_recipient_events
from warmup.adapters.db.schema import campaigns, recipients
from warmup.app.ports import FiledMessage, RelayedMessage
from warmup.core.event import EventType
from warmup.core.model import RecipientState
from warmup.core.recipients.suppression import is_suppressed
from warmup.core.relay.message import header_value

__all__ = [
    "campaign_ids",
    "campaign_statements",
    "message_row",
    "recipient_rows",
    "suppressed_events",
]


def message_row(message: RelayedMessage, campaign_id: int) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "content": message.content,
        "mail_from": message.mail_from[:320],
        "peer": message.peer[:64],
        "auth_user": message.auth_user,
        "received_at": message.received_at,
        "client_message_id": (header_value(message.content, "Message-ID") or "")[:998]
        or None,
        "dsn_for": message.dsn_for,
    }


def recipient_rows(
    batch: list[RelayedMessage],
    campaign_ids: dict[str, int],
    message_ids: list[int],
    found: set[str],
) -> tuple[list[dict[str, Any]], list[FiledMessage]]:
    rows: list[dict[str, Any]] = []
    filed: list[FiledMessage] = []
    for message, message_id in zip(batch, message_ids, strict=True):
        now = message.received_at
        dropped = 0
        for address, isp in message.recipients:
            suppressed = is_suppressed(address.address, found)
            dropped += suppressed
            state = RecipientState.suppressed if suppressed else RecipientState.queued
            rows.append(
                {
                    "campaign_id": campaign_ids[message.campaign],
                    "message_id": message_id,
                    "address": address.address,
                    "domain": address.domain,
                    "isp": None if suppressed else isp,
                    "state": state.value,
                    "priority": message.priority,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "queued_at": now,
                    "updated_at": now,
                    "deadline_at": message.deadline,
                }
            )
        filed.append(
            FiledMessage(
                message_id=message_id,
                queued=len(message.recipients) - dropped,
                suppressed=dropped,
            )
        )
    return rows, filed


def suppressed_events(batch: list[RelayedMessage], message_ids: list[int]) -> Any:
    """The outcome events of the batch's recipients filed as suppressed (rare)."""
    return insert_recipient_events(
        EventType.suppressed,
        batch[0].received_at,
        "relay",
        None,
        recipients.c.message_id.in_(message_ids),
        recipients.c.state == RecipientState.suppressed.value,
    )


def campaign_ids(
    batch: list[RelayedMessage],
    known: dict[str, int],
    campaign_of: Callable[[RelayedMessage], int],
) -> dict[str, int]:
    """Each campaign named in the batch: its id, known already or looked up (and
    made if new) once by ``campaign_of``."""
    ids: dict[str, int] = {}
    for message in batch:
        name = message.campaign
        if name not in ids:
            found = known.get(name)
            ids[name] = found if found is not None else campaign_of(message)
    return ids


def campaign_statements(database: Database, message: RelayedMessage) -> tuple[Any, Any]:
    """The query of the message's campaign id, and the insert that makes it
    without a template if it is new. Two nodes may make it at once: the insert
    does nothing for the loser, whose query then finds the winner's row."""
    query = select(campaigns.c.id).where(campaigns.c.name == message.campaign)
    create = (
        database.insert(campaigns)
        .values(
            name=message.campaign,
            template_id=None,
            created_at=message.received_at,
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return query, create
