"""The verdict for one bounced recipient, from its diagnostic, status and action.

Rules:

1. A success (``Action: delivered``/``relayed``/``expanded`` or a 2.x.x status) is
   ``delivered``.
2. Queue expiry wording ("delivery time expired", "retry timeout exceeded", ...) is
   ``soft``/``expired`` whatever the last reply said: the receiver never refused.
3. Otherwise the diagnostic is parsed with :func:`parse_reply` and classified with
   :func:`classify_reply`. A diagnostic without a reply code borrows the DSN ``Status``
   as its enhanced code, or, failing that, the class the bounce implies (``failed`` is
   permanent, ``delayed`` temporary), so that RFC 3463 class 5 means permanent and 4
   temporary. The classifier already makes a dead address ``hard`` even at 4xx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warmup.core.model import Verdict
from warmup.core.replies import (
    Classification,
    SMTPReply,
    classify_reply,
    parse_reply,
)
from warmup.core.reply_rules import verdict_for

__all__ = ["RecipientVerdict", "classify_recipient", "normal_status"]

_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_EXPIRED = re.compile(
    r"delivery time expired|retry time(?:out)? (?:was )?exceeded|message expired"
    r"|too long in (?:the )?queue|been in (?:the )?queue too long"
    r"|could not be delivered for (?:more than )?\d+ (?:days|hours)"
    r"|delivery expired|expired after|timeout exceeded"
    r"|retry limit|maximum time in queue|unable to deliver .{0,40} within"
    r"|has not been delivered for|could not be delivered within",
    re.IGNORECASE,
)
_WEAK = frozenset(
    {"undefined", "suspend", "onhold", "systemerror", "mailererror", "networkerror"}
)
_NDR_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in (
        (
            r"user unknown|unknown user|not listed in (?:domino directory|public name)"
            r"|invalid final delivery userid|no such (?:user|mailbox|recipient)"
            r"|invalid (?:user|recipient) address|user (?:not found|does not exist)"
            r"|no valid recipients",
            "userunknown",
        ),
        (
            r"host or domain name not found|no such domain|domain (?:name )?not found"
            r"|unrouteable address|unknown domain",
            "hostunknown",
        ),
        (
            r"couldn't find a mail exchanger|no mx record|indicated no smtp service"
            r"|does not accept mail|null mx",
            "notaccept",
        ),
        (
            r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded the local limit"
            r"|\u4e00\u676f",
            "mailboxfull",
        ),
        (r"message (?:is )?too (?:big|large)|size limit", "mesgtoobig"),
        (r"group you tried to contact|'send mail as'", "rejected"),
        (r"after initial connection", "blocked"),
        (r"protocol violation", "policyviolation"),
    )
)
_FINAL_ONLY = frozenset({"hostunknown", "notaccept"})
_COMMAND = re.compile(
    r"(?:in reply to (?:end of )?|>>> ?|after |smtp command:? |progress was )"
    r"(rcpt|data|mail)\b",
    re.IGNORECASE,
)
_SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})
_MAX_TEXT = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientVerdict:
    """What one recipient's failure means, and the reply it was read from."""

    verdict: Verdict
    reason: str
    status: str
    reply: str
    code: int | None


def normal_status(value: str) -> str:
    """The first RFC 3463 code in ``value`` ('' if none)."""
    found = _STATUS.search(value)
    return found[0] if found else ""


def classify_recipient(
    diagnostic: str,
    *,
    status: str = "",
    action: str = "",
    permanent: bool = True,
    context: str = "",
    recipient: str = "",
) -> RecipientVerdict:
    """Classify one recipient; ``permanent`` is the bounce's default class.

    ``context`` is the bounce's human-readable text, consulted for the SMTP phase.
    """
    status = normal_status(status)
    text = " ".join(diagnostic[:_MAX_TEXT].split())
    if action.lower() in _SUCCESS_ACTIONS or status.startswith("2"):
        return RecipientVerdict(
            verdict=Verdict.delivered,
            reason="delivered",
            status=status or "2.0.0",
            reply=text,
            code=None,
        )
    reply = _reply(diagnostic[:_MAX_TEXT], status, action, permanent)
    result = classify_reply(reply)
    verdict, reason = _refine(result, text, context, recipient)
    if reason in _WEAK and _EXPIRED.search(text):
        verdict, reason = Verdict.soft, "expired"
        status = status or reply.enhanced or _default_status(reply, "4.4.7")
    return RecipientVerdict(
        verdict=verdict,
        reason=reason,
        status=status or reply.enhanced or "",
        reply=text,
        code=reply.code,
    )


def _refine(
    result: Classification, text: str, context: str, recipient: str
) -> tuple[Verdict, str]:
    """Apply the NDR wording table and the DATA-phase rule to a classification."""
    verdict, reason = result.verdict, result.reason
    if reason in _WEAK:
        better = _ndr_reason(text, recipient, permanent=result.permanent)
        if better:
            verdict, reason = verdict_for(better, permanent=result.permanent), better
    if reason == "userunknown":
        return _user_unknown(result, verdict, text, context)
    if reason == "hostunknown" and not result.permanent:
        return Verdict.soft, "networkerror"  # a DNS failure that may still clear
    return verdict, reason


def _reply(diagnostic: str, status: str, action: str, permanent: bool) -> SMTPReply:
    reply = parse_reply(diagnostic)
    if reply.code is not None or reply.enhanced is not None:
        if reply.enhanced is None and status:
            return SMTPReply(code=reply.code, enhanced=status, text=reply.text)
        return reply
    if not status:
        temporary = action.lower() == "delayed" or not permanent
        status = "4.0.0" if temporary else "5.0.0"
        return SMTPReply(code=None, enhanced=status, text=reply.text)
    return SMTPReply(code=None, enhanced=status, text=reply.text)


def _ndr_reason(text: str, recipient: str, *, permanent: bool) -> str:
    """The reason NDR wording gives; a dead domain only when the failure is final."""
    if recipient.lower().endswith("@googlegroups.com"):
        return "rejected"
    for rule, name in _NDR_RULES:
        if rule.search(text) and (permanent or name not in _FINAL_ONLY):
            return name
    return ""


def _user_unknown(
    result: Classification, verdict: Verdict, text: str, context: str
) -> tuple[Verdict, str]:
    """Sisimai's split of "user unknown" wording by status and SMTP command.

    An x.1.1 status keeps ``userunknown``, and so does an x.2.1 status (mailbox
    disabled) in reply to RCPT; otherwise x.2.1 means ``filtered``. In reply to DATA the
    receiver filtered the message (``filtered``); in reply to MAIL it refused the
    sender (``rejected``).
    """
    enhanced = result.enhanced or ""
    if enhanced.endswith(".1.1"):
        return verdict, "userunknown"
    command = _command(text) or _command("\n".join(context.splitlines()[:8]))
    if enhanced.endswith(".2.1") and command != "rcpt":
        return Verdict.soft, "filtered"
    if command == "data":
        return Verdict.soft, "filtered"
    if command == "mail":
        return verdict_for("rejected", permanent=result.permanent), "rejected"
    return verdict, "userunknown"


def _command(text: str) -> str:
    found = _COMMAND.search(text)
    return found[1].lower() if found else ""


def _default_status(reply: SMTPReply, fallback: str) -> str:
    if reply.code is not None and reply.code >= 500:
        return "5.4.7"
    return fallback
