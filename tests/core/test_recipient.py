from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warmup.core.recipients.recipient import RowError, parse_recipient_row
from warmup.core.recipients.suppression import lookup_keys, make_suppression


def test_a_row_becomes_a_recipient_with_its_fields() -> None:
    row = {
        "email": "Ann@Gmail.com",
        "first_name": "Ann",
        "extra": "x",
        "last_open_at": "2030-01-02T03:04:05",
        "last_click_at": "2030-01-05",
        "score": "7.5",
    }
    recipient = parse_recipient_row(row, {"first_name"})
    assert recipient.address == "Ann@gmail.com"
    assert recipient.domain == "gmail.com"
    assert recipient.fields == {"first_name": "Ann", "email": "Ann@gmail.com"}
    assert recipient.engagement_score == 7.5
    assert recipient.engaged_at == datetime(2030, 1, 5, tzinfo=UTC)


def test_engagement_is_optional_and_offsets_become_utc() -> None:
    plain = parse_recipient_row({"email": "a@b.com"}, set())
    assert plain.engagement_score is None and plain.engaged_at is None
    tokyo = parse_recipient_row(
        {"email": "a@b.com", "last_open_at": "2030-01-01T09:00:00+09:00"}, set()
    )
    assert tokyo.engaged_at == datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"name": "x"}, "email: missing"),
        ({"email": "nope"}, "email: expected local@domain"),
        ({"email": "a@b.com", "name": "x\r\nBcc: y@z.com"}, "name: line break"),
        ({"email": "a@b.com"}, "first_name: missing, but the template uses"),
        (
            {"email": "a@b.com", "first_name": "A", "score": "high"},
            "score: expected a number",
        ),
        ({"email": "a@b.com", "first_name": "A", "score": "nan"}, "finite"),
        (
            {"email": "a@b.com", "first_name": "A", "last_open_at": "yesterday"},
            "last_open_at: expected an ISO 8601 date",
        ),
    ],
)
def test_bad_rows_name_the_column(row: dict[str, str], message: str) -> None:
    with pytest.raises(RowError, match=message):
        parse_recipient_row(row, {"first_name"})


def test_suppression_lookup_keys_cover_domains() -> None:
    assert lookup_keys(["a@x.com", "b@x.com"]) == {"a@x.com", "b@x.com", "@x.com"}
    entry = make_suppression(
        "@X.com", reason="r", source="s", now=datetime(2030, 1, 1, tzinfo=UTC)
    )
    assert entry.address == "@x.com" and entry.kind == "domain"
