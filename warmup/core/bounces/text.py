"""Text heuristics for non-standard bounces (NDRs without a delivery-status part).

Rules:

1. Only the report text counts: it is cut where the returned original message begins
   ("Below this line is a copy of the message", "Original message follows", a
   ``Received:`` header line, ...).
2. A *recipient line* is a line that begins with an address (``<a@b>:`` as qmail and
   Postfix write, ``  a@b`` as Exim writes, ``a@b... User unknown`` as Sendmail
   writes, ``Recipient address: a@b`` as PMDF writes) or names one in
   ``RCPT TO:<a@b>``. A ``To:`` line among other header lines (``From:``,
   ``Subject:``, ...) quotes the original message and names no failed recipient. The
   recipient's diagnostic is the rest of that line plus the lines after it, up to the
   next recipient line or an ``X-…:`` header line; a recipient listed twice (Exchange
   names each in its summary and again in its diagnostics) gets both pieces. The
   same holds for the recipients ``X-Failed-Recipients`` names (Exim).
3. With no recipient lines, every address in the report text that is not the
   sender's, the bounce's own or a role mailbox (postmaster, mailer-daemon) is a
   recipient, and the whole report text is its diagnostic.
4. A diagnostic without any reply code borrows the report's preamble (the text before
   the first recipient line), where a code or a telling phrase often sits apart from
   the address (Exchange, Japanese carriers); never another recipient's text.
5. Sendmail writes the remote reply (``<<< 550 Insecure Mail Relay``) on the line
   before its own summary of the recipient (``554 <a@b>... Remote protocol error``);
   such a recipient line takes the ``<<<`` reply written since the previous recipient.
6. The SMTP command a reply answered is read from a session transcript
   (``>>> DATA`` then ``<<< 550 … a@b``) by :func:`transcript_command`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from warmup.core.bounces.mime import find_addresses, first_address

__all__ = [
    "TextRecipient",
    "diagnostic_for",
    "looks_like_bounce",
    "original_to",
    "split_report",
    "text_recipients",
    "transcript_command",
]

_ADDR = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_RECIPIENT_LINE = re.compile(
    rf"^\s*(?:[-*>]\s*)?(?:[45]\d\d[ -]\s*)?"
    rf"(?:(to|recipient(?: address)?|address|user)\s*:\s*)?"
    rf"[<\"(\[]?({_ADDR})[>\")\]]?(?:\s*(?::|\.\.\.|\(|,|$)|\s)",
    re.IGNORECASE,
)
_RCPT_TO = re.compile(rf"RCPT TO:\s*<?({_ADDR})", re.IGNORECASE)
#: Header lines of a quoted original: a ``To:`` next to them is no failed recipient.
_QUOTED_HEADER = re.compile(
    r"^[\s>]*(?:from|subject|date|message-id|cc|reply-to|sender)\s*:", re.IGNORECASE
)
#: A header line after a diagnostic ends it (``X-Postfix-Queue-ID:``, ``X-Spam-…:``).
_X_HEADER = re.compile(r"^X-[A-Za-z0-9-]+:")
_REMOTE_REPLY = re.compile(r"^\s*<<<\s*([45]\d\d\b.*)$")
_SENT_COMMAND = re.compile(r"^\s*>>>\s*([A-Za-z]{4})\b")
_SESSION_START = re.compile(r"^\s*\.*\s*while talking to\b", re.IGNORECASE)
_ORIGINAL_START = re.compile(
    r"^\s*(?:-+\s*)?(?:below this line is a copy|this is a copy of"
    r"|(?:the )?original message(?: follows|:|\s*-+|$)|------ this is a copy|"
    r"a copy of the original|(?<!\s)(?:content-type: message/rfc822"
    r"|return-path:\s*<|received:\s+(?:from|by)\b|message-id:\s*<)|unsent message below"
    r"|\*+ ?original|headers of the original|original message headers"
    r"|included below)",
    re.IGNORECASE,
)
_ROLE = frozenset({"postmaster", "mailer-daemon", "mailer_daemon", "root", "abuse"})
_CODE = re.compile(r"(?<![\d.])(?:[245]\d\d|[245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_MAX_LINES = 400
_TO_LINE = re.compile(r"^\s*To:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_BOUNCE_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|undeliverable|delivery has failed"
    r"|permanent (?:fatal )?error|wasn't able to deliver|unable to deliver"
    r"|was not delivered|delivery to the following recipient|did not reach"
    r"|message delivery failed|could not be sent|following addresses? (?:had|failed)"
    r"|\u9001\u4fe1\u3067\u304d\u307e\u305b\u3093|\u5c4a\u304d\u307e\u305b\u3093",
    re.IGNORECASE,
)
_MAX_FOLLOW = 12
_BOUNCE_FROM = re.compile(
    r"mailer[-_ ]?daemon|post_?master|mail delivery|delivery subsystem"
    r"|mail ?administrator|mailer@|mail system|mdaemon|noreply-dmarc|ndr@|bounce",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|fail|failure|notification|problem)"
    r"|failure notice|returned mail|mail delivery failed|could not be delivered"
    r"|not delivered|delivery has failed|nondeliverable|non-deliver|rejected"
    r"|warning: could not send|mail system error|unzustellbar|non remis"
    r"|error sending|bounced|failed delivery|message failure|delivery error"
    r"|permanent error|returned to sender|send failure|mail failure"
    r"|\u672a\u9054|\u30a8\u30e9\u30fc|\u914d\u9001|\u9001\u4fe1\u3067\u304d",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TextRecipient:
    """A recipient found in report text and the text that explains its failure."""

    recipient: str
    diagnostic: str


def looks_like_bounce(sender: str, subject: str, text: str) -> bool:
    """Whether the headers or the report text say this is a non-delivery report."""
    if _BOUNCE_SUBJECT.search(subject) or _BOUNCE_FROM.search(sender):
        return True
    return bool(_BOUNCE_BODY.search(text[:4000]))


def split_report(text: str) -> tuple[str, str]:
    """``text`` split where the returned original message begins."""
    lines = text.splitlines()[:_MAX_LINES]
    for number, line in enumerate(lines):
        if number > 0 and _ORIGINAL_START.match(line):
            return "\n".join(lines[:number]), "\n".join(lines[number:])
    return "\n".join(lines), ""


def original_to(rest: str) -> str:
    """The ``To:`` address of an original message quoted as text, or ''."""
    found = _TO_LINE.search(rest)
    return first_address(found[1]) if found else ""


def text_recipients(
    text: str, exclude: Collection[str], known: Sequence[str] = ()
) -> list[TextRecipient]:
    """Recipients and their diagnostics in report ``text`` (see the module rules).

    ``known`` recipients (from ``X-Failed-Recipients``) are taken as they are.
    """
    lines = text.splitlines()
    marks = _recipient_lines(lines, exclude)
    found = _pieces(lines, marks) if marks else {}
    if known:
        listed = [address for _, address in marks if address in known]
        ordered = dict.fromkeys([*listed, *known])
        return [
            found.get(address) or _known(lines, text, address) for address in ordered
        ]
    if not marks:
        return [
            TextRecipient(recipient=address, diagnostic=text)
            for address in find_addresses(text)
            if _wanted(address, exclude)
            and address.partition("@")[0].lower() not in _ROLE
        ]
    return list(found.values())


def _pieces(lines: list[str], marks: list[tuple[int, str]]) -> dict[str, TextRecipient]:
    """Each marked recipient's diagnostic: its lines up to the next recipient's."""
    pieces: dict[str, list[str]] = {}
    for position, (number, address) in enumerate(marks):
        end = marks[position + 1][0] if position + 1 < len(marks) else len(lines)
        start = marks[position - 1][0] + 1 if position else 0
        segment = _until_header(lines[number : min(end, number + _MAX_FOLLOW)])
        remote = _remote_reply(lines, start, number)
        if remote:
            segment = [*segment, remote]
        pieces.setdefault(address, []).extend(segment)
    preamble = "\n".join(lines[: marks[0][0]])
    return {
        address: TextRecipient(
            recipient=address, diagnostic=_diagnostic(segment, preamble)
        )
        for address, segment in pieces.items()
    }


def _until_header(segment: list[str]) -> list[str]:
    """``segment`` cut before its first ``X-…:`` header line (not the first line)."""
    for number, line in enumerate(segment[1:], start=1):
        if _X_HEADER.match(line):
            return segment[:number]
    return segment


def _remote_reply(lines: list[str], start: int, number: int) -> str:
    """The ``<<<`` reply a sendmail summary line at ``number`` stands for, or ''."""
    if not _CODE.match(lines[number].strip()):
        return ""
    for line in reversed(lines[start:number]):
        found = _REMOTE_REPLY.match(line)
        if found is not None:
            return found[1]
        if _SESSION_START.match(line):
            break
    return ""


def transcript_command(text: str, address: str) -> str:
    """The SMTP command (``rcpt``, ``data``, ...) a transcript's error reply about
    ``address`` answered, or ''.

    The reply is a ``<<< 4xx/5xx`` line naming the address, or the first such line
    after ``>>> RCPT To:<address>``; its command is the last ``>>>`` line before it.
    """
    if "<<<" not in text:
        return ""
    wanted = address.lower()
    command = ""
    ours = False
    for line in text.splitlines()[:_MAX_LINES]:
        sent = _SENT_COMMAND.match(line)
        if sent is not None:
            command = sent[1].lower()
            ours = command == "rcpt" and wanted in line.lower()
            continue
        if _SESSION_START.match(line):
            command, ours = "", False
            continue
        if _REMOTE_REPLY.match(line) and (ours or wanted in line.lower()):
            return command or "conn"
    return ""


def _known(lines: list[str], text: str, address: str) -> TextRecipient:
    return TextRecipient(recipient=address, diagnostic=_segment(lines, text, address))


def diagnostic_for(text: str, address: str) -> str:
    """The paragraph of report ``text`` about ``address``, or all of it.

    The paragraph ends at a blank line, an ``X-…:`` header line or the line of
    another recipient.
    """
    lines = text.splitlines()
    wanted = address.lower()
    for number, line in enumerate(lines):
        if wanted in line.lower():
            end = next(
                (
                    n
                    for n in range(number + 1, len(lines))
                    if _paragraph_ends(lines[n], wanted)
                ),
                len(lines),
            )
            return _diagnostic(lines[number : min(end, number + _MAX_FOLLOW)], text)
    return text


def _paragraph_ends(line: str, wanted: str) -> bool:
    if not line.strip() or _X_HEADER.match(line):
        return True
    found = _RECIPIENT_LINE.match(line)
    return found is not None and found[2].lower() != wanted


def _segment(lines: list[str], text: str, address: str) -> str:
    wanted = address.lower()
    for number, line in enumerate(lines):
        if wanted in line.lower():
            return _diagnostic(lines[number : number + _MAX_FOLLOW], text)
    return text


def _diagnostic(segment: list[str], text: str) -> str:
    diagnostic = "\n".join(segment)
    if _CODE.search(diagnostic):
        return diagnostic
    return f"{diagnostic}\n{text}"


def _recipient_lines(
    lines: list[str], exclude: Collection[str]
) -> list[tuple[int, str]]:
    marks: list[tuple[int, str]] = []
    for number, line in enumerate(lines):
        found = _RECIPIENT_LINE.match(line)
        if found is not None and _quoted_to(found[1], lines, number):
            continue
        found = found or _RCPT_TO.search(line)
        if found is None:
            continue
        address = find_addresses(found[found.lastindex or 1])
        if address and _wanted(address[0], exclude):
            marks.append((number, address[0]))
    return marks


def _quoted_to(prefix: str | None, lines: list[str], number: int) -> bool:
    """Whether a ``To:`` line sits among the header lines of a quoted original."""
    if prefix is None or prefix.lower() != "to":
        return False
    near = lines[max(number - 2, 0) : number] + lines[number + 1 : number + 3]
    return any(_QUOTED_HEADER.match(line) for line in near)


def _wanted(address: str, exclude: Collection[str]) -> bool:
    local = address.partition("@")[0]
    return bool(local) and address.lower() not in exclude
