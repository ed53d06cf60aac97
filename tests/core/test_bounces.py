"""Bounce parsing: the labelled corpus, hand-picked samples, fuzzing and the CLI.

The corpus (``shared/corpus/bounces``) drives the metrics: recipient recall and
verdict (bucket) accuracy, hard-vs-not-hard accuracy, reason and status accuracy.
The thresholds sit a little below what the parser reaches, so a regression fails.
"""

from __future__ import annotations

import json
import mailbox
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmup.cli.bounces_cmd import bounces
from warmup.core.bounces import BounceKind, BounceReport, parse_bounce
from warmup.core.model import Verdict

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "bounces"
MANIFEST = CORPUS / "manifest.jsonl"
needs_corpus = pytest.mark.skipif(
    not MANIFEST.is_file(), reason=f"bounce corpus not found at {CORPUS}"
)

# Reached on the dev corpus: see the report printed by test_corpus_metrics.
MIN_KIND = 0.98
MIN_RECALL = 0.97
MIN_BUCKET = 0.86
MIN_HARD = 0.90
MIN_REASON = 0.76
MIN_STATUS = 0.67


def _manifest() -> list[dict[str, Any]]:
    with MANIFEST.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


@dataclass(slots=True)
class _Score:
    mails: int = 0
    kinds: int = 0
    expected: int = 0
    found: int = 0
    bucket: int = 0
    hard: int = 0
    reason: int = 0
    status: int = 0

    def add(self, entry: dict[str, Any], report: BounceReport) -> None:
        self.mails += 1
        self.kinds += report.kind == entry["kind"]
        for want in entry["expected"]:
            self.expected += 1
            index = want["index"] - 1
            if index >= len(report.recipients):
                continue
            got = report.recipients[index]
            self.found += 1
            self.bucket += got.verdict == want["bucket"]
            self.hard += (got.verdict == "hard") == (want["bucket"] == "hard")
            self.reason += got.reason == want["reason"]
            self.status += got.status == want["deliverystatus"]

    def rates(self) -> dict[str, float]:
        total = max(self.expected, 1)
        return {
            "kind": self.kinds / max(self.mails, 1),
            "recall": self.found / total,
            "bucket": self.bucket / total,
            "hard": self.hard / total,
            "reason": self.reason / total,
            "status": self.status / total,
        }


@needs_corpus
def test_corpus_metrics() -> None:
    score = _Score()
    for entry in _manifest():
        score.add(entry, parse_bounce((CORPUS / entry["path"]).read_bytes()))
    rates = score.rates()
    print(
        f"\nbounce corpus: {score.mails} mails, {score.expected} recipients: "
        + ", ".join(f"{name} {value:.1%}" for name, value in rates.items())
    )
    assert rates["kind"] >= MIN_KIND
    assert rates["recall"] >= MIN_RECALL
    assert rates["bucket"] >= MIN_BUCKET
    assert rates["hard"] >= MIN_HARD
    assert rates["reason"] >= MIN_REASON
    assert rates["status"] >= MIN_STATUS


@needs_corpus
def test_not_bounces_have_no_recipients() -> None:
    for entry in _manifest():
        if entry["kind"] != "not-bounce" or entry.get("ambiguous"):
            continue
        report = parse_bounce((CORPUS / entry["path"]).read_bytes())
        assert report.kind is BounceKind.not_bounce, entry["id"]
        assert report.recipients == (), entry["id"]


# id, kind, recipient count, first recipient's verdict and reason
SAMPLES = [
    ("lhost-postfix-02", "bounce", 2, Verdict.hard, "userunknown"),
    ("lhost-qmail-01", "bounce", 1, Verdict.hard, "userunknown"),
    ("lhost-exim-07", "bounce", 1, Verdict.soft, "mailboxfull"),
    ("lhost-kddi-01", "bounce", 1, Verdict.soft, "mailboxfull"),
    ("lhost-amazonses-09", "bounce", 1, Verdict.hard, "userunknown"),
    ("arf-16", "feedback", 7, Verdict.feedback, "feedback"),
    ("arf-22", "feedback", 1, Verdict.feedback, "feedback"),
    ("rfc3834-01", "autoreply", 1, Verdict.autoreply, "vacation"),
    ("rfc3464-28", "delivery-report", 1, Verdict.delivered, "delivered"),
]


@needs_corpus
@pytest.mark.parametrize(
    ("name", "kind", "count", "verdict", "reason"),
    SAMPLES,
    ids=[sample[0] for sample in SAMPLES],
)
def test_samples(
    name: str, kind: str, count: int, verdict: Verdict, reason: str
) -> None:
    report = parse_bounce((CORPUS / "eml" / f"{name}.eml").read_bytes())
    assert report.kind == kind
    assert len(report.recipients) == count
    first = report.recipients[0]
    assert (first.verdict, first.reason) == (verdict, reason)
    assert "@" in first.recipient


def _dsn(action: str, status: str, diagnostic: str) -> bytes:
    return f"""From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; rcpt@example.com
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.com
Diagnostic-Code: {diagnostic}

--B
Content-Type: text/rfc822-headers

From: sender@example.org
To: rcpt@example.com
Message-ID: <1@example.org>

--B--
""".encode()


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "verdict", "reason"),
    [
        (
            "failed",
            "5.1.1",
            "smtp; 550 5.1.1 <rcpt@example.com>: User unknown",
            Verdict.hard,
            "userunknown",
        ),
        (
            "delayed",
            "4.1.1",
            "smtp; 450 4.1.1 User unknown",
            Verdict.hard,
            "userunknown",
        ),
        (
            "failed",
            "5.2.2",
            "smtp; 552 5.2.2 Mailbox full",
            Verdict.soft,
            "mailboxfull",
        ),
        (
            "failed",
            "4.4.7",
            "X-Postfix; delivery time expired",
            Verdict.soft,
            "expired",
        ),
        ("failed", "5.7.1", "", Verdict.block, "blocked"),
        (
            "delayed",
            "4.7.0",
            "smtp; 421 4.7.0 Try again later, too many connections",
            Verdict.throttle,
            "toomanyconn",
        ),
        ("delivered", "2.0.0", "smtp; 250 2.0.0 OK", Verdict.delivered, "delivered"),
    ],
)
def test_dsn_table(
    action: str, status: str, diagnostic: str, verdict: Verdict, reason: str
) -> None:
    report = parse_bounce(_dsn(action, status, diagnostic))
    assert [r.recipient for r in report.recipients] == ["rcpt@example.com"]
    got = report.recipients[0]
    assert (got.verdict, got.reason) == (verdict, reason)
    assert got.status == status
    assert got.remote_mta == "mx.example.com"
    assert report.envelope_to == "sender@example.org"
    assert report.original_message_id == "<1@example.org>"


def test_plain_mail_is_not_a_bounce() -> None:
    report = parse_bounce(
        b"From: a@example.org\nTo: b@example.com\nSubject: hi\n\nhello\n"
    )
    assert report == BounceReport(
        kind=BounceKind.not_bounce, envelope_to="b@example.com", subject="hi"
    )


def test_japanese_ndr_without_dsn_fields() -> None:
    body = "送信先のメールボックスが一杯のため、送信できませんでした。\n"
    body += "Could not be delivered to: <kijitora@ezweb.example.jp>\n"
    data = (
        b"From: no-reply@carrier.example.jp\nTo: sender@example.org\n"
        b"Subject: =?ISO-2022-JP?B?GyRCJWEhPCVrJSglaSE8RExDThsoQg==?=\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\n\n"
        + body.encode("iso-2022-jp")
    )
    report = parse_bounce(data)
    assert report.kind is BounceKind.bounce
    assert [r.recipient for r in report.recipients] == ["kijitora@ezweb.example.jp"]
    assert report.recipients[0].reason == "mailboxfull"


_HOSTILE = [
    b"",
    b"\x00\xff\xfe",
    b"Content-Type: multipart/report; boundary=\n\n--\n--",
    b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\n",
    b"Content-Type: multipart/mixed; boundary=x\n\n" + b"--x\n" * 500,
    b"Content-Type: text/plain; charset=no-such-charset\n\n\xff\xfe",
    b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n%%%==",
    b"Subject: =?utf-8?q?broken=\n\n",
    b"Content-Type: " + b"multipart/mixed; boundary=a\n\n--a\nContent-Type: " * 200,
]


@pytest.mark.parametrize("data", _HOSTILE)
def test_hostile_input_never_raises(data: bytes) -> None:
    assert isinstance(parse_bounce(data), BounceReport)


def _corpus_mails() -> list[bytes]:
    if not MANIFEST.is_file():
        return [_dsn("failed", "5.1.1", "smtp; 550 5.1.1 unknown")]
    return [(CORPUS / e["path"]).read_bytes() for e in _manifest()[::9]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mail=st.sampled_from(_corpus_mails()),
    cut=st.floats(min_value=0, max_value=1),
    noise=st.binary(max_size=64),
    where=st.floats(min_value=0, max_value=1),
)
def test_fuzz_truncated_and_corrupted_mails(
    mail: bytes, cut: float, noise: bytes, where: float
) -> None:
    data = mail[: int(len(mail) * cut)]
    at = int(len(data) * where)
    data = data[:at] + noise + data[at:]
    report = parse_bounce(data)
    assert report.kind in set(BounceKind)
    assert all("@" in r.recipient for r in report.recipients)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    assert isinstance(parse_bounce(data), BounceReport)


_MIME_PIECES = st.sampled_from(
    [
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n",
        b"Content-Type: message/delivery-status\n",
        b"Content-Type: message/rfc822\n",
        b"Content-Type: message/feedback-report\n",
        b"Content-Transfer-Encoding: base64\n",
        b"Content-Transfer-Encoding: quoted-printable\n",
        b"Content-Type: text/plain; charset=iso-2022-jp\n",
        b"\n",
        b"--b\n",
        b"--b--\n",
        b"Final-Recipient: rfc822; a@example.com\n",
        b"Action: failed\nStatus: 5.1.1\n",
        b"Diagnostic-Code: smtp; 550 5.1.1 unknown\n",
        b"Subject: =?iso-2022-jp?B?GyRC?=\n",
        b"X-Failed-Recipients: b@example.com\n",
        b"From: MAILER-DAEMON@example.net\n",
        b"\x1b$B%a\x1b(B\n",
        b"\xff\xfe\x00\n",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_MIME_PIECES, max_size=40))
def test_fuzz_hostile_mime(pieces: list[bytes]) -> None:
    report = parse_bounce(b"".join(pieces))
    assert isinstance(report, BounceReport)


# --- CLI ------------------------------------------------------------------------------


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@needs_corpus
def test_cli_parses_eml_files() -> None:
    files = [str(CORPUS / "eml" / f"{name}.eml") for name in ("arf-16", "rfc3834-01")]
    result = CliRunner().invoke(bounces, ["parse", *files])
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert len(lines) == 8
    assert {line["kind"] for line in lines} == {"feedback", "autoreply"}
    assert set(lines[0]) == {
        "source",
        "recipient",
        "status",
        "action",
        "verdict",
        "reason",
        "reply",
        "kind",
    }


def test_cli_parses_mbox_maildir_and_stdin(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(_dsn("failed", "5.1.1", "smtp; 550 5.1.1 User unknown"))
    box.add(b"From: a@example.org\nTo: b@example.com\nSubject: hi\n\nhello\n")
    box.close()
    maildir = mailbox.Maildir(tmp_path / "md")
    maildir.add(_dsn("failed", "5.2.2", "smtp; 552 5.2.2 Mailbox full"))
    maildir.close()
    runner = CliRunner()
    result = runner.invoke(
        bounces,
        ["parse", str(tmp_path / "bounces.mbox"), str(tmp_path / "md"), "-"],
        input=_dsn("delayed", "4.4.7", "smtp; 451 4.4.7 delivery time expired"),
    )
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert [(line["kind"], line["verdict"]) for line in lines] == [
        ("bounce", "hard"),
        ("not-bounce", None),
        ("bounce", "soft"),
        ("bounce", "soft"),
    ]
    assert lines[0]["source"].endswith("bounces.mbox:1")
    assert lines[3]["source"] == "-"
    assert lines[3]["reason"] == "expired"


def test_cli_reports_unreadable_paths(tmp_path: Path) -> None:
    result = CliRunner().invoke(bounces, ["parse", str(tmp_path / "missing.eml")])
    assert result.exit_code == 1
