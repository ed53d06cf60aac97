"""An unauthenticated-mail block pauses the lane with cause `authentication`."""

from __future__ import annotations

import pytest

from tests.core.test_lane import NEXT_WINDOW, NOW, SCHEDULE
from warmup.core.lanes.lane import new_lane, on_reply
from warmup.core.model import LaneState
from warmup.core.replies.classify import classify_reply, parse_reply

GMAIL_26 = (
    "550-5.7.26 Your email has been blocked because the sender is unauthenticated. "
    "Gmail requires all senders to authenticate with either SPF or DKIM."
)
GMAIL_27 = "550 5.7.27 The sender is unauthenticated: SPF did not pass for shop.example"
MICROSOFT = (
    "550 5.7.515 Access denied, sending domain shop.example doesn't meet the "
    "required authentication level."
)


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        (GMAIL_26, "authentication"),
        (GMAIL_27, "authentication"),
        (MICROSOFT, "authentication"),
        ("550 5.7.1 Service unavailable, client host blocked using Spamhaus", "block"),
    ],
)
def test_block_cause(text: str, cause: str) -> None:
    found = classify_reply(parse_reply(text))
    lane, events = on_reply(
        new_lane("192.0.2.1", "gmail", schedule=SCHEDULE),
        found.verdict,
        now=NOW,
        schedule=SCHEDULE,
        next_window=NEXT_WINDOW,
        reply=text,
        reason=found.reason,
        enhanced=found.enhanced,
    )
    assert lane.state is LaneState.paused
    (event,) = events
    assert event.cause == cause
    assert ("run `warmup doctor`" in event.detail) is (cause == "authentication")


def test_a_temporary_auth_reply_is_not_a_pause() -> None:
    text = (
        "421-4.7.26 Gmail requires all senders to authenticate with either SPF or DKIM."
    )
    found = classify_reply(parse_reply(text))
    lane, events = on_reply(
        new_lane("192.0.2.1", "gmail", schedule=SCHEDULE),
        found.verdict,
        now=NOW,
        schedule=SCHEDULE,
        next_window=NEXT_WINDOW,
        reply=text,
        reason=found.reason,
        enhanced=found.enhanced,
    )
    assert lane.state is LaneState.backed_off
    assert [e.cause for e in events] == ["throttle"]
