"""Delivery reports for relayed mail (``relay.forward_bounces``): RFC 3464 DSNs
sent back to the client's original envelope sender.

Rules:

1. Only a hard bounce (live reply or late report) or an expiry (retry window or
   deadline) of a *relayed* message produces a report; the report goes to the
   envelope sender the client gave at submission.
2. Never to the null sender ``<>``, never to one of our own domains (bounce/VERP
   domain, HELO names, the host, signing domains) nor to a ``postmaster`` or
   ``mailer-daemon`` mailbox anywhere, never about a report (a message with a
   ``multipart/report`` body or one we generated): no loops.
3. The report is ``multipart/report; report-type=delivery-status``: a human part,
   ``message/delivery-status`` (Reporting-MTA, Arrival-Date, Original-/Final-
   Recipient, ``Action: failed``, Status, Remote-MTA when known, ``Diagnostic-Code:
   smtp; <reply>``) and the original's header section as ``text/rfc822-headers``.
   It is sent with the null envelope sender, so nothing ever answers it.
4. Status: the reply's enhanced code when it is permanent (5.x.x); an expiry
   without one is ``5.4.7`` (delivery time expired), a bounce without one ``5.0.0``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

__all__ = ["ReturnedMail", "build_dsn", "dsn_target", "header_section", "is_report"]

_LOOP_MAILBOXES = frozenset({"postmaster", "mailer-daemon"})
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:[ \t]*([^;\r\n]*)", re.I | re.M)


def dsn_target(mail_from: str, own_domains: Collection[str]) -> str | None:
    """Where a report about mail from ``mail_from`` may go (None: nowhere)."""
    address = mail_from.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or _CONTROL.search(address):
        return None
    domain = domain.lower().rstrip(".")
    if local.lower() in _LOOP_MAILBOXES:
        return None
    for own in own_domains:
        own = own.lower().rstrip(".")
        if own and (domain == own or domain.endswith("." + own)):
            return None
    return f"{local}@{domain}"


def header_section(content: bytes) -> bytes:
    """The header section of a stored message (up to its blank line)."""
    for blank in (b"\r\n\r\n", b"\n\n"):
        end = content.find(blank)
        if end >= 0:
            return content[: end + len(blank) // 2]
    return content


def is_report(content: bytes) -> bool:
    """Whether the message is itself a report (a ``multipart/report`` body)."""
    found = _CONTENT_TYPE.search(header_section(content))
    return found is not None and found.group(1).strip().lower() == b"multipart/report"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnedMail:
    """What the report says about one recipient of one relayed message."""

    recipient_id: int  # ours: makes the report's Message-ID (one per recipient)
    sender: str  # the client's envelope sender: the report's recipient
    recipient: str  # the relayed message's recipient that failed
    expired: bool  # an expiry, else a hard bounce
    reply: str | None  # the last reply (None: none, e.g. a deadline)
    status: str | None  # its enhanced code, if known
    remote_mta: str | None = None
    received_at: datetime  # when the relay accepted the original
    at: datetime  # when it failed
    original_headers: bytes = b""  # the original (only its header section is used)


def _status(report: ReturnedMail) -> str:
    for text in (report.status or "", report.reply or ""):
        found = _ENHANCED.search(text)
        if found is not None and found.group(1) == "5":
            return found.group(0)
    return "5.4.7" if report.expired else "5.0.0"


def _clean(text: str, limit: int = 900) -> str:
    return _CONTROL.sub(" ", text).strip()[:limit]


def _human(report: ReturnedMail) -> str:
    if report.expired:
        why = "could not be delivered in time and was given up"
    else:
        why = "was refused permanently by the receiving server"
    reply = _clean(report.reply or "") or "(no reply: not sent before its deadline)"
    return (
        f"Your message to <{report.recipient}> {why}.\r\n\r\n"
        f"The last reply was:\r\n    {reply}\r\n\r\n"
        "Its header section is attached. This is an automatic report;\r\n"
        "please do not reply to it.\r\n"
    )


def _status_part(report: ReturnedMail, reporting_mta: str) -> str:
    lines = [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {format_datetime(report.received_at)}",
        "",
        f"Original-Recipient: rfc822; {report.recipient}",
        f"Final-Recipient: rfc822; {report.recipient}",
        "Action: failed",
        f"Status: {_status(report)}",
    ]
    if report.remote_mta:
        lines.append(f"Remote-MTA: dns; {_clean(report.remote_mta, 255)}")
    if report.reply:
        lines.append(f"Diagnostic-Code: smtp; {_clean(report.reply)}")
    lines.append(f"Last-Attempt-Date: {format_datetime(report.at)}")
    return "\r\n".join(lines) + "\r\n"


def build_dsn(
    report: ReturnedMail, *, reporting_mta: str, from_domain: str, now: datetime
) -> bytes:
    """The whole report message (RFC 3464, RFC 6522), CRLF line ends."""
    boundary = f"=_warmup-dsn-{report.recipient_id}-{int(now.timestamp())}"
    subject = "Delivery time expired" if report.expired else "Undelivered mail"
    lines = header_section(report.original_headers).replace(b"\r\n", b"\n")
    original = lines.replace(b"\n", b"\r\n").rstrip(b"\r\n") + b"\r\n"
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{from_domain}>\r\n"
        f"To: <{report.sender}>\r\n"
        f"Subject: {subject}: returned to sender\r\n"
        f"Date: {format_datetime(now)}\r\n"
        f"Message-ID: <dsn.{report.recipient_id}@{from_domain}>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n'
        "\r\n"
        "This is a MIME-encapsulated delivery status report.\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{_human(report)}"
        f"\r\n--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        f"{_status_part(report, reporting_mta)}"
        f"\r\n--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
    )
    tail = f"\r\n--{boundary}--\r\n"
    return head.encode("utf-8") + original + tail.encode("ascii")
