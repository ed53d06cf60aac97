"""Bounce formats and layouts the parser must read (issue 15), from public sources.

Each mail is written after the format its MTA documents: qmail's QSBMF
(https://cr.yp.to/proto/qsbmf.txt), the PMDF / Oracle Communications Messaging Server
notification template ("This report relates to a message you sent with the following
header fields", then "Recipient address:", "Reason:", "Diagnostic code:" per
recipient; no single public page to cite, so the layout is written from the MTA's
template as its users publish it), the
Exchange NDR (https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/
non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online), ARF
(RFC 5965 §3, https://www.rfc-editor.org/rfc/rfc5965#appendix-B) and the DSN of RFC
3464 (https://www.rfc-editor.org/rfc/rfc3464#section-2). Addresses are invented.
"""

from __future__ import annotations

import pytest

from warmup.cli.bounces_cmd import report_lines
from warmup.core.bounces.parse import BounceKind, BounceReport, parse_bounce
from warmup.core.model import Verdict


def _by_recipient(report: BounceReport) -> dict[str, tuple[Verdict, str]]:
    return {r.recipient: (r.verdict, r.reason) for r in report.recipients}


QMAIL = b"""Return-Path: <>
From: MAILER-DAEMON@mx.example.net
To: bounces@example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<god@example.net>:
This address no longer accepts mail.

<nobody@example.net>:
Sorry, no mailbox here by that name. (#5.1.1)

<full@example.net>:
192.0.2.25 does not like recipient.
Remote host said: 552 5.2.2 <full@example.net>: mailbox full
Giving up on 192.0.2.25.

--- Below this line is a copy of the message.

Return-Path: <bounces@example.org>
To: god@example.net, nobody@example.net, full@example.net
Subject: hello
"""


def test_qmail_failure_notice_gives_each_recipient_its_own_reason() -> None:
    report = parse_bounce(QMAIL)
    assert report.kind is BounceKind.bounce
    assert _by_recipient(report) == {
        "god@example.net": (Verdict.hard, "hasmoved"),
        "nobody@example.net": (Verdict.hard, "userunknown"),
        "full@example.net": (Verdict.soft, "mailboxfull"),
    }


PMDF = b"""From: PMDF Mail Server <postmaster@mail.example.net>
To: bounces@example.org
Subject: Delivery Notification: Delivery has failed
MIME-version: 1.0
Content-type: multipart/report; report-type=delivery-status; boundary="BB"

--BB
Content-type: text/plain; charset=us-ascii

This report relates to a message you sent with the following header fields:

  Message-id: <1@example.org>
  Date: Mon, 02 Feb 2026 10:00:00 +0000
  From: sender@example.org
  To: alice@example.net, carol@example.net
  Subject: hello

Your message cannot be delivered to the following recipients:

  Recipient address: carol@example.net
  Reason: Remote SMTP server has rejected address
  Diagnostic code: smtp;550 5.1.1 unknown or illegal alias: carol@example.net
  Remote system: dns;mx.example.net (TCP|192.0.2.1|25|192.0.2.2|25)

--BB
Content-type: text/rfc822-headers

Message-id: <1@example.org>
From: sender@example.org
To: alice@example.net, carol@example.net
Subject: hello

--BB--
"""


def test_pmdf_notification_names_the_failed_recipient_not_the_quoted_to() -> None:
    report = parse_bounce(PMDF)
    assert report.kind is BounceKind.bounce
    assert _by_recipient(report) == {"carol@example.net": (Verdict.hard, "userunknown")}


EXCHANGE = b"""From: postmaster@example.net
To: bounces@example.org
Subject: Undeliverable: hello
Content-Type: text/plain; charset=us-ascii

Delivery has failed to these recipients or groups:

alice@example.net
The email address you entered couldn't be found.
bob@example.net
The recipient's mailbox is full and can't accept messages now.

Diagnostic information for administrators:

Generating server: mx.example.net

alice@example.net
#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##

bob@example.net
#552 5.2.2 mailbox full ##
X-Spam-Status: spam=no, blocked=no

Original message headers:

Received: from mta1.example.org by mx.example.net
From: sender@example.org
To: dave@example.net
Subject: hello
"""


def test_each_diagnostic_ends_where_the_next_recipient_begins() -> None:
    report = parse_bounce(EXCHANGE)
    assert _by_recipient(report) == {
        "alice@example.net": (Verdict.hard, "userunknown"),
        "bob@example.net": (Verdict.soft, "mailboxfull"),
    }
    bob = next(r for r in report.recipients if r.recipient == "bob@example.net")
    assert "X-Spam-Status" not in bob.reply
    assert "550" not in bob.reply


EXIM = b"""From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: bounces@example.org
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: alice@example.net, bob@example.net, carol@example.net
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  alice@example.net
    SMTP error from remote mail server after RCPT TO:<alice@example.net>:
    host mx.example.net [192.0.2.1]: 550 5.1.1 <alice@example.net>: User unknown
  bob@example.net
    Unrouteable address
  carol@example.net
    SMTP error from remote mail server after end of data:
    host mx.example.net [192.0.2.1]: 552 5.2.2 mailbox full

------ This is a copy of the message, including all the headers. ------

To: alice@example.net, bob@example.net, carol@example.net
"""


def test_exim_failed_recipients_each_keep_their_own_text() -> None:
    """Exim's bounce (spec ch. 48, "Customizing bounce and warning messages"),
    recipients also named in X-Failed-Recipients."""
    report = parse_bounce(EXIM)
    assert _by_recipient(report) == {
        "alice@example.net": (Verdict.hard, "userunknown"),
        "bob@example.net": (Verdict.hard, "hostunknown"),
        "carol@example.net": (Verdict.soft, "mailboxfull"),
    }


SPLIT_TEXT = b"""From: MAILER-DAEMON@mx.example.net
To: bounces@example.org
Subject: Mail delivery failed
Content-Type: text/plain

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  alice@example.net
    host mx.example.net [192.0.2.1]
    SMTP error from remote mail server after RCPT TO:<alice@example.net>:
    550 5.2.2 mailbox full
X-Spam-Report: client listed on zen.spamhaus.org
X-Other: 554 5.7.1 spam

------ This is a copy of the message, including all the headers. ------
"""


def test_a_diagnostic_does_not_run_on_into_x_headers() -> None:
    report = parse_bounce(SPLIT_TEXT)
    assert _by_recipient(report) == {"alice@example.net": (Verdict.soft, "mailboxfull")}
    assert "spamhaus" not in report.recipients[0].reply


INNER_DSN = """From: MAILER-DAEMON@mx.example.net
To: bounces@example.org
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="IN"

--IN
Content-Type: text/plain

Your message could not be delivered.

--IN
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: User unknown

--IN--
"""

FORWARDED = f"""From: helpdesk@example.org
To: bounces@example.org
Subject: Fwd: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="OUT"

--OUT
Content-Type: text/plain

See the attached bounce; please write to me at helpdesk@example.org.

--OUT
Content-Type: message/rfc822

{INNER_DSN}
--OUT--
""".encode()


def test_a_bounce_forwarded_as_an_attachment_is_read_inside() -> None:
    report = parse_bounce(FORWARDED)
    assert report.kind is BounceKind.bounce
    assert _by_recipient(report) == {"gone@example.net": (Verdict.hard, "userunknown")}
    assert report.envelope_to == "bounces@example.org"


def test_an_ordinary_mail_attached_is_no_bounce() -> None:
    plain = FORWARDED.replace(b"multipart/report", b"multipart/mixed").replace(
        b"Final-Recipient", b"X-Note"
    )
    plain = plain.replace(
        b"Subject: Undelivered Mail Returned to Sender", b"Subject: hi"
    )
    plain = plain.replace(b"MAILER-DAEMON@mx.example.net", b"friend@example.net")
    plain = plain.replace(b"Fwd: Undelivered Mail Returned to Sender", b"Fwd: hi")
    plain = plain.replace(b"Your message could not be delivered.", b"Lunch?")
    report = parse_bounce(plain)
    assert report.kind is BounceKind.not_bounce


ARF_NO_RECIPIENT = b"""From: <abuse@example.net>
To: <fbl@example.org>
Subject: FW: Earn money
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="part1"

--part1
Content-Type: text/plain

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.

--part1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces+abc@example.org>
Source-IP: 192.0.2.1
Reported-Domain: example.org

--part1
Content-Type: text/rfc822-headers

From: <sender@example.org>
Subject: Earn money
Message-ID: <8787KJKJ3K4J3K4J3K4J3.mail@example.org>

--part1--
"""


def test_a_complaint_whose_original_names_no_recipient_is_still_a_complaint() -> None:
    report = parse_bounce(ARF_NO_RECIPIENT)
    assert report.kind is BounceKind.feedback
    assert report.recipients == ()  # no address is made up
    assert report.original_message_id == "<8787KJKJ3K4J3K4J3K4J3.mail@example.org>"
    (line,) = report_lines("arf.eml", report)
    assert (line["verdict"], line["reason"], line["kind"]) == (
        "feedback",
        "feedback",
        "feedback",
    )


@pytest.mark.parametrize(
    ("status", "diagnostic", "verdict", "reason"),
    [
        (
            "4.4.3",
            "X-Postfix; Host or domain name not found. Name service error for "
            "name=example.net type=MX: Host not found, try again",
            Verdict.soft,
            "networkerror",
        ),
        (
            "5.1.1",
            "smtp; 550 5.1.1 <bounces@example.org>: Sender address rejected: "
            "undeliverable address: User unknown in local recipient table",
            Verdict.block,
            "rejected",
        ),
        (
            "5.0.0",
            "smtp; 550 Administrative prohibition",
            Verdict.block,
            "policyviolation",
        ),
        (
            "5.1.1",
            "smtp; 550 5.1.1 <rcpt@example.net>: mailbox is inactive",
            Verdict.soft,
            "suspend",
        ),
        (
            "4.3.2",
            "smtp; 421 4.3.2 All server ports are busy",
            Verdict.throttle,
            "toomanyconn",
        ),
    ],
)
def test_dsn_diagnostics_follow_the_reply_rules(
    status: str, diagnostic: str, verdict: Verdict, reason: str
) -> None:
    mail = INNER_DSN.replace("Status: 5.1.1", f"Status: {status}").replace(
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: User unknown",
        f"Diagnostic-Code: {diagnostic}",
    )
    (got,) = parse_bounce(mail.encode()).recipients
    assert (got.verdict, got.reason) == (verdict, reason)
