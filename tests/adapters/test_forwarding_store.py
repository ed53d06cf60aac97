"""relay.forward_bounces on SQLite and PostgreSQL: the bounced and expired
recipients of relayed mail read back, one report per recipient, reports marked
for the null sender."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from warmup.adapters.db.forwarding import SQLForwarding
from warmup.adapters.db.relay_store import SQLRelayStore
from warmup.adapters.db.reporting import campaign_summary
from warmup.adapters.db.schema import events, recipients
from warmup.adapters.db.store import SQLStore
from warmup.app.forward import DSN_CAMPAIGN, BounceForwarder
from warmup.app.ports import RelayedMessage
from warmup.core.bounces.parse import parse_bounce
from warmup.core.errors import StoreError
from warmup.core.recipients.address import Address

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
BODY = b"x" * 100_000  # the body is not read back, only the header section
HEADERS = b"From: shop@shop.example\r\nMessage-ID: <m1@shop.example>\r\n\r\n"


def _message(
    mail_from: str = "bounces@shop.example", **extra: object
) -> RelayedMessage:
    values: dict[str, object] = {
        "campaign": "spring",
        "content": HEADERS + BODY,
        "mail_from": mail_from,
        "peer": "127.0.0.1",
        "auth_user": None,
        "received_at": NOW,
        "recipients": [
            (Address("dead", "gmail.com"), "gmail"),
            (Address("late", "gmail.com"), "gmail"),
            (Address("ann", "gmail.com"), "gmail"),
        ],
    }
    values.update(extra)
    return RelayedMessage(**values)  # type: ignore[arg-type]


async def _events(store: SQLStore, message_id: int) -> list[int]:
    """bounced, expired, delivered events for the three recipients."""
    async with store.engine.begin() as conn:
        query = (
            select(recipients.c.id, recipients.c.address)
            .where(recipients.c.message_id == message_id)
            .order_by(recipients.c.id)
        )
        rows = (await conn.execute(query)).all()
        kinds = [
            ("bounced", "550 5.1.1 no such user", "5.1.1"),
            ("expired", None, None),
        ]
        kinds.append(("delivered", "250 ok", None))
        for (rid, address), (kind, reply, status) in zip(rows, kinds, strict=True):
            await conn.execute(
                insert(events).values(
                    type=kind,
                    at=NOW,
                    recipient_id=rid,
                    recipient=address,
                    reply=reply,
                    status=status,
                )
            )
        found = await conn.execute(select(events.c.id).order_by(events.c.id))
        return [int(i) for i in found.scalars()]


def _forwarder(store: SQLStore) -> BounceForwarder:
    return BounceForwarder(
        SQLForwarding(store),
        SQLRelayStore(store),
        own_domains=["bounce.test"],
        reporting_mta="mta.test",
        from_domain="bounce.test",
        isp_of=lambda domain: None,
    )


async def test_reports_are_queued_once_per_recipient(store: SQLStore) -> None:
    filed = await SQLRelayStore(store).commit_message(_message())
    ids = await _events(store, filed.message_id)
    found = await SQLForwarding(store).returned_mail(ids)
    assert [(r.recipient, r.expired, r.reported) for r in found] == [
        ("dead@gmail.com", False, False),
        ("late@gmail.com", True, False),
    ]
    assert found[0].content == HEADERS + BODY[: len(found[0].content) - len(HEADERS)]
    assert found[0].mail_from == "bounces@shop.example"
    forwarder = _forwarder(store)
    batch = [{"id": i} for i in ids]
    await forwarder.deliver(batch, NOW)
    await forwarder.deliver(batch, NOW)  # again (a crash before the cursor moved)
    assert forwarder.queued == 2
    again = await SQLForwarding(store).returned_mail(ids)
    assert all(r.reported for r in again)
    async with store.engine.connect() as conn:
        query = select(recipients.c.address, recipients.c.message_id).where(
            recipients.c.address == "bounces@shop.example"
        )
        reports = (await conn.execute(query)).all()
    assert len(reports) == 2
    content, null_sender = await store.relayed_message(reports[0].message_id)
    assert null_sender
    assert parse_bounce(content).recipients[0].recipient == "dead@gmail.com"
    assert (await store.relayed_message(filed.message_id))[1] is False
    summary = {c["name"] for c in await _campaigns(store)}
    assert DSN_CAMPAIGN in summary


async def _campaigns(store: SQLStore) -> list[dict[str, object]]:
    return [dict(c) for c in await campaign_summary(store)]


async def test_a_second_report_on_a_recipient_is_refused_by_the_store(
    store: SQLStore,
) -> None:
    submissions = SQLRelayStore(store)
    report = _message(mail_from="", dsn_for=12345, campaign=DSN_CAMPAIGN)
    await submissions.commit_message(report)
    with pytest.raises(StoreError):
        await submissions.commit_message(report)


async def test_null_senders_reports_and_own_domains_get_none(store: SQLStore) -> None:
    submissions = SQLRelayStore(store)
    forwarder = _forwarder(store)
    for mail_from, content in [
        ("", HEADERS),
        ("x@bounce.test", HEADERS),
        (
            "bounces@shop.example",
            b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n",
        ),
    ]:
        filed = await submissions.commit_message(
            _message(mail_from=mail_from, content=content)
        )
        await forwarder.deliver(
            [{"id": i} for i in await _events(store, filed.message_id)], NOW
        )
    assert forwarder.queued == 0
