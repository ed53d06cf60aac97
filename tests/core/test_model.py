"""The closed string sets are enums whose values are the strings already stored in
the database and written in JSON, so turning them into enums changed no data."""

from __future__ import annotations

import json
from enum import StrEnum

import pytest

from warmup.core.model import DNSError, LaneCause, SendStage


@pytest.mark.parametrize(
    ("enum", "stored"),
    [
        (
            LaneCause,
            "throttle block authentication resume recovering recovered advance "
            "repeat idle_reset step_back complaint_rate auth_failing reputation_hold "
            "reputation operator_pause operator_resume unreachable",
        ),
        (SendStage, "connect ehlo starttls mail rcpt data"),
        (DNSError, "nxdomain nullmx nodata temporary"),
    ],
)
def test_enum_values_are_the_stored_strings(enum: type[StrEnum], stored: str) -> None:
    values = [member.value for member in enum]
    assert values == stored.split()
    for value in values:
        member = enum(value)
        assert member == value
        assert json.dumps(member) == json.dumps(value)
        assert f"{member}" == value
