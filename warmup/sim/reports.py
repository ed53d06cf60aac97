"""Report mails a receiving provider sends back: RFC 3464 DSNs and RFC 5965 ARF.

The simulated ISPs write these into a maildir (as a bounce mailbox would receive
them), and tests build them to feed ``warmup bounces ingest``.
"""

from __future__ import annotations

import email.utils
import uuid
from datetime import datetime
from email.parser import BytesHeaderParser

__all__ = ["build_arf", "build_dsn", "returned_headers"]


def returned_headers(message: bytes) -> str:
    """The header block of a sent message, as a DSN or ARF report returns it."""
    head, _, _ = message.replace(b"\r\n", b"\n").partition(b"\n\n")
    return head.decode("utf-8", "replace") + "\n"


def _report(
    *,
    to: str,
    sender: str,
    subject: str,
    now: datetime,
    report_type: str,
    domain: str,
    parts: list[tuple[str, str]],
) -> bytes:
    """A multipart/report mail; written out by hand because the stdlib generator
    wants ``message/delivery-status`` bodies as parsed header blocks."""
    boundary = f"=_report_{uuid.uuid4().hex}"
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {email.utils.format_datetime(now)}",
        f"Message-ID: {email.utils.make_msgid(domain=domain)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f"Content-Type: multipart/report; report-type={report_type};",
        f'\tboundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
    ]
    for content_type, body in parts:
        lines += [
            f"--{boundary}",
            f"Content-Type: {content_type}",
            "Content-Transfer-Encoding: 7bit",
            "",
            body.rstrip("\n"),
        ]
    lines += [f"--{boundary}--", ""]
    return "\n".join(lines).replace("\n", "\r\n").encode("utf-8")


def build_dsn(
    *,
    to: str,
    recipient: str,
    diagnostic: str,
    reporting_mta: str,
    original_headers: str,
    now: datetime,
    action: str = "failed",
) -> bytes:
    """A DSN for one recipient, mailed to ``to`` (the original envelope sender)."""
    code = diagnostic.split()[1] if len(diagnostic.split()) > 1 else "5.0.0"
    human = (
        f"This is the mail system at host {reporting_mta}.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        f"<{recipient}>: {diagnostic}\n"
    )
    status = (
        f"Reporting-MTA: dns; {reporting_mta}\n"
        f"Arrival-Date: {email.utils.format_datetime(now)}\n\n"
        f"Final-Recipient: rfc822; {recipient}\n"
        f"Original-Recipient: rfc822; {recipient}\n"
        f"Action: {action}\n"
        f"Status: {code}\n"
        f"Remote-MTA: dns; {reporting_mta}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n"
    )
    return _report(
        to=to,
        sender=f"MAILER-DAEMON@{reporting_mta}",
        subject="Delivery Status Notification (Failure)",
        now=now,
        report_type="delivery-status",
        domain=reporting_mta,
        parts=[
            ("text/plain; charset=us-ascii", human),
            ("message/delivery-status", status),
            ("text/rfc822-headers", original_headers),
        ],
    )


def build_arf(
    *,
    to: str,
    complainer: str,
    source_ip: str,
    reporting_domain: str,
    original_headers: str,
    now: datetime,
) -> bytes:
    """An RFC 5965 abuse report about one message, mailed to ``to``."""
    original = BytesHeaderParser().parsebytes(original_headers.encode())
    feedback = (
        "Feedback-Type: abuse\n"
        f"User-Agent: {reporting_domain}-FBL/1.0\n"
        "Version: 1\n"
        f"Original-Mail-From: {original.get('Return-Path', '')}\n"
        f"Original-Rcpt-To: {complainer}\n"
        f"Source-IP: {source_ip}\n"
        f"Arrival-Date: {email.utils.format_datetime(now)}\n"
        f"Reported-Domain: {reporting_domain}\n"
    )
    return _report(
        to=to,
        sender=f"feedbackloop@{reporting_domain}",
        subject=f"Complaint about message from {source_ip}",
        now=now,
        report_type="feedback-report",
        domain=reporting_domain,
        parts=[
            (
                "text/plain; charset=us-ascii",
                "This is an email abuse report for an email message received "
                f"from IP {source_ip}.",
            ),
            ("message/feedback-report", feedback),
            ("text/rfc822-headers", original_headers),
        ],
    )
