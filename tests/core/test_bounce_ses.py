"""Amazon SES notifications (core/bounces/ses.py), table-driven."""

from __future__ import annotations

import json

import pytest

from warmup.core.bounces.ses import parse_ses

BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "reportingMTA": "dsn; a.ses.test",
        "bouncedRecipients": [
            {
                "emailAddress": "ann@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            },
            {"emailAddress": ""},  # no address: skipped
            {"status": "5.1.1"},  # no address: skipped
        ],
    },
}


def test_a_bounce_keeps_ses_fields() -> None:
    found = parse_ses(json.dumps(BOUNCE))
    assert found is not None
    assert (found.kind, found.permanent) == ("bounce", True)
    (recipient,) = found.recipients
    assert recipient.recipient == "ann@example.com"
    assert (recipient.action, recipient.status) == ("failed", "5.1.1")
    assert recipient.diagnostic == "smtp; 550 5.1.1 user unknown"
    assert recipient.remote_mta == "dsn; a.ses.test"


def test_an_sns_envelope_carries_the_notification_as_a_string() -> None:
    wrapped = {"Type": "Notification", "Message": json.dumps(BOUNCE)}
    found = parse_ses(json.dumps(wrapped))
    assert found is not None and found.recipients[0].recipient == "ann@example.com"


def test_line_breaks_inserted_by_transport_are_undone() -> None:
    text = json.dumps(BOUNCE)
    folded = "Some preamble\r\n" + "\r\n ".join(
        text[i : i + 60] for i in range(0, len(text), 60)
    )
    found = parse_ses(folded)
    assert found is not None and found.recipients[0].status == "5.1.1"


@pytest.mark.parametrize(
    ("notification", "kind", "permanent", "recipients"),
    [
        (
            {
                "eventType": "Complaint",
                "complaint": {"complainedRecipients": [{"emailAddress": "b@x.test"}]},
            },
            "feedback",
            True,
            [("b@x.test", "")],
        ),
        (
            {"notificationType": "Delivery", "delivery": {"recipients": ["c@x.test"]}},
            "delivery-report",
            True,
            [("c@x.test", "delivered")],
        ),
        (
            {"notificationType": "Bounce", "bounce": {"bounceType": "Transient"}},
            "bounce",
            False,
            [],
        ),
        # A section that is not an object, or recipients that are not a list.
        ({"notificationType": "Bounce", "bounce": "?"}, "bounce", True, []),
        (
            {"notificationType": "Bounce", "bounce": {"bouncedRecipients": "x"}},
            "bounce",
            True,
            [],
        ),
    ],
)
def test_kinds_and_odd_sections(
    notification: dict[str, object],
    kind: str,
    permanent: bool,
    recipients: list[tuple[str, str]],
) -> None:
    found = parse_ses(json.dumps(notification))
    assert found is not None
    assert (found.kind, found.permanent) == (kind, permanent)
    assert [(r.recipient, r.action) for r in found.recipients] == recipients


@pytest.mark.parametrize(
    "text",
    [
        "a plain mail that mentions nothing",
        "notificationType but no JSON at all",
        'notificationType {"not": "closed"',
        '{"notificationType": "Open", "open": {}}',  # not a kind we know
        '["notificationType"]',  # JSON, not an object
        '{"Message": "[1, 2]", "eventType": "x"}',  # envelope around a non-object
    ],
)
def test_anything_else_is_none(text: str) -> None:
    assert parse_ses(text) is None
