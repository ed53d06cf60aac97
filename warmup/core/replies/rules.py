"""Reply classification rules as data, and the policy turning a reason into a verdict.

Rules (the engine is :mod:`warmup.core.replies.classify`):

1. The reply code decides temporary (4xx) vs permanent (5xx); the enhanced status code
   (RFC 3463) and the text decide the *reason*, a token in Sisimai's vocabulary.
2. A reason becomes a verdict by :func:`verdict_for`, which follows the bucket policy of
   ``shared/corpus/bounces/README.md``: a dead address is ``hard`` even at 4xx; rate and
   connection limits are ``throttle`` at any code; a refusal aimed at the sender
   (reputation, DNSBL, SPF/DKIM/DMARC, PTR, spam, policy) is ``throttle`` at 4xx and
   ``block`` at 5xx; the sender's own configuration (relaying, TLS, envelope-from, RFC
   compliance) is ``soft`` at 4xx and ``block`` at 5xx; everything else is ``soft``.
3. A rule may set ``verdict`` itself when the reason alone would mislead, e.g. Gmail's
   ``452 4.2.1`` "the *recipient* is receiving mail too fast" is ``speeding`` but
   ``soft``.
4. Nothing that blames the sending IP is ever ``hard``: such rules carry sender reasons.

This module holds the rule type, the policy and the RFC 3463 / RFC 5321 tables; provider
and generic text rules live in ``reply_rules_*`` modules, one per group of providers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warmup.core.model import Verdict

__all__ = [
    "CODE_RULES",
    "ENHANCED_RULES",
    "EXIM",
    "FALLBACK_RULE",
    "GENERIC",
    "POSTFIX",
    "QMAIL",
    "REASONS",
    "SENDMAIL",
    "SISIMAI",
    "SUBJECT_RULES",
    "Provider",
    "ReplyRule",
    "verdict_for",
]

_HARD = frozenset({"userunknown", "hostunknown", "hasmoved"})
_RATE = frozenset({"speeding", "toomanyconn"})
_SENDER_BLAME = frozenset(
    {
        "authfailure",
        "badreputation",
        "blocked",
        "policyviolation",
        "requireptr",
        "spamdetected",
        "virusdetected",
    }
)
_SENDER_CONFIG = frozenset(
    {
        "contenterror",
        "failedstarttls",
        "norelaying",
        "notcompliantrfc",
        "rejected",
        "securityerror",
        "suppressed",
        "syntaxerror",
    }
)
_SOFT = frozenset(
    {
        "exceedlimit",
        "expired",
        "filtered",
        "greylisted",
        "mailboxfull",
        "mailererror",
        "mesgtoobig",
        "networkerror",
        "onhold",
        "suspend",
        "systemerror",
        "systemfull",
        "undefined",
    }
)

#: Every reason token a rule may carry.
REASONS = frozenset(
    {"delivered", "notaccept"} | _HARD | _RATE | _SENDER_BLAME | _SENDER_CONFIG | _SOFT
)


def _policy(permanent: bool) -> dict[str, Verdict]:
    table = dict.fromkeys(_SOFT, Verdict.soft)
    table |= dict.fromkeys(_HARD, Verdict.hard)
    table |= dict.fromkeys(_RATE, Verdict.throttle)
    table |= dict.fromkeys(
        _SENDER_BLAME, Verdict.block if permanent else Verdict.throttle
    )
    table |= dict.fromkeys(_SENDER_CONFIG, Verdict.block if permanent else Verdict.soft)
    table["notaccept"] = Verdict.hard if permanent else Verdict.soft
    table["delivered"] = Verdict.delivered
    return table


_TEMPORARY_POLICY = _policy(permanent=False)
_PERMANENT_POLICY = _policy(permanent=True)


def verdict_for(reason: str, *, permanent: bool) -> Verdict:
    """The verdict for a reason under the bucket policy (see the module docstring)."""
    table = _PERMANENT_POLICY if permanent else _TEMPORARY_POLICY
    try:
        return table[reason]
    except KeyError:
        raise ValueError(f"unknown reply reason {reason!r}") from None


_ENHANCED = re.compile(r"(?:[245x])\.\d{1,3}(?:\.\d{1,3})?")
_CODE_PREFIX = re.compile(r"[2-5]\d{0,2}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyRule:
    """One shipped rule: conditions on a parsed reply, and the reason they mean.

    Every condition that is set must hold:

    * ``codes``: prefixes of the 3-digit reply code (``"4"``, ``"55"``, ``"421"``);
    * ``enhanced``: an RFC 3463 code, exact (``"5.7.26"``), of any class (``"x.7.26"``)
      or, for pattern-less subject defaults, a subject only (``"x.7"``);
    * ``pattern``: a regex searched in the lower-cased, whitespace-normalised reply
      text. It must begin with a literal of at least two characters, the first a word
      character, and have no top-level ``|``: the engine indexes rules by that literal.

    ``weak`` rules are generic keywords consulted only after the enhanced status code
    had its say; provider rules and sender-blaming generic rules are strong, and first.
    ``verdict`` overrides :func:`verdict_for` when the reason alone would mislead.
    """

    name: str
    provider: str
    reason: str
    source: str
    pattern: str | None = None
    codes: tuple[str, ...] = ()
    enhanced: str = ""
    verdict: Verdict | None = None
    weak: bool = False

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"rule {self.name!r}: unknown reason {self.reason!r}")
        if self.enhanced and not _ENHANCED.fullmatch(self.enhanced):
            raise ValueError(f"rule {self.name!r}: bad enhanced code {self.enhanced!r}")
        if any(not _CODE_PREFIX.fullmatch(code) for code in self.codes):
            raise ValueError(
                f"rule {self.name!r}: bad reply-code prefix in {self.codes!r}"
            )
        if not self.source:
            raise ValueError(f"rule {self.name!r} cites no source")


@dataclass(frozen=True, slots=True)
class Provider:
    """Builds the rules of one provider, which share a name and a primary source."""

    name: str
    source: str

    def rule(
        self,
        name: str,
        pattern: str | None,
        reason: str,
        *,
        codes: tuple[str, ...] = (),
        enhanced: str = "",
        verdict: Verdict | None = None,
        weak: bool = False,
        source: str = "",
    ) -> ReplyRule:
        return ReplyRule(
            name=name,
            provider=self.name,
            reason=reason,
            source=source or self.source,
            pattern=pattern,
            codes=codes,
            enhanced=enhanced,
            verdict=verdict,
            weak=weak,
        )


#: The providers whose rules are spread over several modules (generic, specific).
SISIMAI = "https://github.com/sisimai/go-sisimai/tree/main/reason"
GENERIC = Provider("generic", SISIMAI)
POSTFIX = Provider("postfix", "https://www.postfix.org/postconf.5.html")
EXIM = Provider("exim", "https://www.exim.org/exim-html-current/doc/html/spec_html/")
SENDMAIL = Provider(
    "sendmail", "https://www.sendmail.org/~ca/email/doc8.12/op-sh-5.html"
)
QMAIL = Provider("qmail", "https://cr.yp.to/qmail/qmail-smtpd.html")

_RFC3463 = Provider("rfc3463", "https://www.rfc-editor.org/rfc/rfc3463")
_IANA = "https://www.iana.org/assignments/smtp-enhanced-status-codes"
_RFC5321 = Provider("rfc5321", "https://www.rfc-editor.org/rfc/rfc5321#section-4.2.3")


def _enhanced(
    detail: str, reason: str, source: str = "", codes: tuple[str, ...] = ()
) -> ReplyRule:
    name = f"generic-enhanced-{codes[0] if codes else 'x'}.{detail}"
    return _RFC3463.rule(
        name, None, reason, enhanced=f"x.{detail}", source=source, codes=codes
    )


#: Informative enhanced status codes: consulted right after the strong text rules.
ENHANCED_RULES: tuple[ReplyRule, ...] = (
    _enhanced("1.1", "userunknown"),
    _enhanced("1.2", "hostunknown"),
    _enhanced("1.3", "userunknown"),
    _enhanced("1.4", "filtered"),
    _enhanced("1.6", "hasmoved"),
    _enhanced("1.7", "rejected"),
    _enhanced("1.8", "rejected"),
    _enhanced("1.9", "systemerror"),
    _enhanced("1.10", "notaccept", "https://www.rfc-editor.org/rfc/rfc7505"),
    _enhanced("2.1", "suspend"),
    _enhanced("2.2", "mailboxfull"),
    _enhanced("2.3", "exceedlimit"),
    _enhanced("2.4", "filtered"),
    _enhanced("3.1", "systemfull"),
    # "System not accepting network messages" for now: a connection or load limit.
    _enhanced("3.2", "toomanyconn", codes=("4",)),
    _enhanced("3.2", "notaccept"),
    _enhanced("3.3", "systemerror"),
    _enhanced("3.4", "mesgtoobig"),
    _enhanced("3.5", "systemerror"),
    _enhanced("4.1", "expired"),
    _enhanced("4.2", "networkerror"),
    _enhanced("4.3", "systemerror"),
    _enhanced("4.4", "networkerror"),
    _enhanced("4.5", "systemfull"),
    _enhanced("4.6", "networkerror"),
    _enhanced("4.7", "expired"),
    _enhanced("5.1", "syntaxerror"),
    _enhanced("5.2", "syntaxerror"),
    _enhanced("5.3", "toomanyconn"),
    _enhanced("5.4", "syntaxerror"),
    _enhanced("5.5", "syntaxerror"),
    _enhanced("5.6", "syntaxerror", "https://www.rfc-editor.org/rfc/rfc4954"),
    _enhanced("6.1", "contenterror"),
    _enhanced("6.2", "contenterror"),
    _enhanced("6.3", "contenterror"),
    _enhanced("6.5", "contenterror"),
    _enhanced("6.6", "contenterror"),
    _enhanced("6.7", "contenterror", "https://www.rfc-editor.org/rfc/rfc6531"),
    _enhanced("7.2", "policyviolation"),
    _enhanced("7.3", "securityerror"),
    _enhanced("7.4", "securityerror"),
    _enhanced("7.5", "securityerror"),
    _enhanced("7.6", "securityerror"),
    _enhanced("7.7", "securityerror"),
    _enhanced("7.8", "securityerror", "https://www.rfc-editor.org/rfc/rfc4954"),
    _enhanced("7.10", "failedstarttls", _IANA),
    _enhanced("7.11", "securityerror", "https://www.rfc-editor.org/rfc/rfc4954"),
    _enhanced("7.12", "securityerror", "https://www.rfc-editor.org/rfc/rfc4954"),
    _enhanced("7.13", "suspend", _IANA),
    _enhanced("7.14", "securityerror", _IANA),
    _enhanced("7.15", "securityerror", _IANA),
    _enhanced("7.16", "mesgtoobig", _IANA),
    _enhanced("7.17", "hasmoved", "https://www.rfc-editor.org/rfc/rfc7293"),
    _enhanced("7.18", "hasmoved", "https://www.rfc-editor.org/rfc/rfc7293"),
    _enhanced("7.20", "authfailure", "https://www.rfc-editor.org/rfc/rfc7372"),
    _enhanced("7.21", "authfailure", "https://www.rfc-editor.org/rfc/rfc7372"),
    _enhanced("7.22", "authfailure", "https://www.rfc-editor.org/rfc/rfc7372"),
    _enhanced("7.23", "authfailure", "https://www.rfc-editor.org/rfc/rfc7372"),
    _enhanced("7.24", "authfailure", "https://www.rfc-editor.org/rfc/rfc7372"),
    _enhanced("7.25", "requireptr", "https://www.rfc-editor.org/rfc/rfc7372"),
    _enhanced("7.26", "authfailure", "https://www.rfc-editor.org/rfc/rfc7372"),
    _enhanced("7.27", "rejected", "https://www.rfc-editor.org/rfc/rfc7505"),
    _enhanced("7.28", "spamdetected", _IANA),
    _enhanced("7.29", "authfailure", "https://www.rfc-editor.org/rfc/rfc8617"),
    _enhanced("7.30", "failedstarttls", "https://www.rfc-editor.org/rfc/rfc8689"),
)


def _subject(subject: str, reason: str, codes: tuple[str, ...] = ()) -> ReplyRule:
    name = f"generic-enhanced-x.{subject}"
    return _RFC3463.rule(
        name, None, reason, enhanced=f"x.{subject}", codes=codes, weak=True
    )


#: Subject-only defaults (x.0.0, x.7.1, ...): consulted after the weak text rules.
SUBJECT_RULES: tuple[ReplyRule, ...] = (
    _subject("1", "userunknown", codes=("5",)),
    _subject("2", "filtered"),
    _subject("3", "systemerror"),
    _subject("4", "networkerror"),
    _subject("5", "syntaxerror"),
    _subject("6", "contenterror"),
    _subject("7", "blocked"),
)


def _code(code: str, reason: str) -> ReplyRule:
    return _RFC5321.rule(f"generic-code-{code}", None, reason, codes=(code,), weak=True)


#: Reply-code fallbacks (exact codes, then classes): the last resort.
CODE_RULES: tuple[ReplyRule, ...] = (
    _code("2", "delivered"),
    _code("3", "delivered"),
    _code("421", "blocked"),
    _code("432", "securityerror"),
    _code("452", "systemfull"),
    _code("454", "securityerror"),
    _code("4", "undefined"),
    _code("500", "syntaxerror"),
    _code("501", "syntaxerror"),
    _code("502", "syntaxerror"),
    _code("503", "syntaxerror"),
    _code("504", "syntaxerror"),
    _code("521", "notaccept"),
    _code("530", "securityerror"),
    _code("534", "securityerror"),
    _code("535", "securityerror"),
    _code("538", "securityerror"),
    _code("551", "hasmoved"),
    _code("552", "mailboxfull"),
    _code("555", "syntaxerror"),
    _code("556", "notaccept"),
    _code("5", "undefined"),
)

#: When nothing else applies (no code, no enhanced code, no known wording).
FALLBACK_RULE = _RFC5321.rule("generic-undefined", None, "undefined", weak=True)
