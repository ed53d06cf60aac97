"""How each simulated ISP talks and how much it tolerates.

Reply texts follow the providers' real wording (multi-line where the provider sends
several lines), from their postmaster pages and collections of real replies
(smtp.codes, Sisimai's ``rhost`` modules, postmaster forums). Placeholders, filled with
``str.format``: ``{ip}`` the source IP, ``{rcpt}`` the recipient, ``{id}`` a per-reply
queue or session id, ``{host}`` the server's host name, ``{epoch}`` the virtual time in
Unix seconds.

Tolerances are judgement, not published figures: each ISP accepts a sender that follows
its shipped schedule (``warmup/schedules/<isp>.yaml``) almost without throttles,
throttles one that sends much faster than its reputation allows, and differs in
strictness (Microsoft is the strictest, Gmail the most generous once the IP has
history).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warmup.sim.reputation import Tolerance

__all__ = ["PROFILES", "ISPProfile"]

_GREYLIST = (
    "451 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted, please try again later"
)
_DSN = (
    "550 5.1.1 <{rcpt}>: Recipient address rejected:"
    " User unknown in local recipient table"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ISPProfile:
    """One simulated receiving provider: its replies and its tolerance model."""

    name: str
    hostname: str
    banner: str = "ESMTP ready"
    throttle_reply: str
    block_reply: str
    unknown_reply: str
    full_reply: str
    greylist_reply: str = _GREYLIST
    dsn_reply: str = _DSN  # the Diagnostic-Code of the later DSN
    mail_reply: str = "250 2.1.0 OK"
    rcpt_reply: str = "250 2.1.5 OK"
    data_reply: str = "250 2.0.0 Ok: queued as {id}"
    throttle_at_mail: bool = False  # also refuse MAIL while over the rate (Yahoo does)
    greylist_delay_minutes: float = 5.0
    tolerance: Tolerance = field(default_factory=Tolerance)

    def __post_init__(self) -> None:
        for name in ("throttle_reply", "block_reply", "unknown_reply", "full_reply"):
            reply: str = getattr(self, name)
            if reply[:1] not in ("4", "5"):
                raise ValueError(f"{name} must be a 4xx or 5xx reply, got {reply!r}")
        delay = self.greylist_delay_minutes
        if delay < 0:
            raise ValueError(f"greylist_delay_minutes must be >= 0, got {delay!r}")


def _lines(code: str, enhanced: str, *texts: str) -> str:
    """A multi-line reply: ``code-enhanced`` on every line but the last."""
    last = len(texts) - 1
    return "\r\n".join(
        f"{code}{' ' if i == last else '-'}{enhanced} {text}"
        for i, text in enumerate(texts)
    )


GMAIL = ISPProfile(
    name="gmail",
    hostname="mx.google.com",
    banner="ESMTP {id} - gsmtp",
    throttle_reply=_lines(
        "421",
        "4.7.28",
        "[{ip}] Our system has detected an unusual rate of",
        "unsolicited mail originating from your IP address. To protect our",
        "users from spam, mail sent from your IP address has been temporarily",
        "rate limited. For more information, go to",
        " https://support.google.com/mail/?p=UnsolicitedRateLimitError to",
        "review our Bulk Email Senders Guidelines. {id} - gsmtp",
    ),
    block_reply=_lines(
        "550",
        "5.7.1",
        "[{ip}] Our system has detected that this message is",
        "likely unsolicited mail. To reduce the amount of spam sent to Gmail,",
        "this message has been blocked. For more information, go to",
        " https://support.google.com/mail/?p=UnsolicitedMessageError {id} - gsmtp",
    ),
    unknown_reply=_lines(
        "550",
        "5.1.1",
        "The email account that you tried to reach does not exist. Please try",
        "double-checking the recipient's email address for typos or",
        "unnecessary spaces. For more information, go to",
        " https://support.google.com/mail/?p=NoSuchUser {id} - gsmtp",
    ),
    full_reply=_lines(
        "452",
        "4.2.2",
        "The recipient's inbox is out of storage space. Please direct the",
        "recipient to",
        " https://support.google.com/mail/?p=OverQuotaTemp {id} - gsmtp",
    ),
    mail_reply="250 2.1.0 OK {id} - gsmtp",
    rcpt_reply="250 2.1.5 OK {id} - gsmtp",
    data_reply="250 2.0.0 OK  {epoch} {id} - gsmtp",
    tolerance=Tolerance(
        initial_per_hour=80, per_clean=0.12, doubling_days=2.5, max_per_hour=3600
    ),
)

MICROSOFT = ISPProfile(
    name="microsoft",
    hostname="outlook-com.olc.protection.outlook.com",
    banner="Microsoft ESMTP MAIL Service ready",
    throttle_reply=(
        "451 4.7.650 The mail server [{ip}] has been temporarily rate limited due to IP"
        " reputation. For e-mail delivery information, see https://postmaster.live.com"
        " (S775) [Name=Protocol Filter Agent][AGT=PFA][MxId={id}] [{host}]"
    ),
    block_reply=(
        "550 5.7.1 Unfortunately, messages from [{ip}] weren't sent."
        " Please contact your Internet service provider since part of their network"
        " is on our block list (S3150). You can also refer your provider to"
        " http://mail.live.com/mail/troubleshooting.aspx#errors. [{host}]"
    ),
    # Outlook.com's real "no such user": 5.5.0, not 5.1.1 (a classic classifier trap).
    unknown_reply=(
        "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302)."
        " [{host}]"
    ),
    full_reply=(
        "452 4.2.2 The recipient's mailbox is full and can't accept messages now."
        " Please try resending this message later, or contact the recipient directly."
    ),
    data_reply="250 2.6.0 <{id}@{host}> [InternalId={epoch}] Queued mail for delivery",
    tolerance=Tolerance(
        initial_per_hour=50, per_clean=0.06, doubling_days=3.0, max_per_hour=1800
    ),
)

YAHOO = ISPProfile(
    name="yahoo",
    hostname="mta7.am0.yahoodns.net",
    throttle_reply=(
        "421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected"
        " volume or user complaints - 4.16.55.1;"
        " see https://postmaster.yahooinc.com/error-codes"
    ),
    block_reply=(
        "554 5.7.9 Message not accepted for policy reasons."
        "  See https://postmaster.yahooinc.com/error-codes"
    ),
    unknown_reply=(
        "554 delivery error: dd This user doesn't have a yahoo.com account ({rcpt})"
        " [0] - {host}"
    ),
    full_reply="452 4.2.2 <{rcpt}>: Mailbox over quota - {host}",
    data_reply="250 ok dirdel",
    throttle_at_mail=True,
    tolerance=Tolerance(
        initial_per_hour=60, per_clean=0.1, doubling_days=3.0, max_per_hour=2400
    ),
)

APPLE = ISPProfile(
    name="apple",
    hostname="mx01.mail.icloud.com",
    banner="ESMTP iCloud Mail",
    throttle_reply=(
        "421 4.7.1 Messages to {rcpt} deferred due to excessive volume."
        " Try again later - https://support.apple.com/en-us/HT204137"
    ),
    block_reply=(
        "550 5.7.1 [CS01] Message rejected due to local policy."
        " Please visit https://support.apple.com/en-us/HT204137"
    ),
    unknown_reply="550 5.1.1 <{rcpt}>: user does not exist",
    full_reply="452 4.2.2 <{rcpt}>: user is over quota",
    data_reply="250 2.0.0 Ok: queued as {id}",
    tolerance=Tolerance(
        initial_per_hour=60, per_clean=0.08, doubling_days=3.0, max_per_hour=2000
    ),
)

DEFAULT = ISPProfile(
    name="default",
    hostname="mx.example.net",
    banner="ESMTP Postfix",
    throttle_reply=(
        "421 4.7.0 [{ip}] Too many messages from your IP address, rate limited;"
        " try again later"
    ),
    block_reply="554 5.7.1 <unknown[{ip}]>: Client host rejected: Access denied",
    unknown_reply=(
        "550 5.1.1 <{rcpt}>: Recipient address rejected:"
        " User unknown in virtual mailbox table"
    ),
    full_reply="452 4.2.2 <{rcpt}>: Recipient address rejected: Mailbox full",
    tolerance=Tolerance(
        initial_per_hour=60, per_clean=0.1, doubling_days=2.5, max_per_hour=4000
    ),
)

#: The shipped profiles by ISP name (the names of ``warmup/schedules/*.yaml``).
PROFILES: dict[str, ISPProfile] = {
    profile.name: profile for profile in (GMAIL, MICROSOFT, YAHOO, APPLE, DEFAULT)
}
