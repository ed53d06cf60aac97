"""Relayed messages: the client's bytes, kept as they are but for a few headers.

At acceptance the header section is cut into fields without parsing the body:
``Bcc``/``Resent-Bcc``, the campaign header, ``X-Warmup-Deadline`` and our own
trace header are removed, the campaign header's and the deadline's values are
returned, and a ``Received`` trace field is put on
top (RFC 5321 §4.4). At sending time our trace header goes on top, with a
``Message-ID`` and a ``Date`` only when the client gave none (RFC 6409 §8).
Everything else, body included, goes out byte for byte as the client wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from warmup.core.relay.policy import Refusal, check_campaign_name

__all__ = [
    "DEADLINE_HEADER",
    "MAX_FIELD_BYTES",
    "MAX_HEADER_BYTES",
    "PRIORITY_HEADER",
    "PreparedMessage",
    "header_names",
    "header_value",
    "parse_deadline",
    "parse_priority",
    "prepare_message",
    "received_field",
    "with_headers",
]

_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:")
_LINE_END = re.compile(rb"\r\n|\n|\r")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9.:_\[\]-]{1,255}$")
#: A header field, folds included, and the whole header section.
MAX_FIELD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024
# C0 controls but TAB, and DEL (a field holds CR and LF only as line ends).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: What is not sent by this instant expires unsent (RFC 5322 date or ISO 8601;
#: UTC unless it names a zone).
DEADLINE_HEADER = "X-Warmup-Deadline"
#: Sending order against other queued mail (see :func:`parse_priority`).
PRIORITY_HEADER = "X-Warmup-Priority"
_ALWAYS_REMOVED = frozenset(
    {"bcc", "resent-bcc", DEADLINE_HEADER.lower(), PRIORITY_HEADER.lower()}
)
# core.recipients.routing.engagement_priority: a list score s sorts as 1e12 + s
_SCORED = 1e12


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedMessage:
    content: bytes
    campaign: str | None  # the campaign header's value, if there was one
    deadline: datetime | None = None  # X-Warmup-Deadline, if there was one
    priority: float | None = None  # X-Warmup-Priority, if there was one


def parse_priority(text: str, *, now: datetime) -> float:
    """An X-Warmup-Priority value as a claim priority (higher first):

    ``high`` before every list row, ``low`` after every one (as relayed mail
    without the header), ``normal`` like a recipient engaged ``now``, and a number
    0-100 like a list row with that ``score``. ValueError naming the value.
    """
    word = text.strip().lower()
    named = {"high": 2 * _SCORED, "normal": now.timestamp(), "low": -1.0}
    if word in named:
        return named[word]
    try:
        score = float(word)
    except ValueError:
        score = -1.0
    if not 0 <= score <= 100:
        raise ValueError(f"expected high, normal, low or 0-100, got {text!r}")
    return _SCORED + score


def parse_deadline(text: str) -> datetime:
    """An X-Warmup-Deadline value; ValueError naming it if it is no date."""
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            moment = None
    if moment is None:
        raise ValueError(f"expected an RFC 5322 or ISO 8601 date, got {text!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fields(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """Header fields as (lower-cased name, raw bytes with folds) and the rest."""
    fields: list[tuple[str, list[bytes]]] = []
    position = 0
    while position < len(raw):
        # A bare CR ends a line too: the sender turns it into CRLF (aiosmtplib
        # does), so a field behind one would go out as a field of its own.
        found = _LINE_END.search(raw, position)
        end = len(raw) if found is None else found.end()
        line = raw[position:end]
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)  # a fold: linear however many there are
        else:
            match = _FIELD.match(line)
            if match is None:
                break  # the blank line (or a body with no blank line before it)
            fields.append((match.group(1).decode("ascii").lower(), [line]))
        position = end
    return [(name, b"".join(lines)) for name, lines in fields], raw[position:]


def _check_fields(fields: list[tuple[str, bytes]]) -> Refusal | None:
    """Refuse a header section the next hop should never see: too large, a field
    too long, or a control character (NUL above all) in a field."""
    total = sum(len(field) for _, field in fields)
    if total > MAX_HEADER_BYTES:
        return Refusal(
            552, "5.3.4", f"Header section longer than {MAX_HEADER_BYTES} bytes"
        )
    for name, field in fields:
        shown = _safe(name[:64])
        if len(field) > MAX_FIELD_BYTES:
            return Refusal(
                552, "5.3.4", f"Header {shown} longer than {MAX_FIELD_BYTES} bytes"
            )
        found = _CONTROL.search(field)
        if found is not None:
            return Refusal(
                550, "5.6.0", f"Control character {found.group()!r} in header {shown}"
            )
    return None


def _value(field: bytes) -> str:
    text = field.partition(b":")[2].decode("utf-8", errors="replace")
    return re.sub(r"\r?\n", "", text).strip()


def prepare_message(
    raw: bytes,
    *,
    campaign_header: str,
    trace_header: str,
    received: str,
    now: datetime | None = None,
) -> PreparedMessage | Refusal:
    """Clean a submitted message (see the module docstring); ``received`` is the
    trace field to put on top, from :func:`received_field`."""
    now = now or datetime.fromtimestamp(0, UTC)
    fields, rest = _fields(raw)
    if not fields:
        return Refusal(550, "5.6.0", "The message has no header section")
    refused = _check_fields(fields)
    if refused is not None:
        return refused
    wanted = campaign_header.lower()
    campaign: str | None = None
    deadline: datetime | None = None
    priority: float | None = None
    for name, field in fields:
        if name == wanted and campaign is None:
            try:
                campaign = check_campaign_name(_value(field))
            except ValueError as exc:
                return Refusal(550, "5.6.0", f"Bad {campaign_header} header: {exc}")
        elif name == DEADLINE_HEADER.lower() and deadline is None:
            try:
                deadline = parse_deadline(_value(field))
            except ValueError as exc:
                return Refusal(550, "5.6.0", f"Bad {DEADLINE_HEADER} header: {exc}")
        elif name == PRIORITY_HEADER.lower() and priority is None:
            try:
                priority = parse_priority(_value(field), now=now)
            except ValueError as exc:
                return Refusal(550, "5.6.0", f"Bad {PRIORITY_HEADER} header: {exc}")
    dropped = _ALWAYS_REMOVED | {wanted, trace_header.lower()}
    kept = [field for name, field in fields if name not in dropped]
    content = b"".join([received.encode("ascii"), *kept, rest])
    return PreparedMessage(
        content=content, campaign=campaign, deadline=deadline, priority=priority
    )


def _safe(name: str) -> str:
    return name if _SAFE_NAME.match(name) else "unknown"


def received_field(
    *, helo: str | None, peer_ip: str, hostname: str, protocol: str, now: datetime
) -> str:
    """``Received: from HELO ([IP]) by HOST with PROTOCOL; DATE`` (RFC 5321 §4.4),
    the client-chosen HELO name reduced to safe characters."""
    return (
        f"Received: from {_safe(helo or '')} ([{_safe(peer_ip)}])\r\n"
        f"\tby {_safe(hostname)} with {protocol}; {format_datetime(now)}\r\n"
    )


def header_value(content: bytes, name: str) -> str | None:
    """The first ``name`` header field's unfolded value (e.g. the Message-ID)."""
    wanted = name.lower()
    for field_name, field in _fields(content)[0]:
        if field_name == wanted:
            return _value(field)
    return None


def header_names(content: bytes) -> frozenset[str]:
    """The lower-cased names of a message's header fields."""
    return frozenset(name for name, _ in _fields(content)[0])


def with_headers(content: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    """Put ASCII header fields (ours: trace, Message-ID, Date) on top."""
    lines = [f"{name}: {value}\r\n".encode("ascii") for name, value in headers]
    return b"".join([*lines, content])
