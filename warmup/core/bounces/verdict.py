"""The verdict for one bounced recipient, from its diagnostic, status and action.

Rules:

1. A success (``Action: delivered``/``relayed``/``expanded`` or a 2.x.x status) is
   ``delivered``.
2. The reply is read from the diagnostic: a leading reply code, else the first 4xx/5xx
   code written inside the text (``… said: 550 …``, ``<<< 421 …``, ``ERROR_CODE :550``);
   a 2xx/3xx code in a failure report is a step that went well, never the outcome. The
   enhanced status is the DSN ``Status`` or the code in the text, whichever Sisimai's
   ``status.Prefer`` picks (a specific code beats ``X.0.0``, the reply code's class
   breaks a tie).
3. Queue expiry wording ("delivery time expired", "retry timeout exceeded", ...) is
   ``soft``/``expired`` when nothing more specific was said: the receiver never
   refused. A delayed report with no reason is ``expired`` too.
4. Otherwise the reply is classified with :func:`classify_reply`. A diagnostic without
   a reply code borrows the DSN ``Status``, or, failing that, the class the bounce
   implies (``failed`` is permanent, ``delayed`` temporary). The classifier already
   makes a dead address ``hard`` even at 4xx.
5. Bounce wording the reply rules do not know (NDR templates, mailer errors, carriers'
   filters) refines a generic classification; a bare "rejected" with no code says
   nothing about the sender and is ``onhold``; the SMTP command splits "user unknown"
   (see :func:`_user_unknown`). Nothing under an x.7 (policy) status becomes ``hard``.
6. With no status code in the mail, the status is Sisimai's internal code for the
   reason (``5.0.911`` userunknown, ``4.0.947`` expired, ...), so a derived status is
   never mistaken for one the receiver sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warmup.core.model import Verdict
from warmup.core.replies.classify import (
    Classification,
    SMTPReply,
    classify_reply,
    parse_reply,
)
from warmup.core.replies.rules import (
    CODE_RULES,
    FALLBACK_RULE,
    SUBJECT_RULES,
    verdict_for,
)

__all__ = [
    "RecipientVerdict",
    "classify_recipient",
    "internal_status",
    "normal_status",
    "prefer_status",
]

_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
#: RFC 3463 codes in free text: the subject is 0-7, so versions (Exim 4.92.3) are not.
_STATUS_IN_TEXT = re.compile(r"(?<![\w.])#?([245]\.[0-7]\.\d{1,3})(?!\w|\.\d)")
#: A reply code inside a sentence ("… said: 550 …", "<<< 421 …", "ERROR_CODE :550"),
#: not a quantity ("500 KB", "421 messages").
_CODE_IN_TEXT = re.compile(
    r"(?:(?<=\s:)|(?<![\w.#/=+:-]))([45]\d\d)(?=[ ,:-]|$)"
    r"(?![ ,:-]*(?:[kmg]i?b|bytes?|seconds?|minutes?|hours?|days?|messages?"
    r"|recipients?|times?|attempts?|percent)\b)",
    re.IGNORECASE,
)
_STATUS_AFTER_CODE = re.compile(r"[\s:,'\"-]*#?([245]\.[0-7]\.\d{1,3})(?!\w|\.\d)")
_EXPIRED = re.compile(
    r"delivery time expired|retry time(?:out)? (?:was )?exceeded|message expired"
    r"|too long in (?:the )?queue|been in (?:the )?queue too long"
    r"|could not be delivered for (?:more than )?\d+ (?:days|hours)"
    r"|delivery expired|expired after|timeout exceeded|envelope expired"
    r"|retry limit|maximum time in queue|unable to deliver .{0,40} within"
    r"|has not been delivered for|could not be delivered within"
    r"|not delivered within|could not deliver for the last|delivery failed \d+ attempts"
    r"|still undelivered after|will be retried for|giving up on",
    re.IGNORECASE,
)
#: Status details that say no more than "it failed" or "it took too long": queue
#: expiry wording may override them (RFC 3463: X.0.0, X.4.0, X.4.1, X.4.7, X.5.0).
_VAGUE = frozenset({"", "0.0", "3.0", "4.0", "4.1", "4.7", "5.0"})
_WEAK = frozenset(
    {"undefined", "suspend", "onhold", "systemerror", "mailererror", "networkerror"}
)
_BARE = frozenset({"rejected-bare", "refused-bare"})
#: Classifications that rest on the codes alone: NDR wording may refine them.
_GENERIC = _BARE | frozenset(
    rule.name for rule in (*SUBJECT_RULES, *CODE_RULES, FALLBACK_RULE)
)
#: After a bare "rejected", these status subjects still say what failed (RFC 3463).
_SUBJECT_REASONS = {
    "2": "filtered",
    "3": "systemerror",
    "4": "networkerror",
    "6": "contenterror",
}
_EXPIRY_STATUS = frozenset({"generic-enhanced-x.4.1", "generic-enhanced-x.4.7"})
_HARD_REASONS = frozenset({"userunknown", "hostunknown", "notaccept", "hasmoved"})
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
            r"|mail ?folder is full|\u4e00\u676f",
            "mailboxfull",
        ),
        (r"message (?:is )?too (?:big|large)|size limit", "mesgtoobig"),
        (r"group you tried to contact|'send mail as'", "rejected"),
        # Sender ID (RFC 4407): the Purported Responsible Address is the sender's.
        (r"purported responsible address", "rejected"),
        (r"after initial connection", "blocked"),
        (r"protocol violation", "policyviolation"),
        (r"\bno relaying\b", "norelaying"),
        (
            r"host (?:is )?(?:not reachable|unreachable)|no route to host"
            r"|network is unreachable|host name lookup failure|name service error"
            r"|loops back to myself",
            "networkerror",
        ),
        (
            r"does not support (?:tls|starttls)|starttls (?:is )?required"
            r"|tls (?:is )?required",
            "failedstarttls",
        ),
        # Sisimai's MailerError wording (reason/why-mailererror.go): a local program
        # (pipe, procmail) failed, not the remote server.
        (
            r"mailer error|pipe to \||command (?:died|failed)|procmail"
            r"|child status \d|exit (?:code|status) \d",
            "mailererror",
        ),
    )
)
_FINAL_ONLY = frozenset({"hostunknown", "notaccept"})
_FULL = next(rule for rule, name in _NDR_RULES if name == "mailboxfull")
#: au (KDDI) answers its reception filter with "550 : User unknown", the address left
#: out (https://www.au.com/support/service/internet/trouble/mail/01/, and Sisimai's
#: rhost/for-kddi.go); a dead au address reads "550 <a@b>: User unknown".
_AU_FILTER = re.compile(r"\b550:? : user unknown", re.IGNORECASE)
#: au's NDR headlines name the reason for the recipients listed under them (Sisimai's
#: lhost/via-ezweb.go, citing http://www.naruhodo-au.kddi.com/qa3429203.html).
_AU_NOTICES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"the user\(s\) account is (?:disabled|temporarily limited)", re.I),
        "suspend",
    ),
    (
        re.compile(r"the user\(s\) account is temporarily over quota", re.I),
        "mailboxfull",
    ),
)
#: "<domain> does not exist" names a dead domain, not a dead mailbox.
_DOMAIN_DEAD = re.compile(
    r"\bdomain (?:name )?does not exist|(?<![@\w.-])[a-z0-9-]+(?:\.[a-z0-9-]+)+ "
    r"does not exist",
    re.IGNORECASE,
)
_COMMAND = re.compile(
    r"(?:in reply to (?:end of )?|>>> ?|after (?:end of )?|smtp command:? "
    r"|progress was |did not like our )(rcpt|data|mail)\b",
    re.IGNORECASE,
)
#: Gmail's older DSNs end the remote reply with "(state N)", N naming the SMTP phase
#: (Sisimai's lhost/via-gmail.go: 14 RCPT; 15, 17, 18 DATA; 6 MAIL).
_GMAIL_STATE = re.compile(r"\(state (\d{1,2})\)")
_GMAIL_STATES = {"6": "mail", "14": "rcpt", "15": "data", "17": "data", "18": "data"}
_SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})
_MAX_TEXT = 2000

#: Sisimai's internal status codes (smtp/status/lib.go, ``Code()``): the status of a
#: recipient whose bounce carries none, by reason; temporary failures use ``4.0.9xx``.
_INTERNAL = {
    "authfailure": "926",
    "badreputation": "975",
    "blocked": "971",
    "contenterror": "960",
    "exceedlimit": "923",
    "expired": "947",
    "failedstarttls": "976",
    "filtered": "910",
    "hasmoved": "916",
    "hostunknown": "912",
    "mailboxfull": "922",
    "mailererror": "939",
    "mesgtoobig": "934",
    "networkerror": "944",
    "norelaying": "909",
    "notaccept": "932",
    "notcompliantrfc": "974",
    "onhold": "901",
    "policyviolation": "972",
    "rejected": "918",
    "requireptr": "973",
    "securityerror": "970",
    "spamdetected": "980",
    "speeding": "946",
    "suppressed": "903",
    "suspend": "921",
    "systemerror": "930",
    "systemfull": "931",
    "syntaxerror": "902",
    "toomanyconn": "945",
    "userunknown": "911",
    "undefined": "900",
    "virusdetected": "981",
}
_PERMANENT_ONLY = frozenset({"hasmoved", "hostunknown", "userunknown"})


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


def internal_status(reason: str, *, temporary: bool) -> str:
    """Sisimai's internal status for ``reason`` (``5.0.911``), or ''."""
    detail = _INTERNAL.get(reason)
    if detail is None or (temporary and reason in _PERMANENT_ONLY):
        return ""
    return f"{'4' if temporary else '5'}.0.{detail}"


def prefer_status(field: str, message: str, code: str = "") -> str:
    """The status to keep from a DSN ``Status`` and the code in its diagnostic.

    Follows Sisimai's ``status.Prefer`` (smtp/status/prefer.go): the one whose class
    agrees with the reply code; else a specific code over ``X.0.0``/``X.Y.0``; else the
    message's code over a ``Status`` that is ambiguous (4.4.7, 4.7.0, 5.3.x, X.5.x).
    """
    if not field or not message or field == message:
        return field or message
    if code and field[0] != message[0]:
        if code[0] == field[0]:
            return field
        if code[0] == message[0]:
            return message
    if ".0.0" in field:
        return field if ".0.0" in message else message
    if ".0" in field and ".0" not in message:
        return message
    if ".0.0" in message:
        return field
    return message if _ambiguous(field, message) else field


def _ambiguous(field: str, message: str) -> bool:
    """Whether a specific ``Status`` yields to the specific code in the message."""
    if field in {"4.4.7", "4.7.0"} or field.startswith("5.3."):
        return True
    if field[1:4] in {".5.1", ".5.2", ".5.4", ".5.5"}:
        return True
    if field == "5.1.1":
        return ".0" not in message and not message.startswith("5.5.")
    return field == "5.1.3" and message.startswith("5.7.")


def classify_recipient(
    diagnostic: str,
    *,
    status: str = "",
    action: str = "",
    permanent: bool = True,
    context: str = "",
    recipient: str = "",
    command: str = "",
    diagnostic_type: str = "",
    notice: str = "",
) -> RecipientVerdict:
    """Classify one recipient; ``permanent`` is the bounce's default class.

    ``context`` is the bounce's text about this recipient, consulted for the SMTP
    phase; ``command`` is the SMTP command a transcript shows the failing reply
    answered; ``notice`` is the whole report text, whose headline may name the reason
    for every recipient listed under it.
    """
    field = normal_status(status)
    text = " ".join(diagnostic[:_MAX_TEXT].split())
    if action.lower() in _SUCCESS_ACTIONS or field.startswith("2"):
        return RecipientVerdict(
            verdict=Verdict.delivered,
            reason="delivered",
            status=field or "2.0.0",
            reply=text,
            code=None,
        )
    found = _read_reply(diagnostic[:_MAX_TEXT])
    explicit = prefer_status(field, found.enhanced or "", str(found.code or ""))
    temporary = _temporary(found.code, explicit, action, permanent)
    implied = explicit or ("4.0.0" if temporary else "5.0.0")
    reply = SMTPReply(code=found.code, enhanced=implied, text=found.text)
    result = classify_reply(reply)
    verdict, reason = _refine(
        result,
        text,
        context=context,
        recipient=recipient,
        command=command,
        notice=notice,
    )
    if diagnostic_type.startswith("x-unix") and reason in _WEAK:
        verdict, reason = Verdict.soft, "mailererror"
    vague = reason in _WEAK or (reason == result.reason and result.rule in _GENERIC)
    if vague and explicit[2:] in _VAGUE and _expired(text, action, reason):
        verdict, reason = Verdict.soft, "expired"
    return RecipientVerdict(
        verdict=verdict,
        reason=reason,
        status=explicit or internal_status(reason, temporary=temporary),
        reply=text,
        code=found.code,
    )


def _expired(text: str, action: str, reason: str) -> bool:
    """Queue expiry wording, or a delayed report that names no reason."""
    if _EXPIRED.search(text):
        return True
    return action.lower() == "delayed" and reason in {"undefined", "onhold"}


def _temporary(code: int | None, status: str, action: str, permanent: bool) -> bool:
    """The reply code decides, then the status class, then the report's kind."""
    if code is not None:
        return code < 500
    if status:
        return status.startswith("4")
    return action.lower() == "delayed" or not permanent


def _read_reply(diagnostic: str) -> SMTPReply:
    """The failing reply in a diagnostic; see rule 2 of the module docstring."""
    reply = parse_reply(diagnostic)
    code, enhanced, text = reply.code, reply.enhanced, reply.text
    if code is not None and code >= 400:
        if enhanced is None:
            enhanced = _status_in_text(text, str(code)[0])
        return SMTPReply(code=code, enhanced=enhanced, text=text)
    if enhanced is not None and enhanced[0] not in "45":
        enhanced = None
    embedded = _CODE_IN_TEXT.search(text)
    if embedded is None:
        return SMTPReply(
            code=None, enhanced=enhanced or _status_in_text(text, ""), text=text
        )
    after = _STATUS_AFTER_CODE.match(text, embedded.end())
    if after is not None and after[1][0] == embedded[1][0]:
        enhanced = after[1]
    elif enhanced is None or enhanced[0] != embedded[1][0]:
        enhanced = _status_in_text(text, embedded[1][0])
    return SMTPReply(code=int(embedded[1]), enhanced=enhanced, text=text)


def _status_in_text(text: str, klass: str) -> str | None:
    """The first 4.x.x/5.x.x status in ``text`` (of class ``klass`` if given)."""
    for found in _STATUS_IN_TEXT.finditer(text):
        status = found[1]
        if status[0] in "45" and (not klass or status[0] == klass):
            return status
    return None


def _refine(
    result: Classification,
    text: str,
    *,
    context: str,
    recipient: str,
    command: str,
    notice: str,
) -> tuple[Verdict, str]:
    """Apply the NDR wording table and the SMTP-command rule to a classification."""
    verdict, reason = _reword(result, text, recipient)
    permanent = result.permanent
    if reason == "rejected" and _null_mx(result, text):
        return verdict_for("notaccept", permanent=permanent), "notaccept"
    if reason == "userunknown" or reason in _WEAK:
        headline = _notice(notice)
        if headline:
            return verdict_for(headline, permanent=permanent), headline
    if reason == "userunknown":
        if _AU_FILTER.search(text):
            return Verdict.soft, "filtered"
        if result.rule.startswith("generic-enhanced-") and _FULL.search(text):
            # An x.1.1 status over "mailbox is over quota" wording (qmail's "(#5.1.1)"
            # tail): Sisimai's UserUnknown yields to MailboxFull wording.
            return verdict_for("mailboxfull", permanent=permanent), "mailboxfull"
        return _user_unknown(result, verdict, text, context, command)
    if reason == "hostunknown" and not permanent:
        return Verdict.soft, "networkerror"  # a DNS failure that may still clear
    if (
        reason == "expired"
        and result.rule in _EXPIRY_STATUS
        and _ndr_reason(text, recipient, permanent=permanent) == "networkerror"
    ):
        # "No answer"/"expired" by the status code alone: a named network failure
        # is the cause (Sisimai's NetworkError wording comes before Expired).
        return Verdict.soft, "networkerror"
    return verdict, reason


def _reword(result: Classification, text: str, recipient: str) -> tuple[Verdict, str]:
    """NDR wording over a generic classification; nothing hard under an x.7 status."""
    if result.reason not in _WEAK and result.rule not in _GENERIC:
        return result.verdict, result.reason
    better = _ndr_reason(text, recipient, permanent=result.permanent)
    policy = (result.enhanced or "")[1:3] == ".7"
    if better and not (policy and better in _HARD_REASONS):
        return verdict_for(better, permanent=result.permanent), better
    if result.rule in _BARE:
        return _bare(result, result.enhanced or "")
    return result.verdict, result.reason


def _null_mx(result: Classification, text: str) -> bool:
    """Sendmail writes 5.7.27 (RFC 7505: the *sender* has a null MX) for a recipient
    domain that takes no mail ("Host does not accept mail"); Sisimai's NotAccept reads
    it so."""
    enhanced = result.enhanced or ""
    return enhanced[2:] == "7.27" and "does not accept mail" in text.lower()


def _bare(result: Classification, enhanced: str) -> tuple[Verdict, str]:
    """A bare "rejected"/"refused": the status subject, else nothing to go on."""
    subject = _SUBJECT_REASONS.get(enhanced[2:3]) if enhanced else None
    if subject:
        return verdict_for(subject, permanent=result.permanent), subject
    if result.code is None and enhanced[2:] == "0.0":
        return Verdict.soft, "onhold"
    return result.verdict, result.reason


def _notice(report: str) -> str:
    head = report[:600]
    for pattern, reason in _AU_NOTICES:
        if pattern.search(head):
            return reason
    return ""


def _ndr_reason(text: str, recipient: str, *, permanent: bool) -> str:
    """The reason NDR wording gives; a dead domain only when the failure is final."""
    if recipient.lower().endswith("@googlegroups.com"):
        return "rejected"
    for rule, name in _NDR_RULES:
        if rule.search(text) and (permanent or name not in _FINAL_ONLY):
            return name
    return ""


def _user_unknown(
    result: Classification, verdict: Verdict, text: str, context: str, command: str
) -> tuple[Verdict, str]:
    """Sisimai's split of "user unknown" wording by status and SMTP command.

    An x.1.1 status keeps ``userunknown``. An x.2.0/x.2.1 status (RFC 3463: the mailbox
    exists) means ``filtered``, unless the reply answered RCPT. In reply to MAIL the
    receiver refused the sender (``rejected``); "<domain> does not exist" is a dead
    domain; in reply to DATA the receiver filtered the message (``filtered``). With no
    command known the wording is taken at its word.
    """
    enhanced = result.enhanced or ""
    if enhanced.endswith(".1.1"):
        return verdict, "userunknown"
    command = _command(text) or command or _command("\n".join(context.splitlines()[:8]))
    if command == "mail":
        return verdict_for("rejected", permanent=result.permanent), "rejected"
    if result.rule == "does-not-exist" and _DOMAIN_DEAD.search(text):
        return verdict_for("hostunknown", permanent=result.permanent), "hostunknown"
    if enhanced[1:] in {".2.0", ".2.1"} and command != "rcpt":
        return Verdict.soft, "filtered"
    if command == "data":
        return Verdict.soft, "filtered"
    return verdict, "userunknown"


def _command(text: str) -> str:
    found = _COMMAND.search(text)
    if found is not None:
        return found[1].lower()
    state = _GMAIL_STATE.search(text)
    return _GMAIL_STATES.get(state[1], "") if state else ""
