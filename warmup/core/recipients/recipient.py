"""One input row -> a recipient ready to queue, or the reason it is refused."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from warmup.core.recipients.address import AddressError, parse_address

__all__ = [
    "ENGAGEMENT_COLUMNS",
    "MAX_FIELD_BYTES",
    "MAX_HEADER_FIELD_CHARS",
    "NewRecipient",
    "RowError",
    "parse_recipient_row",
]

ENGAGEMENT_COLUMNS = ("last_open_at", "last_click_at", "score")
#: Longest value of any column, in UTF-8 bytes: under 1 MB, so rendering a
#: recipient's mail stays a matter of milliseconds.
MAX_FIELD_BYTES = 960 * 1024
#: Longest value that goes into a header (RFC 5322's line limit): RFC 2047
#: encoding costs ~20 µs a character, so this bounds a header's cost.
MAX_HEADER_FIELD_CHARS = 998
# C0 controls but TAB, and DEL: never in a header, never in a text part.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class RowError(ValueError):
    """Why an input row cannot be queued (the message names the column)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRecipient:
    address: str
    domain: str
    engagement_score: float | None
    engaged_at: datetime | None
    # Placeholder values for the template (always includes "email").
    fields: Mapping[str, str]

    def __post_init__(self) -> None:
        if self.engaged_at is not None and self.engaged_at.tzinfo is None:
            raise ValueError(f"engaged_at must be aware, got {self.engaged_at!r}")


def _instant(column: str, text: str) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text), time(0, tzinfo=UTC))
        except ValueError:
            raise RowError(
                f"{column}: expected an ISO 8601 date, got {text!r}"
            ) from None
    return (
        parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    )


def _score(text: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"score: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise RowError(f"score: expected a finite number, got {text!r}")
    return value


def _check_value(column: str, value: str, *, in_header: bool) -> None:
    if len(value) > MAX_FIELD_BYTES // 4 and (
        len(value) > MAX_FIELD_BYTES or len(value.encode("utf-8")) > MAX_FIELD_BYTES
    ):
        raise RowError(
            f"{column}: value longer than {MAX_FIELD_BYTES:,} bytes "
            f"({len(value):,} characters)"
        )
    if in_header and len(value) > MAX_HEADER_FIELD_CHARS:
        raise RowError(
            f"{column}: value longer than {MAX_HEADER_FIELD_CHARS} characters "
            f"({len(value):,}), but the template puts it in a header"
        )
    found = _CONTROL.search(value)
    if found is None:
        return
    if found.group() in "\r\n":
        raise RowError(
            f"{column}: line break in value (header injection), got {value[:60]!r}"
        )
    raise RowError(
        f"{column}: control character {found.group()!r} at position "
        f"{found.start() + 1} of the value"
    )


def parse_recipient_row(
    values: Mapping[str, str],
    placeholders: Collection[str],
    header_placeholders: Collection[str] = (),
) -> NewRecipient:
    """Validate one row; raise RowError naming the column at fault.

    Values with control characters (CR and LF above all: they would let a row
    inject headers) or longer than MAX_FIELD_BYTES are refused, and so are values
    for ``header_placeholders`` longer than MAX_HEADER_FIELD_CHARS. Every
    placeholder the template uses must be present in the row.
    """
    for column, value in values.items():
        _check_value(column, value, in_header=column in header_placeholders)
    raw = values.get("email")
    if raw is None:
        raise RowError("email: missing")
    try:
        address = parse_address(raw)
    except AddressError as exc:
        raise RowError(f"email: {exc}") from None
    missing = [name for name in placeholders if name not in values]
    if missing:
        raise RowError(
            f"{missing[0]}: missing, but the template uses {{{{ {missing[0]} }}}}"
        )
    opened = _instant("last_open_at", values.get("last_open_at", "").strip())
    clicked = _instant("last_click_at", values.get("last_click_at", "").strip())
    engaged = max((t for t in (opened, clicked) if t is not None), default=None)
    fields = {name: values[name] for name in placeholders}
    fields["email"] = address.address
    return NewRecipient(
        address=address.address,
        domain=address.domain,
        engagement_score=_score(values.get("score", "").strip()),
        engaged_at=engaged,
        fields=fields,
    )
