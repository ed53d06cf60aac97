"""Bounce mails: DSNs, non-standard NDRs, ARF feedback and auto-replies -> verdicts.

Rules:

1. :func:`parse_bounce` never raises. Bytes the stdlib ``email`` parser cannot read,
   or MIME it chokes on, give a ``not-bounce`` report with no recipients.
2. The kind is decided in this order: an ARF part (``message/feedback-report`` or
   ``report-type=feedback-report``) makes ``feedback``; a ``message/delivery-status``
   part with recipients makes ``bounce``, or ``delivery-report`` when every recipient
   was delivered; a mail that looks like a non-delivery report (null return path and a
   daemon sender, or a bounce subject) and names recipients in its text makes
   ``bounce``; an RFC 3834 auto-reply (``Auto-Submitted: auto-replied``, vacation
   subjects) makes ``autoreply``; anything else is ``not-bounce``.
3. The returned original message (``message/rfc822``, ``text/rfc822-headers``) is never
   searched for recipients; its headers only fill ``original_*``. The exceptions are a
   bounce *forwarded*: a whole DSN pasted as text below a relay's own notice (its
   ``message/delivery-status`` part intact), or a bounce attached as
   ``message/rfc822`` to a mail that is no DSN itself. That bounce is parsed as a mail
   of its own, once, before the outer mail's text is read.
4. Each recipient is classified by
:func:`warmup.core.bounces.verdict.classify_recipient`
   (reply code first, then the DSN status, then the text).
5. An ARF report whose original names no recipient is still a ``feedback`` report,
   with no recipient entries: the intake matches it to the send by VERP or
   Message-ID, and ``bounces parse`` prints it with verdict ``feedback``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from email import message_from_bytes, message_from_string
from email.message import Message
from email.policy import compat32
from enum import StrEnum

from warmup.core.bounces.dsn import (
    DSNRecipient,
    dsn_recipients,
    message_fields,
    parse_field_text,
)
from warmup.core.bounces.mime import (
    find_addresses,
    first_address,
    header_text,
    part_text,
    payload_messages,
)
from warmup.core.bounces.ses import SESNotification, parse_ses
from warmup.core.bounces.text import (
    diagnostic_for,
    looks_like_bounce,
    original_to,
    split_report,
    text_recipients,
    transcript_command,
)
from warmup.core.bounces.verdict import RecipientVerdict, classify_recipient
from warmup.core.bounces.verp import TRACE_HEADER
from warmup.core.model import Verdict

__all__ = [
    "BounceKind",
    "BounceRecipient",
    "BounceReport",
    "complaint_about",
    "parse_bounce",
]

_MAX_PARTS = 64
_MAX_DEPTH = 8
_AUTOREPLY_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|out of (?:the )?office"
    r"|vacation|away from|absence|abwesenheit|r[eé]ponse automatique|auto:"
    r"|away until|\u81ea\u52d5\u5fdc\u7b54|\u4e0d\u5728)",
    re.IGNORECASE,
)


#: A whole DSN pasted as text into the body (a relay forwarding the bounce it got):
#: its own delivery-status part is read as a mail of its own.
_FORWARDED_DSN = re.compile(
    r"^content-type:\s*message/delivery-status", re.IGNORECASE | re.MULTILINE
)


class BounceKind(StrEnum):
    """What a parsed mail turned out to be."""

    bounce = "bounce"
    feedback = "feedback"
    autoreply = "autoreply"
    delivery_report = "delivery-report"
    not_bounce = "not-bounce"


_FORWARDABLE = frozenset({BounceKind.bounce, BounceKind.feedback})


@dataclass(frozen=True, slots=True, kw_only=True)
class BounceRecipient:
    """One recipient a report is about, and what its outcome means."""

    recipient: str
    status: str
    action: str
    verdict: Verdict
    reason: str
    reply: str
    code: int | None
    remote_mta: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BounceReport:
    """A parsed bounce mail; ``envelope_to`` is where the bounce was sent."""

    kind: BounceKind
    recipients: tuple[BounceRecipient, ...] = ()
    envelope_to: str = ""
    subject: str = ""
    original_message_id: str = ""
    original_from: str = ""
    original_to: str = ""
    # warmup's trace header (X-Warmup-Id) in the returned original, if any.
    original_trace: str = ""


@dataclass(slots=True)
class _Parts:
    """The parts of a mail that matter, found in one walk."""

    texts: list[str] = field(default_factory=list)
    status_blocks: list[list[tuple[str, str]]] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    originals: list[Message] = field(default_factory=list)
    count: int = 0


def parse_bounce(data: bytes) -> BounceReport:
    """Parse one bounce mail (bytes as received); never raises."""
    try:
        message = message_from_bytes(data, policy=compat32)
        return _parse(message)
    except Exception:  # the stdlib parser has many failure modes; never raise
        return BounceReport(kind=BounceKind.not_bounce)


def _parse(message: Message, *, nested: bool = False) -> BounceReport:
    parts = _Parts()
    _walk(message, parts, depth=0)
    base = _base_report(message, parts)
    if _is_feedback(message, parts, base.subject):
        return _feedback(base, parts)
    report, rest = split_report("\n".join(parts.texts))
    dsn = dsn_recipients(parts.status_blocks) or _embedded_dsn(report)
    if dsn:
        return _dsn_report(base, dsn, report)
    if not nested:
        inner = _forwarded(parts, rest)
        if inner is not None:
            return replace(inner, envelope_to=base.envelope_to, subject=base.subject)
    ses = parse_ses(report) if "{" in report else None
    if ses is not None:
        return _ses_report(base, ses)
    failed = find_addresses(header_text(message, "X-Failed-Recipients"))
    if failed or _is_ndr(message, base, report):
        found = _text_report(base, report, failed, _quoted_to(base, rest))
        if found.recipients:
            return found
    if _is_autoreply(message, base.subject):
        return _autoreply(base, message)
    return base


def _forwarded(parts: _Parts, rest: str) -> BounceReport | None:
    """A bounce forwarded as pasted text or as an attached ``message/rfc822``."""
    inners = [message_from_string(rest)] if _FORWARDED_DSN.search(rest[:20000]) else []
    inners += parts.originals[:1] if parts.originals else []
    for message in inners:
        inner = _parse(message, nested=True)
        if inner.recipients and inner.kind in _FORWARDABLE:
            return inner
    return None


def _walk(part: Message, parts: _Parts, depth: int) -> None:
    parts.count += 1
    if parts.count > _MAX_PARTS or depth > _MAX_DEPTH:
        return
    content_type = part.get_content_type()
    if content_type in {"message/rfc822", "message/global"}:
        parts.originals.extend(payload_messages(part)[:1])
    elif content_type in {"text/rfc822-headers", "message/global-headers"}:
        parts.originals.append(message_from_string(part_text(part)))
    elif content_type in {"message/delivery-status", "message/global-delivery-status"}:
        parts.status_blocks.extend(_status_blocks(part))
    elif content_type == "message/feedback-report":
        parts.feedback.append(_raw_text(part))
    elif part.is_multipart():
        for child in payload_messages(part):
            _walk(child, parts, depth + 1)
    elif part.get_content_maintype() in {"text", "multipart"} or depth == 0:
        # A multipart without sub-parts lost its boundary (a broken header fold):
        # its body is read as text.
        parts.texts.append(part_text(part))


def _embedded_dsn(report: str) -> list[DSNRecipient]:
    """DSN fields written into a plain-text body (MIME headers lost or never set)."""
    lowered = report.lower()
    if "final-recipient:" not in lowered and "original-recipient:" not in lowered:
        return []
    return dsn_recipients(parse_field_text(report))


def _status_blocks(part: Message) -> list[list[tuple[str, str]]]:
    blocks = payload_messages(part)
    if blocks:
        return message_fields(blocks)
    return parse_field_text(_raw_text(part))


def _raw_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n\n".join(
            "\n".join(f"{name}: {value}" for name, value in item.items())
            for item in payload
            if isinstance(item, Message)
        )
    return part_text(part)


def _base_report(message: Message, parts: _Parts) -> BounceReport:
    original = parts.originals[0] if parts.originals else None
    return BounceReport(
        kind=BounceKind.not_bounce,
        envelope_to=first_address(header_text(message, "To")),
        subject=header_text(message, "Subject"),
        original_message_id=header_text(original, "Message-ID") if original else "",
        original_from=first_address(header_text(original, "From")) if original else "",
        original_to=first_address(header_text(original, "To")) if original else "",
        original_trace=header_text(original, TRACE_HEADER) if original else "",
    )


def _recipient(
    address: str, judged: RecipientVerdict, action: str, remote_mta: str = ""
) -> BounceRecipient:
    return BounceRecipient(
        recipient=address,
        status=judged.status,
        action=action,
        verdict=judged.verdict,
        reason=judged.reason,
        reply=judged.reply,
        code=judged.code,
        remote_mta=remote_mta,
    )


def _dsn_report(
    base: BounceReport, dsn: list[DSNRecipient], report: str
) -> BounceReport:
    recipients = tuple(
        _recipient(
            item.recipient,
            classify_recipient(
                item.diagnostic or diagnostic_for(report, item.recipient),
                status=item.status,
                action=item.action,
                context=diagnostic_for(report, item.recipient),
                recipient=item.recipient,
                command=transcript_command(report, item.recipient),
                diagnostic_type=item.diagnostic_type,
                notice=report,
            ),
            item.action or "failed",
            item.remote_mta,
        )
        for item in dsn
    )
    delivered = all(item.verdict is Verdict.delivered for item in recipients)
    kind = BounceKind.delivery_report if delivered else BounceKind.bounce
    return _with(base, kind, recipients)


def _ses_report(base: BounceReport, ses: SESNotification) -> BounceReport:
    if ses.kind == BounceKind.feedback:
        addresses = [item.recipient for item in ses.recipients]
        return _with(base, BounceKind.feedback, _feedback_recipients(addresses))
    recipients = tuple(
        _recipient(
            item.recipient,
            classify_recipient(
                item.diagnostic,
                status=item.status,
                action=item.action,
                permanent=ses.permanent,
            ),
            item.action or ("failed" if ses.permanent else "delayed"),
            item.remote_mta,
        )
        for item in ses.recipients
    )
    return _with(base, BounceKind(ses.kind), recipients)


def _is_ndr(message: Message, base: BounceReport, report: str) -> bool:
    return looks_like_bounce(header_text(message, "From"), base.subject, report)


def _quoted_to(base: BounceReport, rest: str) -> list[str]:
    """The original recipient, for reports that name it only in the returned mail."""
    address = base.original_to or original_to(rest)
    return [address] if address else []


def _text_report(
    base: BounceReport, report: str, known: list[str], quoted: list[str]
) -> BounceReport:
    exclude = {base.envelope_to.lower(), base.original_from.lower()}
    permanent = not _temporary(report)
    found = text_recipients(report, exclude, known) or text_recipients(
        report, exclude, quoted
    )
    recipients = tuple(
        _recipient(
            item.recipient,
            classify_recipient(
                item.diagnostic,
                permanent=permanent,
                context=diagnostic_for(report, item.recipient),
                recipient=item.recipient,
                command=transcript_command(report, item.recipient),
                notice=report,
            ),
            "failed" if permanent else "delayed",
        )
        for item in found
    )
    return _with(base, BounceKind.bounce, recipients)


_TEMPORARY = re.compile(
    r"will (?:continue|keep) (?:trying|to try)|not yet been delivered|still trying"
    r"|temporar(?:y|ily) (?:failure|error|problem)|has been delayed|delayed",
    re.IGNORECASE,
)


def _temporary(text: str) -> bool:
    return bool(_TEMPORARY.search(text[:3000]))


def _is_feedback(message: Message, parts: _Parts, subject: str) -> bool:
    report_type = str(message.get_param("report-type", "") or "").lower()
    if parts.feedback or report_type == "feedback-report":
        return True
    return subject.lower().startswith("complaint about message from") and any(
        original.get("X-HmXmrOriginalRecipient") for original in parts.originals
    )


def _feedback(base: BounceReport, parts: _Parts) -> BounceReport:
    addresses: list[str] = []
    for text in parts.feedback:
        for block in parse_field_text(text):
            addresses += [
                first_address(value)
                for name, value in block
                if name in {"original-rcpt-to", "removal-recipient"}
            ]
    for original in parts.originals[:1]:
        if not any(addresses):
            hotmail = header_text(original, "X-HmXmrOriginalRecipient")
            addresses = [first_address(hotmail) or base.original_to]
    return _with(base, BounceKind.feedback, _feedback_recipients(addresses))


def complaint_about(address: str) -> BounceRecipient:
    """The recipient entry of a complaint (ARF) about ``address``."""
    return BounceRecipient(
        recipient=address,
        status="",
        action="",
        verdict=Verdict.feedback,
        reason="feedback",
        reply="",
        code=None,
    )


def _feedback_recipients(addresses: list[str]) -> tuple[BounceRecipient, ...]:
    return tuple(
        complaint_about(address) for address in dict.fromkeys(addresses) if address
    )


def _is_autoreply(message: Message, subject: str) -> bool:
    submitted = header_text(message, "Auto-Submitted").lower()
    if submitted.startswith("auto-replied"):
        return True
    if header_text(message, "X-Autoreply") or header_text(message, "X-Autorespond"):
        return True
    return bool(_AUTOREPLY_SUBJECT.search(subject))


def _autoreply(base: BounceReport, message: Message) -> BounceReport:
    addresses = find_addresses(header_text(message, "From"))[:1]
    recipients = tuple(
        BounceRecipient(
            recipient=address,
            status="",
            action="",
            verdict=Verdict.autoreply,
            reason="vacation",
            reply=base.subject,
            code=None,
        )
        for address in addresses
    )
    return _with(base, BounceKind.autoreply, recipients)


def _with(
    base: BounceReport, kind: BounceKind, recipients: tuple[BounceRecipient, ...]
) -> BounceReport:
    return replace(base, kind=kind, recipients=recipients)
