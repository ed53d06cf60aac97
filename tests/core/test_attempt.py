"""Values of one tick (core/attempt.py): a send's outcome, and an empty tick."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest

from warmup.core.attempt import STAGES, SendOutcome, TickRecord
from warmup.core.model import SendStage
from warmup.core.replies.classify import ConnectionFailure, SMTPReply

OK = SMTPReply(code=250, enhanced="2.0.0", text="ok")


@pytest.mark.parametrize(
    ("reply", "accepted"),
    [
        (OK, True),
        (SMTPReply(code=299, enhanced=None, text=""), True),
        (SMTPReply(code=421, enhanced="4.7.28", text="slow down"), False),
        (SMTPReply(code=550, enhanced="5.1.1", text="no such user"), False),
        (SMTPReply(code=None, enhanced=None, text="garbled"), False),
    ],
)
def test_accepted_means_a_2xx_reply(reply: SMTPReply, accepted: bool) -> None:
    assert SendOutcome(reply=reply, stage=SendStage.data).accepted is accepted


def test_a_connection_failure_is_not_accepted() -> None:
    outcome = SendOutcome(
        reply=None, failure=ConnectionFailure.timeout, stage=SendStage.ehlo
    )
    assert not outcome.accepted


@pytest.mark.parametrize(
    ("reply", "failure"), [(None, None), (OK, ConnectionFailure.reset)]
)
def test_exactly_one_of_reply_and_failure(
    reply: SMTPReply | None, failure: ConnectionFailure | None
) -> None:
    with pytest.raises(ValueError, match="exactly one of reply and failure"):
        SendOutcome(reply=reply, failure=failure)


@pytest.mark.parametrize("stage", [*STAGES, None])
def test_known_stages_are_accepted(stage: SendStage | None) -> None:
    assert SendOutcome(reply=OK, stage=stage).stage == stage


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="stage must be one of"):
        SendOutcome(reply=OK, stage=cast(SendStage, "quit"))


@pytest.mark.parametrize(
    "field",
    ["suppressions", "dropped", "released", "events", "days", "late_reports_applied"],
)
def test_a_tick_is_empty_until_something_is_in_it(field: str) -> None:
    record = TickRecord(claimer="node")
    assert not record
    value = (1, datetime(2030, 1, 1, tzinfo=UTC)) if field == "released" else 1
    getattr(record, field).append(value)
    assert record


def test_a_tick_with_a_lane_change_is_not_empty() -> None:
    record = TickRecord()
    record.lanes[1] = object()  # type: ignore[assignment]
    assert record
