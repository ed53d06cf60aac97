"""SQLRelayStore on SQLite and PostgreSQL: messages, their recipients, campaigns."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from warmup.adapters.db.relay_sqlite import WriterThread
from warmup.adapters.db.relay_store import SQLRelayStore, _write_batch
from warmup.adapters.db.schema import (
    attempts,
    campaigns,
    events,
    messages,
    recipient_counts,
    recipients,
)
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import FiledMessage, RelayedMessage, TemplateRecord
from warmup.core.errors import StoreError
from warmup.core.lanes.lane import Lane
from warmup.core.recipients.address import Address
from warmup.core.recipients.recipient import NewRecipient
from warmup.core.recipients.suppression import make_suppression
from warmup.core.settings import RetentionSettings

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
ANN = Address("ann", "gmail.com")


def _message(
    campaign: str = "spring", content: bytes = b"Subject: x\r\n\r\n"
) -> RelayedMessage:
    return RelayedMessage(
        campaign=campaign,
        content=content,
        mail_from="shop@shop.example",
        peer="127.0.0.1",
        auth_user=None,
        received_at=NOW,
        recipients=[
            (ANN, "gmail"),
            (Address("bob", "example.net"), None),
            (Address("gone", "gmail.com"), "gmail"),
        ],
    )


async def test_messages_and_recipients_are_filed_and_claimed(store: SQLStore) -> None:
    await store.add_suppressions(
        [make_suppression("gone@gmail.com", reason="hard", source="t", now=NOW)]
    )
    submissions = SQLRelayStore(store)
    first = await submissions.commit_message(_message(content=b"Subject: 1\r\n\r\n"))
    second = await submissions.commit_message(_message(content=b"Subject: 2\r\n\r\n"))
    assert (first.queued, first.suppressed) == (2, 1)
    assert first.message_id != second.message_id
    assert await store.count_recipients() == {"queued": 4, "suppressed": 2}
    assert await store.message_for(second.message_id) == b"Subject: 2\r\n\r\n"
    claimed = await store.claim(
        lane_id=(await _lane(store)),
        isp="gmail",
        limit=10,
        now=NOW,
        claimer="n:1",
        lease_until=NOW + timedelta(minutes=5),
    )
    assert sorted(c.message_id for c in claimed if c.message_id) == [
        first.message_id,
        second.message_id,
    ]
    assert {c.address for c in claimed} == {"ann@gmail.com"}


async def test_parallel_messages_share_commits_and_a_bad_one_fails_alone(
    store: SQLStore,
) -> None:
    batches: list[int] = []

    class Picky(SQLRelayStore):
        async def _write(self, batch: list[RelayedMessage]) -> list[FiledMessage]:
            batches.append(len(batch))
            if any(m.campaign == "poison" for m in batch):
                raise StoreError("accepting messages", "poisoned")
            return await super()._write(batch)

    picky = Picky(store)
    names = ["a", "b", "poison", "c", "d"] * 4
    results = await asyncio.gather(
        *(picky.commit_message(_message(name)) for name in names),
        return_exceptions=True,
    )
    failed = [
        n for n, r in zip(names, results, strict=True) if isinstance(r, Exception)
    ]
    assert failed == ["poison"] * 4
    assert len({r.message_id for r in results if isinstance(r, FiledMessage)}) == 16
    assert max(batches) > 1  # messages did share transactions
    assert await store.count_recipients() == {"queued": 48}


async def _lane(store: SQLStore) -> int:
    lane_id, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="gmail"), NOW)
    return lane_id


async def test_template_recipients_stay_unique_beside_relayed_ones(
    store: SQLStore,
) -> None:
    template = TemplateRecord(
        name="t.eml", sha256="a" * 64, content=b"Subject: x\r\n\r\n"
    )
    campaign = await store.ensure_campaign("spring", template, NOW)
    await SQLRelayStore(store).commit_message(_message())
    row = NewRecipient(
        address="ann@gmail.com",
        domain="gmail.com",
        engagement_score=None,
        engaged_at=None,
        fields={"email": "ann@gmail.com"},
    )
    assert (
        await store.insert_recipients(campaign.id, [row, row], ["gmail"] * 2, NOW) == 1
    )
    assert await store.insert_recipients(campaign.id, [row], ["gmail"], NOW) == 0
    assert await store.count_recipients(campaign.id) == {"queued": 4}


async def test_a_new_campaign_is_created_once_under_concurrency(
    store: SQLStore,
) -> None:
    submissions = [SQLRelayStore(store) for _ in range(5)]
    await asyncio.gather(*(s.commit_message(_message("fresh")) for s in submissions))
    async with store.engine.connect() as conn:
        count = await conn.execute(select(func.count()).select_from(campaigns))
        assert count.scalar_one() == 1


async def test_a_relayed_deadline_holds_at_claim_and_expires_unsent(
    store: SQLStore,
) -> None:
    submissions = SQLRelayStore(store)
    deadline = NOW + timedelta(hours=1)
    message = _message()
    await submissions.commit_message(
        RelayedMessage(
            campaign=message.campaign,
            content=message.content,
            mail_from=message.mail_from,
            peer=message.peer,
            auth_user=None,
            received_at=NOW,
            recipients=[(ANN, "gmail")],
            deadline=deadline,
        )
    )
    lane = await _lane(store)
    late = deadline + timedelta(seconds=1)
    lease = late + timedelta(minutes=5)
    claimed = await store.claim(
        lane_id=lane, isp="gmail", limit=5, claimer="n:1", now=late, lease_until=lease
    )
    assert claimed == []
    assert await store.expire_deadlines(late) == 1
    assert await store.count_recipients() == {"expired": 1}


async def test_a_suppressed_relayed_recipient_is_an_event_with_the_message_id(
    store: SQLStore,
) -> None:
    await store.add_suppressions(
        [make_suppression("gone@gmail.com", reason="hard", source="t", now=NOW)]
    )
    content = b"Message-ID: <abc.1@shop.example>\r\nSubject: x\r\n\r\nhi\r\n"
    await SQLRelayStore(store).commit_message(_message(content=content))
    events = await store.read_events()
    assert [(e["type"], e["recipient"]) for e in events] == [
        ("suppressed", "gone@gmail.com")
    ]
    (event,) = events
    assert event["message_id"] == "<abc.1@shop.example>"
    assert (event["campaign"], event["source"]) == ("spring", "relay")


async def test_addresses_refused_at_enqueue_are_suppressed_events(
    store: SQLStore,
) -> None:
    template = TemplateRecord(name="t", sha256="d" * 64, content=b"Subject: x\r\n\r\n")
    campaign = await store.ensure_campaign("autumn", template, NOW)
    await store.record_refused(
        campaign.id, ["a@x.example", "b@x.example"], NOW, "enqueue"
    )
    events = await store.read_events(types=["suppressed"])
    assert [(e["recipient"], e["campaign"], e["source"]) for e in events] == [
        ("a@x.example", "autumn", "enqueue"),
        ("b@x.example", "autumn", "enqueue"),
    ]


async def test_a_prioritised_relayed_message_is_claimed_first(
    store: SQLStore,
) -> None:
    submissions = SQLRelayStore(store)
    plain = _message(content=b"Subject: plain\r\n\r\n")
    await submissions.commit_message(plain)
    urgent = RelayedMessage(
        campaign="spring",
        content=b"Subject: urgent\r\n\r\n",
        mail_from=plain.mail_from,
        peer=plain.peer,
        auth_user=None,
        received_at=NOW,
        recipients=[(ANN, "gmail")],
        priority=2e12,
    )
    filed = await submissions.commit_message(urgent)
    (first,) = await store.claim(
        lane_id=await _lane(store),
        isp="gmail",
        limit=1,
        now=NOW,
        claimer="n:1",
        lease_until=NOW + timedelta(minutes=5),
    )
    assert first.message_id == filed.message_id


async def test_retention_empties_final_bodies_and_old_attempts_in_batches(
    store: SQLStore,
) -> None:
    submissions = SQLRelayStore(store)
    done = await submissions.commit_message(_message(content=b"Subject: 1\r\n\r\n"))
    queued = await submissions.commit_message(_message(content=b"Subject: 2\r\n\r\n"))
    lane = await _lane(store)
    async with store.engine.begin() as conn:
        await conn.execute(
            update(recipients)
            .where(recipients.c.message_id == done.message_id)
            .values(state="delivered", updated_at=NOW)
        )
        await conn.execute(
            insert(attempts),
            [
                {
                    "recipient_id": 1,
                    "lane_id": lane,
                    "attempted_at": NOW + timedelta(minutes=i),
                    "verdict": "delivered",
                    "reason": "ok",
                }
                for i in range(25)
            ],
        )
    settings = RetentionSettings(
        message_bodies=timedelta(days=7), attempts=timedelta(days=180), batch=10
    )
    assert await store.prune(settings, NOW + timedelta(days=6)) == (0, 0)
    assert await store.prune(settings, NOW + timedelta(days=8)) == (1, 0)
    assert await store.message_for(done.message_id) == b""
    assert await store.message_for(queued.message_id) == b"Subject: 2\r\n\r\n"
    later = NOW + timedelta(days=181)
    assert await store.prune(settings, later) == (0, 25)  # three batches
    async with store.engine.connect() as conn:
        left = await conn.execute(select(func.count()).select_from(attempts))
        assert left.scalar_one() == 0


async def test_sqlite_commits_accepted_mail_with_fsync_off_the_event_loop(
    store: SQLStore,
) -> None:
    """On SQLite the batch is written on the writer's own thread and connection,
    which fsyncs each commit (synchronous=FULL) when durable, NORMAL when not."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL commits through its async driver")
    for durable, level in ((True, 2), (False, 1)):
        submissions = SQLRelayStore(store, durable=durable)
        filed = await submissions.commit_message(_message(f"c{level}"))
        assert filed.queued == 3
        threads = {t.name for t in threading.enumerate()}
        assert any(name.startswith("warmup-relay-writer") for name in threads)
        writer = submissions._fast
        assert writer is not None
        # on the writer's thread and connection
        assert await submissions._thread.run(writer.synchronous) == level
        submissions.close()


async def test_sqlites_own_writer_writes_what_the_sqlalchemy_writer_writes(
    tmp_path: Path,
) -> None:
    """The SQLite writer (relay_sqlite) sends the statements to sqlite3 itself;
    every row it leaves (campaigns, messages, recipients, their counts, the
    suppressed ones' events) is the one the SQLAlchemy writer leaves."""
    batches = [
        [_message("spring"), _message("spring", b"Message-ID: <m@x>\r\n\r\n")],
        [
            RelayedMessage(
                campaign="autumn",
                content=b"Subject: late\r\n\r\n",
                mail_from="",
                peer="::1",
                auth_user="news",
                received_at=NOW + timedelta(seconds=1),
                recipients=[(ANN, "gmail"), (Address("cy", "gmail.com"), "gmail")],
                deadline=NOW + timedelta(hours=2),
                priority=2e12,
                dsn_for=7,
            )
        ],
    ]
    written = []
    for fast in (True, False):
        store = await SQLStore.open(f"sqlite:///{tmp_path}/{fast}.db")
        await store.add_suppressions(
            [make_suppression("gone@gmail.com", reason="hard", source="t", now=NOW)]
        )
        submissions = SQLRelayStore(store)
        for batch in batches:
            if fast:
                await submissions._write(batch)
            else:
                async with store.database.begin() as conn:
                    await conn.run_sync(_write_batch, store, batch, {})
        submissions.close()
        async with store.engine.connect() as conn:
            tables = {}
            for table in (campaigns, messages, recipients, recipient_counts, events):
                rows = await conn.execute(select(table).order_by(*table.primary_key))
                tables[table.name] = [tuple(row) for row in rows]
        written.append(tables)
        await store.close()
    assert written[0] == written[1]
    assert len(written[0]["recipients"]) == 8
    assert len(written[0]["events"]) == 2  # gone@ twice


async def test_the_writer_thread_runs_jobs_in_order_and_hands_back_errors() -> None:
    """Results and exceptions come back to the caller; a cancelled caller does
    not stop its job; stop runs the last job on the thread, after the others."""
    writer = WriterThread("warmup-relay-writer-test")
    done: list[str] = []
    gate = threading.Event()

    def slow() -> str:
        gate.wait(10)
        done.append("slow")
        return threading.current_thread().name

    def broken() -> None:
        raise ValueError("bad row")

    waiting = asyncio.ensure_future(writer.run(slow))
    await asyncio.sleep(0)  # queued
    waiting.cancel()
    gate.set()
    with pytest.raises(ValueError, match="bad row"):
        await writer.run(broken)
    assert done == ["slow"]
    assert await writer.run(lambda: threading.current_thread().name) == writer.name
    writer.stop(lambda: done.append(threading.current_thread().name))
    assert done == ["slow", writer.name]
