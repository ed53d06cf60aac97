"""SMTP replies: parse them (RFC 5321 / RFC 3463) and classify them into verdicts.

Rules:

1. Parsing never raises. Multi-line replies (``550-5.7.26 …``) are joined with spaces; a
   reply whose lines carry different codes (a ``220-`` banner followed by ``421 …``)
   takes the code of its last coded line, as RFC 5321 §4.2.1 makes the last line the
   final one. Text without a reply code gives ``code=None`` and keeps the text.
2. The reply code decides temporary vs permanent (``451 5.7.3`` is temporary); the
   enhanced code and the text decide the reason. With no reply code, the enhanced class
   decides.
3. Classification order, the rule of rules: **specific provider text > generic text >
   enhanced code > basic code**. In full: per-schedule overrides
   (``override:<name>``); the provider and gateway rules (``reply_rules_mailbox``,
   ``_intl``, ``_gateway``); the generic rules blaming the sender, its rate or a
   temporary DNS failure (``reply_rules_generic.STRONG_RULES``); the generic text that
   names a specific cause (``reply_rules_specific``: sender rejected, recipient
   disabled, unknown, full, dead domain); the informative enhanced status codes; the
   weak keywords that say little ("rejected", "policy", "try again later"); the
   enhanced subject (``x.7``); the reply code. Within a stage the rule listed first
   wins. ``SHIPPED_RULES`` is that order. So specific text beats a generic code
   (``550 5.1.1 … mailbox over quota`` is full, not unknown) and a generic code beats
   nothing.
4. A 4xx whose text says retrying will never succeed is read as permanent (Yahoo's
   ``421 … [TS03] … Retrying will NOT succeed``). A dead domain under a 4xx is a
   lookup that may still clear: ``soft``/``networkerror``.
5. Connection-level failures are values too: :func:`classify_failure`.

Speed: rules are indexed by the literal each pattern begins with; one scan of the text
with a trie-shaped regex of those literals finds the few rules worth running.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from warmup.core.lanes.schedule import ReplyPattern
from warmup.core.model import Verdict
from warmup.core.replies.rules import (
    CODE_RULES,
    ENHANCED_RULES,
    FALLBACK_RULE,
    SUBJECT_RULES,
    ReplyRule,
    verdict_for,
)
from warmup.core.replies.rules_gateway import GATEWAY_RULES
from warmup.core.replies.rules_generic import STRONG_RULES, WEAK_RULES
from warmup.core.replies.rules_index import build_index
from warmup.core.replies.rules_intl import INTL_RULES
from warmup.core.replies.rules_mailbox import MAILBOX_RULES
from warmup.core.replies.rules_specific import SPECIFIC_RULES

__all__ = [
    "SHIPPED_RULES",
    "Classification",
    "ConnectionFailure",
    "SMTPReply",
    "classify_failure",
    "classify_reply",
    "parse_reply",
]

_TEXT_RULES = (
    MAILBOX_RULES
    + INTL_RULES
    + GATEWAY_RULES
    + STRONG_RULES
    + SPECIFIC_RULES
    + WEAK_RULES
)

#: Every shipped rule, in the order the classifier consults them.
SHIPPED_RULES: tuple[ReplyRule, ...] = (
    *_TEXT_RULES,
    *ENHANCED_RULES,
    *SUBJECT_RULES,
    *CODE_RULES,
    FALLBACK_RULE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SMTPReply:
    """A parsed SMTP reply: the final reply code, the enhanced status code, the text."""

    code: int | None
    enhanced: str | None
    text: str

    def __str__(self) -> str:
        return " ".join(
            part for part in (str(self.code or ""), self.enhanced, self.text) if part
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """What a reply means for the sender; ``rule`` names the rule that decided."""

    verdict: Verdict
    reason: str
    code: int | None
    enhanced: str | None
    permanent: bool
    rule: str


# --- parsing --------------------------------------------------------------------------

_ENH = r"#?([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)"
_HEAD = re.compile(rf"([2-5]\d\d)(?:([ -])|$)\s*(?:{_ENH})?")
_ENHANCED_HEAD = re.compile(rf"{_ENH}\s*")
_EMBEDDED = re.compile(rf"(?<!\S)([2-5]\d\d)[ -](?:{_ENH}\s?)?")
_ANYWHERE = re.compile(rf"(?<![\w.])([2-5]\d\d)[ -]{_ENH}")
_SAID = re.compile(r"said:\s*([2-5]\d\d)[ -]")
_HASH_ENHANCED = re.compile(r"#([245]\.\d{1,3}\.\d{1,3})")
_PREFIX = re.compile(r"\s*(?:smtp|esmtp|x-[\w.-]+)\s*;\s*", re.IGNORECASE)


@dataclass(slots=True)
class _Lines:
    code: str | None = None
    enhanced: str | None = None
    continued: bool = False


def parse_reply(text: str) -> SMTPReply:
    """Parse one SMTP reply, one line or many (CRLF or LF); never raises."""
    prefix = _PREFIX.match(text) if ";" in text[:24] else None
    if prefix is not None:
        text = text[prefix.end() :]
    state = _Lines()
    parts = [_parse_line(line, state) for line in text.splitlines()]
    body = " ".join(" ".join(parts).split())
    if state.code is None:
        return _parse_uncoded(body, state.enhanced)
    if state.continued or state.code in body:
        body = _unfold(body, state)
    if state.enhanced is None and "#" in body:
        found = _HASH_ENHANCED.search(body)
        state.enhanced = found[1] if found else None
    return SMTPReply(code=int(state.code), enhanced=state.enhanced, text=body)


def _parse_line(line: str, state: _Lines) -> str:
    line = line.strip()
    head = _HEAD.match(line)
    if head is None:
        if state.code is None and state.enhanced is None:
            lead = _ENHANCED_HEAD.match(line)
            if lead is not None:
                state.enhanced = lead[1]
                return line[lead.end() :]
        return line
    code: str = head[1]
    enhanced: str | None = head[3]
    if state.code != code:
        state.enhanced = None
    state.code = code
    state.enhanced = enhanced or state.enhanced
    state.continued = head[2] == "-"
    return line[head.end() :]


def _unfold(body: str, state: _Lines) -> str:
    """Remove continuation codes left inside a flattened multi-line reply."""
    kept: list[str] = []
    position = 0
    for found in _EMBEDDED.finditer(body):
        code, enhanced = found[1], found[2]
        if code == state.code and enhanced in (None, state.enhanced):
            pass
        elif state.continued and enhanced is not None:
            state.code, state.enhanced = code, enhanced
        else:
            continue
        kept.append(body[position : found.start()])
        position = found.end()
    kept.append(body[position:])
    return " ".join("".join(kept).split())


def _parse_uncoded(body: str, enhanced: str | None) -> SMTPReply:
    found = _ANYWHERE.search(body)
    if found is not None:
        rest = body[: found.start()] + body[found.end() :]
        return SMTPReply(
            code=int(found[1]), enhanced=found[2], text=" ".join(rest.split())
        )
    said = _SAID.search(body)
    if said is not None:
        return SMTPReply(code=int(said[1]), enhanced=enhanced, text=body)
    if enhanced is None and "#" in body:
        found = _HASH_ENHANCED.search(body)  # qmail's "(#5.1.1)" tail
        enhanced = found[1] if found else None
    return SMTPReply(code=None, enhanced=enhanced, text=body)


# --- the rule index -------------------------------------------------------------------

_INDEX = build_index(_TEXT_RULES)
_BY_ENHANCED: dict[str, tuple[ReplyRule, ...]] = {}
for _rule in ENHANCED_RULES + SUBJECT_RULES:
    _BY_ENHANCED[_rule.enhanced] = (*_BY_ENHANCED.get(_rule.enhanced, ()), _rule)
#: "Retrying will NOT succeed" and the like: a 4xx that is permanent in all but code.
_NEVER = re.compile(
    r"(?:retrying|retries|trying again|resending) (?:will|would) (?:never|not) "
    r"(?:succeed|help|work)|do not (?:retry|try again)"
)
_BY_CODE = {rule.codes[0]: rule for rule in CODE_RULES}
_FALLBACKS = frozenset(rule.name for rule in (*CODE_RULES, FALLBACK_RULE))


# --- classification -------------------------------------------------------------------


def classify_reply(
    reply: SMTPReply, *, overrides: Sequence[ReplyPattern] = ()
) -> Classification:
    """Classify a parsed reply; ``overrides`` (a schedule's patterns) come first."""
    key = _code_key(reply)
    text = reply.text.lower()
    permanent = key.startswith("5") or (
        key.startswith("4") and _NEVER.search(text) is not None
    )
    line = str(reply) if overrides else ""
    for pattern in overrides:
        if _override_regex(pattern.regex).search(line):
            name = f"override:{pattern.name}"
            return _result(
                reply, permanent, Verdict(pattern.verdict), pattern.reason, name
            )
    rule = _decide(reply, key, text)
    if rule.reason == "hostunknown" and key.startswith("4") and not permanent:
        return _result(reply, False, Verdict.soft, "networkerror", rule.name)
    verdict = rule.verdict or verdict_for(rule.reason, permanent=permanent)
    return _result(reply, permanent, verdict, rule.reason, rule.name)


def _code_key(reply: SMTPReply) -> str:
    """The reply code as text, or the enhanced class alone when there is no code."""
    if reply.code is not None:
        return str(reply.code)
    return reply.enhanced[0] if reply.enhanced else ""


def _decide(reply: SMTPReply, key: str, text: str) -> ReplyRule:
    if key and key[0] in "23":
        return _BY_CODE[key[0]]
    candidates = _INDEX.candidates(text) if text else []
    return (
        _first_text_rule(candidates, text, reply, key, weak=False)
        or _enhanced_rule(reply, key, subject=False)
        or _first_text_rule(candidates, text, reply, key, weak=True)
        or _enhanced_rule(reply, key, subject=True)
        or _BY_CODE.get(key)
        or _BY_CODE.get(key[:1])
        or FALLBACK_RULE
    )


def _first_text_rule(
    candidates: list[int], text: str, reply: SMTPReply, key: str, *, weak: bool
) -> ReplyRule | None:
    for index in candidates:
        rule = _INDEX.rules[index]
        if (
            rule.weak is weak
            and _applies(rule, reply, key)
            and _INDEX.regexes[index].search(text)
        ):
            return rule
    return None


def _applies(rule: ReplyRule, reply: SMTPReply, key: str) -> bool:
    """Whether the reply meets the rule's code and enhanced-code conditions."""
    if rule.codes and not key.startswith(rule.codes):
        return False
    if not rule.enhanced:
        return True
    if reply.enhanced is None:
        return False
    wanted = rule.enhanced
    if wanted[0] != "x":
        return reply.enhanced == wanted
    if wanted.count(".") == 2:
        return reply.enhanced[1:] == wanted[1:]
    return reply.enhanced[1:].startswith(wanted[1:] + ".")


def _enhanced_rule(reply: SMTPReply, key: str, *, subject: bool) -> ReplyRule | None:
    if reply.enhanced is None:
        return None
    detail = reply.enhanced[1:]
    lookup = "x" + (detail[: detail.index(".", 1)] if subject else detail)
    for rule in _BY_ENHANCED.get(lookup, ()):
        if _applies(rule, reply, key):
            return rule
    return None


@lru_cache(maxsize=256)
def _override_regex(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE)


def _result(
    reply: SMTPReply, permanent: bool, verdict: Verdict, reason: str, rule: str
) -> Classification:
    return Classification(
        verdict=verdict,
        reason=reason,
        code=reply.code,
        enhanced=reply.enhanced,
        permanent=permanent,
        rule=rule,
    )


# --- connection-level failures --------------------------------------------------------


class ConnectionFailure(StrEnum):
    """A delivery attempt that ended before the server gave a reply to a command."""

    refused = "refused"  # TCP connection refused
    reset = "reset"  # connection reset or dropped mid-session
    timeout = "timeout"  # connect, greeting or command timed out
    tls = "tls"  # STARTTLS handshake or certificate failure
    greeting421 = "greeting421"  # the server answered the connection with 421
    dns = "dns"  # MX/A lookup failed temporarily (SERVFAIL, timeout)
    nxdomain = "nxdomain"  # the recipient domain does not exist
    nullmx = "nullmx"  # the recipient domain publishes a null MX (RFC 7505)


_FAILURES: dict[ConnectionFailure, tuple[str, bool]] = {
    ConnectionFailure.refused: ("networkerror", False),
    ConnectionFailure.reset: ("networkerror", False),
    ConnectionFailure.timeout: ("expired", False),
    ConnectionFailure.tls: ("failedstarttls", False),
    ConnectionFailure.dns: ("networkerror", False),
    ConnectionFailure.nxdomain: ("hostunknown", True),
    ConnectionFailure.nullmx: ("notaccept", True),
}


def classify_failure(kind: ConnectionFailure | str, detail: str = "") -> Classification:
    """Classify a connection-level failure; ``detail`` is the greeting text for 421.

    Network trouble, timeouts and TLS failures are temporary (``soft``). A 421 greeting
    is classified by its text and, unless that names a rate or sender problem, taken as
    a connection limit (``throttle``/``toomanyconn``): the server refuses us for now.
    A domain that does not exist or takes no mail (NXDOMAIN, null MX) is ``hard``.
    """
    kind = ConnectionFailure(kind)
    if kind is ConnectionFailure.greeting421:
        return _classify_greeting(detail)
    reason, permanent = _FAILURES[kind]
    verdict = verdict_for(reason, permanent=permanent)
    return Classification(
        verdict=verdict,
        reason=reason,
        code=None,
        enhanced=None,
        permanent=permanent,
        rule=f"connection-{kind}",
    )


def _classify_greeting(detail: str) -> Classification:
    reply = parse_reply(detail)
    if reply.code is None or reply.code >= 500:
        reply = SMTPReply(code=421, enhanced=reply.enhanced, text=reply.text)
    classified = classify_reply(reply)
    if classified.verdict is Verdict.throttle and classified.rule not in _FALLBACKS:
        return classified
    return _result(
        reply, False, Verdict.throttle, "toomanyconn", "connection-greeting421"
    )
