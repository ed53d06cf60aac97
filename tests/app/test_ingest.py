"""Bounce intake end to end on a real store: hostile or broken mail, store
outages, two processes at once, late reports for another node's lanes."""

from __future__ import annotations

import asyncio
import mailbox
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from warmup.adapters.db.schema import bounce_events, lanes, recipients, suppressions
from warmup.adapters.db.store import SQLStore
from warmup.adapters.mailboxes import MaildirInbox
from warmup.app.dispatcher import Dispatcher
from warmup.app.ingest import BounceIntake
from warmup.app.ports import TemplateRecord
from warmup.app.settings import EngineSettings
from warmup.core.errors import StoreError
from warmup.core.lanes.schedule import RampStep, Schedule, Window
from warmup.core.recipients.recipient import parse_recipient_row
from warmup.core.settings import DeliverySettings, RetryPolicy, Route, SourceIP
from warmup.sim.reports import build_dsn
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver, FakeSender, SentMessage

START = datetime(2030, 1, 1, 0, tzinfo=UTC)
GMAIL = Schedule(
    isp="gmail",
    domains=("gmail.com",),
    window=Window(start=time(1), end=time(3)),
    steps=(RampStep(first_day=1, last_day=9, per_hour=60),),
)
DEFAULT = Schedule(
    isp="default", steps=(RampStep(first_day=1, last_day=1, per_hour=5),)
)
TEMPLATE = b"From: a@shop.example\r\nSubject: Hi\r\n\r\nHello\r\n"


async def _queue(store: SQLStore, count: int, now: datetime) -> None:
    record = TemplateRecord(name="t.eml", sha256="c" * 64, content=TEMPLATE)
    campaign = await store.ensure_campaign("c", record, now)
    rows = [
        parse_recipient_row({"email": f"u{i}@gmail.com"}, set()) for i in range(count)
    ]
    await store.insert_recipients(campaign.id, rows, ["gmail"] * count, now)


def _engine(
    store: SQLStore,
    clock: FakeClock,
    sender: FakeSender,
    *,
    ip: str = "127.0.0.2",
    node: str = "test-node",
) -> Dispatcher:
    settings = EngineSettings(
        schedules={"gmail": GMAIL, "default": DEFAULT},
        ips=(SourceIP(address=ip, helo="a.test"),),
        delivery=DeliverySettings(
            routes={"gmail": Route(host="127.0.0.1", port=2525)}, batch_size=20
        ),
        return_path="bounces@bounce.test",
        verp_secret=b"k",
        tz=UTC,
        node=node,
        maintenance_every=timedelta(hours=1),
        idle_wake=timedelta(hours=1),
    )
    return Dispatcher(
        store=store,
        sender=sender,
        resolver=FakeResolver(),
        clock=clock,
        settings=settings,
    )


async def _run_until(engine: Dispatcher, clock: FakeClock, end: datetime) -> None:
    for _ in range(10_000):  # bounded: each tick jumps to the next event
        wake = await engine.tick()
        if wake >= end:
            return
        clock.advance(max(wake - clock.now(), timedelta(0)))
    raise AssertionError("did not reach the end")


async def _delivered(
    store: SQLStore, count: int
) -> tuple[FakeClock, list[SentMessage]]:
    """``count`` recipients sent and accepted with 250 (inside the window)."""
    clock = FakeClock(START + timedelta(hours=1))
    sender = FakeSender(now=clock.now)
    await _queue(store, count, clock.now())
    engine = _engine(store, clock, sender)
    await _run_until(engine, clock, START + timedelta(hours=3))
    assert len(sender.sent) >= count
    return clock, sender.sent[:count]


def _intake(store: SQLStore, clock: FakeClock) -> BounceIntake:
    return BounceIntake(
        store,
        clock=clock,
        return_path="bounces@bounce.test",
        secret=b"k",
        retry=RetryPolicy(),
    )


def _dsn(clock: FakeClock, to: str, recipient: str, **extra: str) -> bytes:
    return build_dsn(
        to=to,
        recipient=recipient,
        diagnostic=extra.get("diagnostic", "550 5.1.1 user unknown"),
        reporting_mta="mx.gmail.test",
        original_headers=extra.get("original", "Subject: x\n"),
        now=clock.now(),
    )


async def _rows(store: SQLStore, table: object) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        result = await conn.execute(select(table))  # type: ignore[call-overload]
        return [dict(r._mapping) for r in result.all()]


async def test_odd_tokens_are_forged_and_never_block_the_mailbox(
    store: SQLStore, tmp_path: Path
) -> None:
    """A non-ASCII VERP address or a trace in non-ASCII digits (anyone can mail the
    bounce domain) used to raise in the HMAC check: the poll died on that mail
    every time and never reached the others."""
    clock, sent = await _delivered(store, 1)
    box = mailbox.Maildir(tmp_path / "box")
    odd_verp = _dsn(
        clock, "bounces+r\u00e9-a1-0123456789@bounce.test", sent[0].recipient
    )
    odd_trace = _dsn(
        clock,
        "postmaster@bounce.test",
        sent[0].recipient,
        original="X-Warmup-Id: r\u0663-a1-0123456789\nSubject: x\n",
    )
    genuine = _dsn(clock, sent[0].sender, sent[0].recipient)
    for mail in (odd_verp, odd_trace, genuine):
        box.add(mail)
    inbox = MaildirInbox(tmp_path / "box")
    counts = await _intake(store, clock).drain(inbox)
    # Non-ASCII digits are no token at all: that one is matched by its recipient.
    assert counts == {"forged": 1, "bounce": 2}
    assert inbox.unseen() == []
    assert [r["address"] for r in await _rows(store, suppressions)] == [
        sent[0].recipient
    ]


async def test_a_mail_that_cannot_be_handled_is_skipped_not_retried_forever(
    store: SQLStore, tmp_path: Path
) -> None:
    """Anything but a store failure is this mail's problem: it is set aside (seen,
    still in the maildir) and the next mails are handled."""
    clock, sent = await _delivered(store, 2)
    intake = _intake(store, clock)
    real = intake._stage

    async def stage(data: bytes, **kwargs: object) -> object:
        if b"poison" in data:
            raise ValueError("a parser bug")
        return await real(data, **kwargs)  # type: ignore[arg-type]

    intake._stage = stage  # type: ignore[method-assign,assignment]
    box = mailbox.Maildir(tmp_path / "box")
    box.add(_dsn(clock, sent[0].sender, sent[0].recipient) + b"poison\n")
    box.add(_dsn(clock, sent[1].sender, sent[1].recipient))
    inbox = MaildirInbox(tmp_path / "box")
    counts = await intake.drain(inbox)
    assert counts == {"failed": 1, "bounce": 1}
    assert inbox.unseen() == []


class _ThreadRecordingInbox(MaildirInbox):
    """The real maildir inbox, noting which thread each read and rename ran on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: list[int] = []

    def unseen(self, limit: int = 500) -> list[tuple[str, bytes]]:
        self.threads.append(threading.get_ident())
        return super().unseen(limit)

    def mark_seen(self, key: str) -> None:
        self.threads.append(threading.get_ident())
        super().mark_seen(key)


async def test_the_maildir_is_read_off_the_event_loop(
    store: SQLStore, tmp_path: Path
) -> None:
    """Reading and renaming mail files blocks: the poll does it in a worker
    thread, so the relay sharing the loop keeps answering meanwhile."""
    clock, sent = await _delivered(store, 2)
    box = mailbox.Maildir(tmp_path / "box")
    for message in sent:
        box.add(_dsn(clock, message.sender, message.recipient))
    inbox = _ThreadRecordingInbox(tmp_path / "box")
    counts = await _intake(store, clock).drain(inbox)
    assert counts == {"bounce": 2}
    assert len(inbox.threads) == 3  # one read, two renames
    assert threading.get_ident() not in inbox.threads
    assert inbox.unseen() == []


async def test_a_store_failure_leaves_the_mail_for_the_next_poll(
    store: SQLStore, tmp_path: Path
) -> None:
    clock, sent = await _delivered(store, 1)
    box = mailbox.Maildir(tmp_path / "box")
    box.add(_dsn(clock, sent[0].sender, sent[0].recipient))
    inbox = MaildirInbox(tmp_path / "box")
    intake = _intake(store, clock)

    async def save_late_reports(*_: object) -> list[bool]:
        raise StoreError("saving bounces", "database is away")

    store.save_late_reports = save_late_reports  # type: ignore[assignment]
    with pytest.raises(StoreError):
        await intake.drain(inbox)
    assert len(inbox.unseen()) == 1


class _CountingSaves:
    """Counts the store's save_late_reports calls (one per transaction)."""

    def __init__(self, store: SQLStore) -> None:
        self.calls: list[int] = []
        self._real = store.save_late_reports
        store.save_late_reports = self

    async def __call__(self, events: Any, now: datetime) -> list[bool]:
        self.calls.append(len(events))
        return await self._real(events, now)


async def test_a_drain_saves_many_mails_in_one_transaction(
    store: SQLStore, tmp_path: Path
) -> None:
    """One commit per mail was the intake's cost; the effects stay those of
    each mail on its own, and every mail is marked seen."""
    clock, sent = await _delivered(store, 6)
    box = mailbox.Maildir(tmp_path / "box")
    for message in sent:
        box.add(_dsn(clock, message.sender, message.recipient))
    box.add(_dsn(clock, sent[0].sender, sent[0].recipient))  # the same report again
    saves = _CountingSaves(store)
    inbox = MaildirInbox(tmp_path / "box")
    counts = await _intake(store, clock).drain(inbox)
    assert counts == {"bounce": 7}
    # Six mails in one commit; the repeat is about a recipient the batch
    # changed, so the six were saved before it was looked at.
    assert saves.calls == [6, 1]
    assert inbox.unseen() == []
    events = await _rows(store, bounce_events)
    assert len(events) == 6  # the repeated report acted once
    assert sorted(r["address"] for r in await _rows(store, suppressions)) == sorted(
        m.recipient for m in sent
    )
    states = {r["address"]: r["state"] for r in await _rows(store, recipients)}
    assert {states[m.recipient] for m in sent} == {"bounced"}


async def test_a_batch_saves_first_when_a_mail_is_about_a_recipient_it_changed(
    store: SQLStore, tmp_path: Path
) -> None:
    """A soft bounce then a hard one for the same recipient: the second is
    looked up after the first is saved, exactly as one mail at a time."""
    clock, sent = await _delivered(store, 2)
    soft = _dsn(
        clock, sent[0].sender, sent[0].recipient, diagnostic="452 4.2.2 mailbox full"
    )
    hard = _dsn(clock, sent[0].sender, sent[0].recipient)
    other = _dsn(clock, sent[1].sender, sent[1].recipient)
    one_by_one = [
        await _intake(store, clock).ingest(mail, source="s") for mail in (soft, hard)
    ]
    expected = {r["address"]: r["state"] for r in await _rows(store, recipients)}
    # The same two mails (plus one about another recipient) into a fresh state:
    # undo what the first pass saved.
    async with store.engine.begin() as conn:
        await conn.execute(bounce_events.delete())
        await conn.execute(suppressions.delete())
        await conn.execute(recipients.update().values(state="delivered"))
    saves = _CountingSaves(store)
    batched = await _intake(store, clock).ingest_batch(
        [("a", soft), ("b", hard), ("c", other)]
    )
    assert saves.calls == [1, 2]  # saved before the second mail about sent[0]
    for first, again in zip(one_by_one, batched[:2], strict=True):
        assert not isinstance(again, Exception)
        assert [(e.effect, fresh) for e, fresh in again.events] == [
            (e.effect, fresh) for e, fresh in first.events
        ]
    states = {r["address"]: r["state"] for r in await _rows(store, recipients)}
    assert states[sent[0].recipient] == expected[sent[0].recipient]
    assert states[sent[1].recipient] == "bounced"


async def test_the_same_report_twice_in_one_batch_is_saved_once(
    store: SQLStore,
) -> None:
    """Reports about no recipient of ours share a transaction; the repeat's key
    is already taken within it."""
    clock = FakeClock(START)
    dsn = _dsn(clock, "postmaster@bounce.test", "stranger@gmail.com")
    saves = _CountingSaves(store)
    first, again = await _intake(store, clock).ingest_batch([("a", dsn), ("b", dsn)])
    assert saves.calls == [2]
    assert not isinstance(first, Exception) and not isinstance(again, Exception)
    assert [fresh for _, fresh in first.events] == [True]
    assert [fresh for _, fresh in again.events] == [False]
    assert len(await _rows(store, bounce_events)) == 1


async def test_a_store_failure_leaves_every_mail_of_the_batch_unseen(
    store: SQLStore, tmp_path: Path
) -> None:
    clock, sent = await _delivered(store, 3)
    box = mailbox.Maildir(tmp_path / "box")
    for message in sent:
        box.add(_dsn(clock, message.sender, message.recipient))
    inbox = MaildirInbox(tmp_path / "box")

    async def save_late_reports(*_: object) -> list[bool]:
        raise StoreError("saving bounces", "database is away")

    real = store.save_late_reports
    store.save_late_reports = save_late_reports  # type: ignore[assignment]
    with pytest.raises(StoreError):
        await _intake(store, clock).drain(inbox)
    assert len(inbox.unseen()) == 3
    store.save_late_reports = real
    assert await _intake(store, clock).drain(inbox) == {"bounce": 3}
    assert inbox.unseen() == []


async def test_a_nul_in_the_report_is_saved(store: SQLStore) -> None:
    """PostgreSQL refuses NUL in text: the report would fail on every poll."""
    clock, sent = await _delivered(store, 1)
    dsn = _dsn(
        clock, sent[0].sender, sent[0].recipient, diagnostic="550 5.1.1 no\x00such user"
    )
    result = await _intake(store, clock).ingest(dsn, source="t")
    ((event, fresh),) = result.events
    assert fresh and event.effect.value == "suppressed"
    (row,) = await _rows(store, bounce_events)
    assert "\x00" not in str(row["reply"])
    states = {r["address"]: r["state"] for r in await _rows(store, recipients)}
    assert states[sent[0].recipient] == "bounced"


async def test_the_same_dsn_from_two_processes_at_once_acts_once(
    store: SQLStore, database_url: str
) -> None:
    clock, sent = await _delivered(store, 1)
    dsn = _dsn(clock, sent[0].sender, sent[0].recipient)
    other = await SQLStore.open(database_url)
    try:
        results = await asyncio.gather(
            _intake(store, clock).ingest(dsn, source="a"),
            _intake(other, clock).ingest(dsn, source="b"),
        )
    finally:
        await other.close()
    fresh = [f for result in results for _, f in result.events]
    assert sorted(fresh) == [False, True]
    assert len(await _rows(store, bounce_events)) == 1
    assert len(await _rows(store, suppressions)) == 1


async def test_late_news_waits_for_the_owning_node_even_with_no_mail_queued(
    store: SQLStore,
) -> None:
    clock, sent = await _delivered(store, 2)
    result = await _intake(store, clock).ingest(
        _dsn(clock, sent[0].sender, sent[0].recipient), source="t"
    )
    assert [fresh for _, fresh in result.events] == [True]
    (before,) = await _rows(store, lanes)
    # Another node, with an IP of its own (its settings fixed when it starts:
    # the heartbeat claims the IPs it was built with).
    other = _engine(
        store, clock, FakeSender(now=clock.now), ip="127.0.0.9", node="other-node"
    )
    clock.advance(timedelta(minutes=5))
    await other.tick()
    (lane,) = [r for r in await _rows(store, lanes) if r["ip"] == "127.0.0.2"]
    assert lane["day_hard"] == before["day_hard"]
    # The owner, restarted with nothing queued for gmail, applies it once.
    owner = _engine(store, clock, FakeSender(now=clock.now))
    await owner.tick()
    await owner.tick()
    (lane,) = [r for r in await _rows(store, lanes) if r["ip"] == "127.0.0.2"]
    assert lane["day_hard"] == before["day_hard"] + 1
    assert lane["day_delivered"] == before["day_delivered"] - 1
    assert all(e["applied_at"] is not None for e in await _rows(store, bounce_events))


async def test_a_complaint_naming_no_one_counts_for_the_send_its_verp_names(
    store: SQLStore,
) -> None:
    """ARF (RFC 5965) whose original carries no recipient: the VERP it was sent to
    names the send, so it is still that recipient's complaint (issue 15)."""
    clock, sent = await _delivered(store, 1)
    arf = (
        f"From: abuse@isp.test\nTo: {sent[0].sender}\nSubject: complaint\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; "
        'report-type=feedback-report; boundary="B"\n\n--B\nContent-Type: text/plain\n\n'
        "An abuse report.\n\n--B\nContent-Type: message/feedback-report\n\n"
        "Feedback-Type: abuse\nUser-Agent: test/1\nVersion: 1\n\n--B\n"
        "Content-Type: text/rfc822-headers\n\nSubject: Hi\n\n--B--\n"
    ).encode()
    result = await _intake(store, clock).ingest(arf, source="t")
    ((event, fresh),) = result.events
    assert fresh and event.effect.value == "complaint"
    suppressed = {r["address"]: r["reason"] for r in await _rows(store, suppressions)}
    assert suppressed == {sent[0].recipient: "complaint"}
