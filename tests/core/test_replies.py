"""SMTP reply parsing and classification, driven by the labelled table.

``tests/data/replies.jsonl`` holds one labelled reply per line: ``reply``, the expected
``verdict`` and ``reason``, the ``provider``, the ``source`` it comes from and its
``origin`` (``doc``: a provider's page; ``sisimai``: quoted in Sisimai's sources;
``corpus``: the Diagnostic-Code of a sample in ``shared/corpus/bounces``, labelled by
Sisimai's tests; ``composed``: built around a phrase the source lists). A corpus row
whose label the reply alone cannot support carries ``xfail``; one relabelled on
documented grounds keeps Sisimai's label in ``sisimai`` and the grounds in ``note``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import warmup.core.replies.classify as replies_module
import warmup.core.replies.rules as rules_module
import warmup.core.replies.rules_gateway as gateway_module
import warmup.core.replies.rules_generic as generic_module
import warmup.core.replies.rules_index as index_module
import warmup.core.replies.rules_intl as intl_module
import warmup.core.replies.rules_mailbox as mailbox_module
import warmup.core.replies.rules_specific as specific_module
from warmup.core.lanes.schedule import ReplyPattern
from warmup.core.model import Verdict
from warmup.core.replies.classify import (
    SHIPPED_RULES,
    Classification,
    ConnectionFailure,
    SMTPReply,
    classify_failure,
    classify_reply,
    parse_reply,
)
from warmup.core.replies.rules import REASONS, verdict_for

TABLE = Path(__file__).resolve().parents[1] / "data" / "replies.jsonl"
ROWS: list[dict[str, Any]] = [
    json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line
]


def classify(text: str) -> Classification:
    return classify_reply(parse_reply(text))


def _row_param(index: int, row: dict[str, Any]) -> Any:
    marks = (
        [pytest.mark.xfail(reason=row["xfail"], strict=True)] if "xfail" in row else []
    )
    return pytest.param(row, id=f"{index:03d}-{row['provider']}", marks=marks)


# --- the table ------------------------------------------------------------------------


@pytest.mark.parametrize("row", [_row_param(i, row) for i, row in enumerate(ROWS)])
def test_table_row_verdict(row: dict[str, Any]) -> None:
    assert classify(row["reply"]).verdict == row["verdict"]


def test_table_accuracy_report() -> None:
    results = [(row, classify(row["reply"])) for row in ROWS]
    verdicts = sum(got.verdict == row["verdict"] for row, got in results)
    reasons = sum(got.reason == row["reason"] for row, got in results)
    by_origin: Counter[str] = Counter()
    right_by_origin: Counter[str] = Counter()
    for row, got in results:
        by_origin[row["origin"]] += 1
        right_by_origin[row["origin"]] += got.verdict == row["verdict"]
    print(
        f"\n{len(results)} replies: verdict {verdicts / len(results):.1%}, "
        f"reason {reasons / len(results):.1%}"
    )
    for origin, total in sorted(by_origin.items()):
        share = right_by_origin[origin] / total
        print(f"  {origin:9} {total:4} rows, verdict {share:.1%}")
    assert len(results) == len(ROWS) >= 300
    assert verdicts / len(results) >= 0.95
    assert right_by_origin["corpus"] / by_origin["corpus"] >= 0.9


def test_table_rows_are_well_formed() -> None:
    assert len({row["reply"] for row in ROWS}) == len(ROWS)
    for row in ROWS:
        assert Verdict(row["verdict"]) in Verdict
        assert row["reason"] in REASONS
        assert row["source"].startswith("http")
        assert row["origin"] in {"doc", "sisimai", "corpus", "composed"}


def test_every_text_rule_decides_at_least_one_row() -> None:
    deciding = Counter(classify(row["reply"]).rule for row in ROWS)
    unused = [
        rule.name for rule in SHIPPED_RULES if rule.pattern and not deciding[rule.name]
    ]
    assert unused == []


def test_replies_blaming_the_sender_are_never_hard() -> None:
    blaming = [row for row in ROWS if row["verdict"] in ("throttle", "block")]
    assert len(blaming) > 150
    hard = [row["reply"] for row in blaming if classify(row["reply"]).verdict == "hard"]
    assert hard == []


@pytest.mark.parametrize(
    ("text", "verdict", "reason"),
    [
        (
            "421 4.7.28 [203.0.113.10] Our system has detected an unusual rate of "
            "unsolicited mail originating from your IP address.",
            Verdict.throttle,
            "speeding",
        ),
        (
            "550 5.1.1 <a@example.com>: Recipient address rejected: NoSuchUser",
            "hard",
            "userunknown",
        ),
        ("550 5.7.26 This mail is unauthenticated", Verdict.block, "authfailure"),
        (
            "452 4.2.1 The user you are trying to contact is receiving mail at a rate "
            "that prevents additional messages from being delivered.",
            Verdict.soft,
            "speeding",
        ),
        (
            "550 5.7.1 Unfortunately, messages from [203.0.113.10] weren't sent. "
            "Please contact your Internet service provider since part of their "
            "network is on our block list (S3150).",
            Verdict.block,
            "blocked",
        ),
        (
            "550 5.7.515 Access denied, sending domain EXAMPLE.COM doesn't meet the "
            "required authentication level.",
            Verdict.block,
            "authfailure",
        ),
        ("550 5.7.1 Access denied, banned sender", Verdict.block, "blocked"),
        (
            "451 4.7.650 The mail server [203.0.113.10] has been temporarily rate "
            "limited due to IP reputation.",
            Verdict.throttle,
            "badreputation",
        ),
        (
            "421 4.7.0 [TSS04] Messages from 203.0.113.10 temporarily deferred due to "
            "unexpected volume or user complaints",
            Verdict.throttle,
            "badreputation",
        ),
        (
            "550 5.1.1 <a@example.com> blocked using zen.spamhaus.org",
            Verdict.block,
            "blocked",
        ),
        (
            "450 4.1.1 <a@example.com>: Recipient address rejected: User unknown",
            Verdict.hard,
            "userunknown",
        ),
        ("250 2.0.0 OK", Verdict.delivered, "delivered"),
    ],
)
def test_acceptance_examples(text: str, verdict: Verdict, reason: str) -> None:
    got = classify(text)
    assert (got.verdict, got.reason) == (verdict, reason)


# --- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "enhanced", "message"),
    [
        ("550 5.1.1 User unknown", 550, "5.1.1", "User unknown"),
        (
            "550-5.7.26 first line\r\n550 5.7.26 second line",
            550,
            "5.7.26",
            "first line second line",
        ),
        ("421-4.7.28 a\n421-4.7.28 b\n421 4.7.28 c", 421, "4.7.28", "a b c"),
        ("550-Line one\r\n550 Line two", 550, None, "Line one Line two"),
        (
            "550-5.1.1 The email account that you tried to reach does not exist. "
            "Please try 550-5.1.1 double-checking",
            550,
            "5.1.1",
            "The email account that you tried to reach does not exist. Please try "
            "double-checking",
        ),
        (
            "421 RP-001 (BAY004-MC1F50) Unfortunately",
            421,
            None,
            "RP-001 (BAY004-MC1F50) Unfortunately",
        ),
        (
            "554 delivery error: dd This user doesn't have a yahoo.com account",
            554,
            None,
            "delivery error: dd This user doesn't have a yahoo.com account",
        ),
        ("451 HL:IFC 163 mx5", 451, None, "HL:IFC 163 mx5"),
        ("550 user unknown", 550, None, "user unknown"),
        ("451 5.7.3 mismatch", 451, "5.7.3", "mismatch"),
        (
            "550 5.5.0 Le compte du destinataire est bloqué",
            550,
            "5.5.0",
            "Le compte du destinataire est bloqué",
        ),
        (
            "220-laposte 421 4.2.1 Service refuse.",
            421,
            "4.2.1",
            "laposte Service refuse.",
        ),
        (
            "220-mx.example.org banner\r\n421 4.7.0 Try again later",
            421,
            "4.7.0",
            "mx.example.org banner Try again later",
        ),
        (
            "smtp; 550 5.1.1 <a@b>... User Unknown",
            550,
            "5.1.1",
            "<a@b>... User Unknown",
        ),
        ("550 #5.1.0 Address rejected.", 550, "5.1.0", "Address rejected."),
        (
            "550 sorry, no mailbox here by that name. (#5.1.1)",
            550,
            "5.1.1",
            "sorry, no mailbox here by that name. (#5.1.1)",
        ),
        ("5.1.1 User unknown", None, "5.1.1", "User unknown"),
        (
            "550 5.7.1 Rejected; x-spam; see policy",
            550,
            "5.7.1",
            "Rejected; x-spam; see policy",
        ),
        (
            "host mx.example.jp said: 550 5.1.1 <a@b>: no such user "
            "(in reply to RCPT TO)",
            550,
            "5.1.1",
            "host mx.example.jp said: <a@b>: no such user (in reply to RCPT TO)",
        ),
        ("550", 550, None, ""),
        ("550 5.7.1.", 550, "5.7.1", "."),
        ("", None, None, ""),
        ("\x00\xff garbage \u2603", None, None, "\x00\xff garbage \u2603"),
        ("600 not a reply code", None, None, "600 not a reply code"),
    ],
)
def test_parse_reply(
    text: str, code: int | None, enhanced: str | None, message: str
) -> None:
    assert parse_reply(text) == SMTPReply(code=code, enhanced=enhanced, text=message)


def test_reply_renders_as_one_line() -> None:
    assert str(parse_reply("550-5.1.1 a\r\n550 5.1.1 b")) == "550 5.1.1 a b"
    assert str(SMTPReply(code=None, enhanced=None, text="x")) == "x"


@given(st.text())
def test_parse_and_classify_never_raise(text: str) -> None:
    reply = parse_reply(text)
    assert reply.code is None or 200 <= reply.code <= 599
    assert classify_reply(reply).verdict in Verdict


@given(
    st.from_regex(r"[2-5]\d\d[ -][245]\.\d{1,3}\.\d{1,3} [ -~]{0,60}", fullmatch=True)
)
def test_the_reply_code_decides_permanence(text: str) -> None:
    got = classify(text)
    assert got.permanent is text.startswith("5")
    assert got.verdict is not Verdict.block or got.permanent


# --- classification details -----------------------------------------------------------


def test_code_decides_temporary_even_against_the_enhanced_class() -> None:
    assert classify("451 5.7.3 conversion not possible").permanent is False
    assert classify("550 4.4.7 QUEUE.Expired; message expired").permanent is True
    assert classify("5.1.1 user unknown").permanent is True
    assert classify(
        "421 5.7.32 not aligned with either the authenticated SPF"
    ).verdict == (Verdict.throttle)


def test_classification_carries_the_parsed_codes() -> None:
    got = classify("550 5.1.1 <a@b>: user unknown")
    assert (got.code, got.enhanced, got.rule) == (550, "5.1.1", "user-unknown")
    bare = classify("550 5.1.1 <a@b>")
    assert (bare.code, bare.enhanced, bare.rule) == (
        550,
        "5.1.1",
        "generic-enhanced-x.1.1",
    )


def test_overrides_come_before_shipped_rules() -> None:
    pattern = ReplyPattern(
        name="quota",
        regex=r"^550 5\.1\.1 .*QUOTA",
        verdict="soft",
        reason="mailboxfull",
    )
    got = classify_reply(
        parse_reply("550-5.1.1 account\r\n550 5.1.1 over quota"), overrides=[pattern]
    )
    assert (got.verdict, got.reason, got.rule) == (
        "soft",
        "mailboxfull",
        "override:quota",
    )
    assert got.permanent is True
    plain = classify_reply(parse_reply("550 5.1.1 no such user"), overrides=[pattern])
    assert plain.rule == "no-such-user"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        # specific provider text > generic text
        ("550 5.2.1 The email account that you tried to reach is inactive", "gmail"),
        # generic text > enhanced code, whatever the code
        ("550 5.1.1 <a@b>: mailbox over quota", "over-quota"),
        ("550 5.2.1 <a@b>: user does not exist", "user-not-found"),
        ("550 5.4.1 <a@b>: account does not exist", "account-not-exist"),
        ("550 5.1.1 <a@b>: mailbox is inactive", "mailbox-disabled"),
        # enhanced code > weak keywords and the basic code
        ("550 5.2.2 rejected", "generic-enhanced-x.2.2"),
        ("452 4.3.2 please come back later", "generic-enhanced-4.3.2"),
        # the basic code, when nothing else speaks
        ("550 no", "generic-code-5"),
    ],
)
def test_rule_order_specific_text_then_generic_text_then_codes(
    text: str, rule: str
) -> None:
    assert classify(text).rule.startswith(rule)


def test_a_4xx_that_says_retrying_never_succeeds_is_permanent() -> None:
    got = classify("450 4.7.1 Client host rejected: retrying will never succeed")
    assert (got.verdict, got.permanent) == (Verdict.block, True)
    assert classify("450 4.7.1 Client host rejected: try again").permanent is False


def test_a_dead_domain_under_a_4xx_is_a_lookup_that_may_clear() -> None:
    got = classify(
        "450 4.1.2 <a@example.com>: Recipient address rejected: Domain not found"
    )
    assert (got.verdict, got.reason) == (Verdict.soft, "networkerror")
    dead = classify(
        "550 5.1.2 <a@example.com>: Recipient address rejected: Domain not found"
    )
    assert (dead.verdict, dead.reason) == (Verdict.hard, "hostunknown")


def test_override_with_an_unknown_verdict_raises() -> None:
    pattern = ReplyPattern(name="bad", regex="x", verdict="maybe", reason="undefined")
    with pytest.raises(ValueError, match="maybe"):
        classify_reply(parse_reply("550 x"), overrides=[pattern])


@pytest.mark.parametrize(
    ("reason", "temporary", "permanent"),
    [
        ("userunknown", "hard", "hard"),
        ("speeding", "throttle", "throttle"),
        ("blocked", "throttle", "block"),
        ("norelaying", "soft", "block"),
        ("notaccept", "soft", "hard"),
        ("mailboxfull", "soft", "soft"),
        ("delivered", "delivered", "delivered"),
    ],
)
def test_verdict_policy(reason: str, temporary: str, permanent: str) -> None:
    assert verdict_for(reason, permanent=False) == temporary
    assert verdict_for(reason, permanent=True) == permanent


def test_verdict_policy_rejects_unknown_reasons() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        verdict_for("nonsense", permanent=True)


def test_shipped_rules_are_well_formed() -> None:
    names = [rule.name for rule in SHIPPED_RULES]
    assert len(names) == len(set(names))
    assert all(rule.source.startswith("http") for rule in SHIPPED_RULES)
    assert all(rule.reason in REASONS for rule in SHIPPED_RULES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reason": "nonsense"},
        {"enhanced": "5.x"},
        {"codes": ("6",)},
        {"source": ""},
    ],
)
def test_rule_validation(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "name": "r",
        "provider": "p",
        "reason": "blocked",
        "source": "https://example.org",
        "pattern": "abc",
    }
    with pytest.raises(ValueError, match="rule 'r'"):
        rules_module.ReplyRule(**(fields | kwargs))


@pytest.mark.parametrize("pattern", ["a", "(?:x|y)z", "ABC", "abc|def", r"\dabc"])
def test_unindexable_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="leading literal"):
        index_module.anchor(pattern)


@pytest.mark.parametrize(
    ("pattern", "anchor"),
    [
        ("spamhaus", "spamhaus"),
        (r"server busy\. please", "server busy. please"),
        ("user ?unknown", "user"),
        ("^: user unknown", ": user unknown"),
        ("ab[cd]", "ab"),
        ("tss(?:09|1[01])", "tss"),
    ],
)
def test_anchor_is_the_leading_literal(pattern: str, anchor: str) -> None:
    assert index_module.anchor(pattern) == anchor


# --- connection-level failures --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "verdict", "reason", "permanent"),
    [
        ("refused", "soft", "networkerror", False),
        ("reset", "soft", "networkerror", False),
        ("timeout", "soft", "expired", False),
        ("tls", "soft", "failedstarttls", False),
        ("dns", "soft", "networkerror", False),
        ("nxdomain", "hard", "hostunknown", True),
        ("nullmx", "hard", "notaccept", True),
    ],
)
def test_connection_failures(
    kind: str, verdict: str, reason: str, permanent: bool
) -> None:
    got = classify_failure(kind, "ignored")
    assert (got.verdict, got.reason, got.permanent) == (verdict, reason, permanent)
    assert (got.code, got.enhanced, got.rule) == (None, None, f"connection-{kind}")


@pytest.mark.parametrize(
    ("greeting", "reason", "rule"),
    [
        (
            "421 mx.example.org Service not available",
            "toomanyconn",
            "connection-greeting421",
        ),
        (
            "421 4.3.0 Temporary System Problem. Try again later.",
            "toomanyconn",
            "connection-greeting421",
        ),
        ("", "toomanyconn", "connection-greeting421"),
        (
            "554 mx.example.org Service unavailable; blocked using zen.spamhaus.org",
            "blocked",
            "dnsbl-spamhaus",
        ),
        (
            "421 4.7.0 [TSS04] Messages from 203.0.113.10 temporarily deferred",
            "badreputation",
            "yahoo-tss04",
        ),
    ],
)
def test_greeting_421(greeting: str, reason: str, rule: str) -> None:
    got = classify_failure(ConnectionFailure.greeting421, greeting)
    assert (got.verdict, got.reason, got.rule, got.permanent) == (
        Verdict.throttle,
        reason,
        rule,
        False,
    )


def test_unknown_failure_kind_raises() -> None:
    with pytest.raises(ValueError, match="meltdown"):
        classify_failure("meltdown")


@pytest.mark.parametrize(
    "module",
    [
        replies_module,
        rules_module,
        gateway_module,
        generic_module,
        intl_module,
        mailbox_module,
        specific_module,
    ],
)
def test_exports_are_sorted(module: Any) -> None:
    def isort_key(name: str) -> tuple[int, str]:  # constants, classes, then functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert list(module.__all__) == sorted(module.__all__, key=isort_key)
