"""Rendering relayed recipients: the stored message under our trace header."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from warmup.app.ports import EngineStore
from warmup.app.render import TRACE_HEADER, Renderer
from warmup.core.attempt import Claimed
from warmup.core.settings import UnsubscribeSettings

NOW = datetime(2030, 1, 1, tzinfo=UTC)


class _Messages:
    def __init__(
        self, contents: dict[int, bytes], reports: frozenset[int] = frozenset()
    ) -> None:
        self.contents = contents
        self.reports = reports  # our delivery reports (relay.forward_bounces)
        self.reads: list[int] = []

    async def message_for(self, message_id: int) -> bytes:
        self.reads.append(message_id)
        return self.contents[message_id]

    async def relayed_message(self, message_id: int) -> tuple[bytes, bool]:
        return await self.message_for(message_id), message_id in self.reports

    async def template_for(self, campaign_id: int) -> bytes:
        raise AssertionError("relayed mail needs no template")


def _claimed(message_id: int, recipient_id: int = 7) -> Claimed:
    return Claimed(
        id=recipient_id,
        campaign_id=1,
        address="ann@gmail.com",
        domain="gmail.com",
        fields={},
        attempts=0,
        queued_at=NOW,
        message_id=message_id,
    )


def _renderer(store: Any) -> Renderer:
    return Renderer(
        cast(EngineStore, store), return_path="bounces@bounce.test", secret=b"s"
    )


async def test_client_message_id_and_date_are_kept() -> None:
    content = b"Message-ID: <m@shop.example>\r\nDate: x\r\nSubject: s\r\n\r\nbody\r\n"
    renderer = _renderer(_Messages({1: content}))
    mail_from, message = await renderer.render(_claimed(1), NOW)
    trace = mail_from.partition("+")[2].partition("@")[0]
    assert mail_from.endswith("@bounce.test")
    feedback = b"Feedback-ID: 1:bounce.test\r\n"
    assert message == f"{TRACE_HEADER}: {trace}\r\n".encode() + feedback + content


async def test_a_client_feedback_id_is_kept_else_ours_is_added() -> None:
    own = b"Feedback-ID: spring:shop\r\nSubject: s\r\n\r\nbody\r\n"
    renderer = _renderer(_Messages({1: own, 2: b"Subject: s\r\n\r\nbody\r\n"}))
    kept = (await renderer.render(_claimed(1), NOW))[1]
    added = (await renderer.render(_claimed(2), NOW))[1]
    assert kept.count(b"Feedback-ID:") == 1 and b"Feedback-ID: spring:shop" in kept
    # Gmail's feedback loop: campaign id, then the sender id (the bounce domain).
    assert b"\r\nFeedback-ID: 1:bounce.test\r\n" in added


async def test_missing_message_id_and_date_are_added_per_recipient() -> None:
    content = b"Subject: s\r\n\r\nbody\r\n"
    renderer = _renderer(_Messages({1: content}))
    first = (await renderer.render(_claimed(1, 7), NOW))[1]
    second = (await renderer.render(_claimed(1, 8), NOW))[1]
    lines = first.split(b"\r\n")
    assert lines[1].startswith(b"Message-ID: <") and lines[1].endswith(b"@bounce.test>")
    assert lines[2] == b"Date: Tue, 01 Jan 2030 00:00:00 +0000"
    assert first.endswith(content) and first != second


async def test_messages_are_cached_least_recently_used() -> None:
    store = _Messages({n: b"Subject: %d\r\n\r\n" % n for n in range(40)})
    renderer = _renderer(store)
    for n in range(40):
        await renderer.render(_claimed(n), NOW)
    await renderer.render(_claimed(39), NOW)  # cached
    await renderer.render(_claimed(0), NOW)  # evicted long ago: read again
    assert store.reads == [*range(40), 0]


def _unsubscribing(store: Any, relayed: str) -> Renderer:
    return Renderer(
        cast(EngineStore, store),
        return_path="bounces@bounce.test",
        secret=b"s",
        unsubscribe=UnsubscribeSettings(base_url="https://m.test", relayed=relayed),
    )


async def test_relayed_mail_keeps_its_own_list_unsubscribe() -> None:
    own = b"List-Unsubscribe: <https://tool.example/u/1>\r\nSubject: s\r\n\r\nb\r\n"
    bare = b"Subject: s\r\n\r\nb\r\n"
    for relayed in ("keep", "add"):
        renderer = _unsubscribing(_Messages({1: own, 2: bare}), relayed)
        message = (await renderer.render(_claimed(1), NOW))[1]
        assert message.count(b"List-Unsubscribe:") == 1
        assert b"tool.example" in message and b"List-Unsubscribe-Post" not in message
        message = (await renderer.render(_claimed(2), NOW))[1]
        assert (b"List-Unsubscribe: <https://m.test/u/u7-c1-" in message) == (
            relayed == "add"
        )
        assert (
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in message
        ) == (relayed == "add")


class _Templates:
    def __init__(self, content: bytes) -> None:
        self.content = content

    async def template_for(self, campaign_id: int) -> bytes:
        return self.content


async def test_a_template_gets_links_unless_it_has_its_own() -> None:
    bare = b"From: shop@shop.test\nSubject: Hi {{ name }}\n\nHello\n"
    own = b"From: shop@shop.test\nList-Unsubscribe: <mailto:x@shop.test>\n\nHello\n"
    claimed = Claimed(
        id=9,
        campaign_id=4,
        address="ann@gmail.com",
        domain="gmail.com",
        fields={"name": "Ann"},
        attempts=0,
        queued_at=NOW,
    )
    message = (await _unsubscribing(_Templates(bare), "keep").render(claimed, NOW))[1]
    assert b"List-Unsubscribe: <https://m.test/u/u9-c4-" in message
    assert b"<mailto:unsubscribe+u9-c4-" in message and b"@bounce.test>" in message
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in message
    message = (await _unsubscribing(_Templates(own), "keep").render(claimed, NOW))[1]
    assert message.count(b"List-Unsubscribe") == 1
    plain = await _renderer(_Templates(bare)).render(claimed, NOW)
    assert b"List-Unsubscribe" not in plain[1]  # no unsubscribe.base_url: no links


async def test_a_delivery_report_of_ours_goes_out_with_the_null_sender() -> None:
    report = b"Message-ID: <dsn.7@bounce.test>\r\nSubject: s\r\n\r\nbody\r\n"
    renderer = _renderer(_Messages({1: report}, reports=frozenset({1})))
    mail_from, message = await renderer.render(_claimed(1), NOW)
    assert mail_from == ""  # RFC 3464 / 5321 4.5.5: nothing may answer it
    assert message.endswith(report)
    assert b"Feedback-ID" not in message and b"List-Unsubscribe" not in message
