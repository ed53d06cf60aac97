"""Feedback-ID (Gmail's feedback loop) on template mail, signed by DKIM."""

from __future__ import annotations

import email
import email.policy
import hashlib
from datetime import UTC, datetime
from typing import cast

from warmup.app.ports import EngineStore
from warmup.app.render import Renderer
from warmup.app.sign import MessageSigner
from warmup.core.attempt import Claimed
from warmup.core.auth.dkim import DEFAULT_HEADERS, SigningKey

NOW = datetime(2030, 1, 1, tzinfo=UTC)
PLAIN = b"From: Shop <news@shop.example>\nSubject: Hi\n\nHello\n"
OWN = (
    b"From: Shop <news@shop.example>\nFeedback-ID: spring:news:shop\n"
    b"Subject: Hi\n\nHi\n"
)


class _Templates:
    async def template_for(self, campaign_id: int) -> bytes:
        return OWN if campaign_id == 2 else PLAIN

    async def message_for(self, message_id: int) -> bytes:
        raise AssertionError("no relayed mail here")

    async def relayed_message(self, message_id: int) -> tuple[bytes, bool]:
        raise AssertionError("no relayed mail here")


def _claimed(campaign_id: int) -> Claimed:
    return Claimed(
        id=7,
        campaign_id=campaign_id,
        address="ann@gmail.com",
        domain="gmail.com",
        fields={},
        attempts=0,
        queued_at=NOW,
    )


async def test_template_mail_carries_a_signed_feedback_id() -> None:
    key = SigningKey(
        domain="shop.example",
        selector="s",
        algorithm="rsa-sha256",
        headers=DEFAULT_HEADERS,
        sign=lambda data: hashlib.sha256(data).digest(),
    )
    renderer = Renderer(
        cast(EngineStore, _Templates()),
        return_path="bounces@bounce.example",
        secret=b"k" * 32,
        signer=MessageSigner([key]),
    )
    rendered = await renderer.render_signed(_claimed(41), NOW)
    assert isinstance(rendered, tuple)
    message = email.message_from_bytes(rendered[1], policy=email.policy.default)
    assert message["Feedback-ID"] == "41:bounce.example"
    tags = dict(
        part.strip().split("=", 1)
        for part in str(message["DKIM-Signature"]).split(";")
        if "=" in part
    )
    assert "feedback-id" in tags["h"].replace(" ", "").lower().split(":")
    # A template with its own Feedback-ID keeps it, alone.
    own = (await renderer.render(_claimed(2), NOW))[1]
    assert own.count(b"Feedback-ID:") == 1 and b"Feedback-ID: spring:news:shop" in own
