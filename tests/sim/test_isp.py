"""The simulated ISPs: real aiosmtpd servers on loopback, driven by a virtual clock."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
import pytest

from warmup.core.model import Verdict
from warmup.core.replies.classify import classify_reply, parse_reply
from warmup.sim import (
    PROFILES,
    Admission,
    DSNRecord,
    ISPProfile,
    Mailbox,
    MailboxShares,
    SimulatedISP,
    SourceReputation,
    Tolerance,
    classify_mailbox,
)
from warmup.testing.clock import FakeClock

IP_A = "127.0.0.2"
IP_B = "127.0.0.3"
SENDER = "bounces+t1@bounce.example.com"
MESSAGE = "Subject: hello\r\nFrom: news@example.com\r\n\r\nHello.\r\n"
START = datetime(2030, 1, 1, tzinfo=UTC)
NO_BAD_MAILBOXES = {
    "unknown_share": 0.0,
    "full_share": 0.0,
    "greylist_share": 0.0,
    "dsn_share": 0.0,
}
Reply = tuple[int, str]
MakeISP = Callable[..., SimulatedISP]


# --- helpers --------------------------------------------------------------------------


class Client:
    """One source IP's SMTP session, reconnecting after the server closes it."""

    def __init__(self, port: int, ip: str) -> None:
        self.port = port
        self.ip = ip
        self.smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=port, source_address=(ip, 0), timeout=5
        )
        self.connects = 0

    async def connect(self) -> None:
        if not self.smtp.is_connected:
            await self.smtp.connect()
            await self.smtp.ehlo(hostname="mta1.example.com")
            self.connects += 1

    async def send(self, rcpt: str) -> Reply:
        """One message to ``rcpt``; the first reply that is not a 250, or DATA's."""
        await self.connect()
        mail = await self.smtp.execute_command(b"MAIL", f"FROM:<{SENDER}>".encode())
        if mail.code != 250:
            return _raw(mail)
        to = await self.smtp.execute_command(b"RCPT", f"TO:<{rcpt}>".encode())
        if to.code != 250:
            if self.smtp.is_connected:
                await self.smtp.execute_command(b"RSET")
            return _raw(to)
        return _raw(await self.smtp.data(MESSAGE))

    async def close(self) -> None:
        if self.smtp.is_connected:
            await self.smtp.quit()


def _raw(response: aiosmtplib.SMTPResponse) -> Reply:
    """The reply as the server wrote it (continuation lines with ``code-``)."""
    lines = response.message.split("\n")
    last = len(lines) - 1
    text = "\r\n".join(
        f"{response.code}{' ' if i == last else '-'}{line}"
        for i, line in enumerate(lines)
    )
    return response.code, text


def _pattern(
    template: str, profile: ISPProfile, *, ip: str = "", rcpt: str = ""
) -> str:
    """A regex matching ``template`` filled in for ``ip``/``rcpt``, any id or time."""
    filled = template.format(
        ip=ip, rcpt=rcpt, host=profile.hostname, id="\x00", epoch="\x01"
    )
    escaped = re.escape(filled)
    return escaped.replace("\x00", "[0-9a-f]{16}").replace("\x01", "[0-9]+")


def _matches(reply: Reply, template: str, profile: ISPProfile, **fill: str) -> bool:
    return re.fullmatch(_pattern(template, profile, **fill), reply[1]) is not None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def make_isp(clock: FakeClock) -> AsyncIterator[MakeISP]:
    """Build and start simulated ISPs; all are stopped after the test."""
    started: list[SimulatedISP] = []

    def make(name: str = "gmail", *, seed: int = 1, **options: Any) -> SimulatedISP:
        isp = SimulatedISP(
            PROFILES[name], now=clock.now, rng=random.Random(seed), **options
        )
        started.append(isp)
        return isp

    yield make
    for isp in started:
        await isp.stop()


async def _started(isp: SimulatedISP) -> int:
    return await isp.start()


# --- rate, throttle, block ------------------------------------------------------------


async def test_sending_within_tolerance_is_accepted(
    make_isp: MakeISP, clock: FakeClock
):
    isp = make_isp("gmail", **NO_BAD_MAILBOXES)
    client = Client(await _started(isp), IP_A)
    replies = []
    for n in range(60):  # 60 messages at 60/h: one per virtual minute
        replies.append(await client.send(f"user{n}@gmail.com"))
        clock.advance(timedelta(minutes=1))
    await client.close()

    assert {code for code, _ in replies} == {250}
    assert all(_matches(r, isp.profile.data_reply, isp.profile) for r in replies), (
        replies[0]
    )
    stats = isp.stats[IP_A]
    assert (stats.accepted, stats.throttled, stats.blocked) == (60, 0, 0)
    assert isp.received == 60
    assert client.connects == 1  # one session reused for every message


async def test_sending_too_fast_throttles_that_ip_only(make_isp: MakeISP):
    isp = make_isp("gmail", **NO_BAD_MAILBOXES)
    port = await _started(isp)
    fast, slow = Client(port, IP_A), Client(port, IP_B)
    burst = [await fast.send(f"a{n}@gmail.com") for n in range(25)]  # one instant
    other = [await slow.send(f"b{n}@gmail.com") for n in range(5)]
    await fast.close()
    await slow.close()

    allowed = int(80 * 10 / 60 + 2)  # tolerated 80/h over a 10-minute window, +2
    assert [code for code, _ in burst] == [250] * allowed + [421] * (25 - allowed)
    throttle = burst[allowed]
    assert _matches(throttle, isp.profile.throttle_reply, isp.profile, ip=IP_A)
    assert throttle[1].startswith(
        "421-4.7.28 [127.0.0.2] Our system has detected an unusual rate of\r\n"
    )
    assert fast.connects == 25 - allowed  # each 421 but the last closed one
    assert {code for code, _ in other} == {250}
    assert isp.stats[IP_A].throttled == 25 - allowed
    assert isp.stats[IP_B].throttled == 0


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("yahoo", "421 4.7.0 [TSS04] Messages from 127.0.0.2 temporarily deferred"),
        ("microsoft", "451 4.7.650 The mail server [127.0.0.2] has been temporarily"),
        ("apple", "421 4.7.1 Messages to x12@icloud.com deferred due to excessive"),
        ("default", "421 4.7.0 [127.0.0.2] Too many messages from your IP address"),
    ],
)
async def test_each_provider_throttles_in_its_own_words(
    make_isp: MakeISP, name: str, head: str
):
    isp = make_isp(name, **NO_BAD_MAILBOXES)
    client = Client(await _started(isp), IP_A)
    replies = [await client.send(f"x{n}@icloud.com") for n in range(21)]
    await client.close()

    throttled = [reply for reply in replies if reply[0] != 250]
    assert throttled, replies[-1]
    first = throttled[0]
    assert first[1].startswith(head)
    rcpt = f"x{replies.index(first)}@icloud.com"
    assert _matches(first, isp.profile.throttle_reply, isp.profile, ip=IP_A, rcpt=rcpt)


async def test_yahoo_defers_at_mail_and_microsoft_keeps_the_connection(
    make_isp: MakeISP,
):
    yahoo = make_isp("yahoo", **NO_BAD_MAILBOXES)
    microsoft = make_isp("microsoft", **NO_BAD_MAILBOXES)
    to_yahoo = Client(await _started(yahoo), IP_A)
    to_microsoft = Client(await _started(microsoft), IP_A)
    for n in range(30):
        await to_yahoo.send(f"y{n}@yahoo.com")
        await to_microsoft.send(f"m{n}@outlook.com")
    await to_yahoo.connect()
    mail = await to_yahoo.smtp.execute_command(b"MAIL", f"FROM:<{SENDER}>".encode())
    assert mail.code == 421 and "[TSS04]" in mail.message  # refused before any RCPT
    assert to_microsoft.connects == 1  # 451 4.7.650 does not close the session
    await to_yahoo.close()
    await to_microsoft.close()


async def test_ignoring_throttles_earns_a_block_that_lifts(
    make_isp: MakeISP, clock: FakeClock
):
    isp = make_isp("gmail", **NO_BAD_MAILBOXES)
    client = Client(await _started(isp), IP_A)
    other = Client(isp.port, IP_B)
    codes = [(await client.send(f"a{n}@gmail.com"))[0] for n in range(15)]
    reputation_before_block = isp.stats[IP_A].reputation
    codes += [(await client.send(f"a{n}@gmail.com"))[0] for n in range(15, 50)]
    tolerance = isp.profile.tolerance
    throttled_first = codes.index(421)
    block_at = throttled_first + tolerance.block_after - 1
    assert codes[throttled_first:block_at] == [421] * (tolerance.block_after - 1)
    assert codes[block_at:] == [550] * (50 - block_at)
    assert isp.reputation(IP_A).blocked_until(clock.now()) == START + timedelta(hours=4)
    assert isp.stats[IP_A].reputation < reputation_before_block * 0.25

    clock.advance(timedelta(minutes=30))
    blocked = await client.send("later@gmail.com")
    assert _matches(blocked, isp.profile.block_reply, isp.profile, ip=IP_A)
    assert blocked[1].startswith("550-5.7.1 [127.0.0.2] Our system has detected")
    assert (await other.send("b@gmail.com"))[0] == 250  # the other IP is not blocked

    clock.advance(tolerance.block_for - timedelta(minutes=31))
    assert (await client.send("still@gmail.com"))[0] == 550
    clock.advance(timedelta(minutes=1))
    assert (await client.send("again@gmail.com"))[0] == 250
    assert isp.stats[IP_A].blocked == 50 - block_at + 2
    await client.close()
    await other.close()


async def test_reputation_grows_with_clean_volume_over_days(
    make_isp: MakeISP, clock: FakeClock
):
    isp = make_isp("gmail", **NO_BAD_MAILBOXES)
    port = await _started(isp)
    veteran, newcomer = Client(port, IP_A), Client(port, IP_B)
    tolerated = [isp.profile.tolerance.initial_per_hour]
    for day in range(3):  # 3 days of 2 clean hours at 60/h
        for n in range(120):
            assert (await veteran.send(f"u{n}@gmail.com"))[0] == 250
            clock.advance(timedelta(minutes=1))
        tolerated.append(isp.stats[IP_A].tolerated_per_hour)
        clock.advance(START + timedelta(days=day + 1) - clock.now())
    assert tolerated == sorted(set(tolerated))  # strictly rising, day after day
    assert isp.stats[IP_A].reputation == 360.0

    # 10 minutes at 120/h: too fast for a new IP, fine for the one with 3 clean days.
    veteran_codes, newcomer_codes = [], []
    for n in range(20):
        veteran_codes.append((await veteran.send(f"v{n}@gmail.com"))[0])
        newcomer_codes.append((await newcomer.send(f"w{n}@gmail.com"))[0])
        clock.advance(timedelta(seconds=30))
    await veteran.close()
    await newcomer.close()
    assert veteran_codes == [250] * 20
    assert newcomer_codes == [250] * 15 + [421] * 5


def _paced_day(rep: SourceReputation, day: datetime, per_hour: int, hours: float):
    """Send evenly at ``per_hour`` for ``hours``: (accepted, throttled, blocked)."""
    counts = dict.fromkeys(Admission, 0)
    step = timedelta(seconds=3600 / per_hour)
    for n in range(int(per_hour * hours)):
        now = day + n * step
        admission = rep.admit(now)
        counts[admission] += 1
        if admission is Admission.ok:
            rep.delivered(now)
    return counts[Admission.ok], counts[Admission.throttled], counts[Admission.blocked]


GMAIL_RAMP = [60] * 3 + [120] * 3 + [180] * 3 + [240] * 3 + [360] * 3 + [720] * 3
GMAIL_RAMP += [1080] * 3 + [1440] * 2


def test_the_reference_gmail_ramp_is_never_throttled_by_gmail():
    rep = SourceReputation(PROFILES["gmail"].tolerance)
    days = [
        _paced_day(rep, START + timedelta(days=d), rate, 4)
        for d, rate in enumerate(GMAIL_RAMP)
    ]
    assert all(throttled == blocked == 0 for _, throttled, blocked in days)
    assert rep.tolerated_per_hour >= 1440


def test_a_new_ip_sending_at_full_speed_is_throttled_then_blocked():
    rep = SourceReputation(PROFILES["gmail"].tolerance)
    accepted, throttled, blocked = _paced_day(rep, START, 1440, 1)
    assert accepted < 80 / 6 + 3
    assert throttled == PROFILES["gmail"].tolerance.block_after - 1
    assert blocked == 1440 - accepted - throttled


def test_microsoft_is_stricter_than_gmail_for_the_same_ramp():
    throttles = {}
    for name in ("gmail", "microsoft"):
        rep = SourceReputation(PROFILES[name].tolerance)
        throttles[name] = sum(
            _paced_day(rep, START + timedelta(days=d), rate, 4)[1]
            for d, rate in enumerate(GMAIL_RAMP)
        )
    assert throttles["gmail"] == 0 < throttles["microsoft"]


def test_an_idle_ip_is_forgotten():
    rep = SourceReputation(Tolerance())
    for day in range(10):
        _paced_day(rep, START + timedelta(days=day), 60, 4)
    gained = rep.tolerated_per_hour - 80
    rep.admit(START + timedelta(days=9 + 7 + 60))  # 60 days past the 7-day grace
    assert rep.tolerated_per_hour - 80 < gained / 3


def test_bounces_lower_the_reputation():
    rep = SourceReputation(Tolerance(bounce_cost=5.0))
    rep.delivered(START, 100)
    rep.bounced(START, 4)
    assert rep.clean == 80.0
    rep.bounced(START, 1000)
    assert rep.clean == 0.0


# --- mailboxes ------------------------------------------------------------------------


async def test_prefixed_recipients_behave_as_named(make_isp: MakeISP, clock: FakeClock):
    isp = make_isp("gmail", **NO_BAD_MAILBOXES)
    client = Client(await _started(isp), IP_A)
    unknown = []
    for _ in range(3):
        unknown.append(await client.send("unknown.jane@gmail.com"))
        clock.advance(timedelta(hours=1))
    full = await client.send("full.joe@gmail.com")
    grey_first = await client.send("grey.ann@gmail.com")
    clock.advance(timedelta(minutes=4))
    grey_early = await client.send("grey.ann@gmail.com")
    clock.advance(timedelta(minutes=1))
    grey_later = await client.send("grey.ann@gmail.com")
    dsn = await client.send("dsnbounce.bob@gmail.com")
    await client.close()

    assert all(reply[1].startswith("550-5.1.1 The email account") for reply in unknown)
    assert _matches(unknown[0], isp.profile.unknown_reply, isp.profile)
    assert full[0] == 452 and "4.2.2 The recipient's inbox is out of storage" in full[1]
    assert grey_first[1] == (
        "451 4.7.1 <grey.ann@gmail.com>: Recipient address rejected:"
        " Greylisted, please try again later"
    )
    assert (grey_early[0], grey_later[0]) == (451, 250)
    assert dsn[0] == 250
    assert isp.dsn_queue == [
        DSNRecord(
            source_ip=IP_A,
            mail_from=SENDER,
            rcpt="dsnbounce.bob@gmail.com",
            reply=(
                "550 5.1.1 <dsnbounce.bob@gmail.com>: Recipient address rejected:"
                " User unknown in local recipient table"
            ),
            accepted_at=clock.now(),
        )
    ]
    stats = isp.stats[IP_A]
    assert (stats.unknown, stats.full, stats.greylisted, stats.dsn) == (3, 1, 2, 1)
    assert (stats.accepted, isp.received) == (2, 2)


async def test_greylisting_is_per_source_ip(make_isp: MakeISP, clock: FakeClock):
    isp = make_isp("default", **NO_BAD_MAILBOXES)
    port = await _started(isp)
    first, second = Client(port, IP_A), Client(port, IP_B)
    assert (await first.send("grey@example.org"))[0] == 451
    clock.advance(timedelta(minutes=5))
    assert (await first.send("grey@example.org"))[0] == 250
    assert (await second.send("grey@example.org"))[0] == 451
    assert (await first.send("grey@example.org"))[0] == 250  # stays passed
    await first.close()
    await second.close()


def test_mailbox_kinds_follow_the_shares_and_the_seed():
    shares = MailboxShares(unknown=0.2, full=0.1, greylist=0.1, dsn=0.05)
    addresses = [f"person{n}@example.com" for n in range(4000)]
    kinds = [classify_mailbox(a, key=b"seed-1", shares=shares) for a in addresses]
    for kind, share in [
        (Mailbox.unknown, 0.2),
        (Mailbox.full, 0.1),
        (Mailbox.greylist, 0.1),
        (Mailbox.dsn, 0.05),
        (Mailbox.normal, 0.55),
    ]:
        assert abs(kinds.count(kind) / len(addresses) - share) < 0.03, kind
    again = [classify_mailbox(a, key=b"seed-1", shares=shares) for a in addresses]
    other = [classify_mailbox(a, key=b"seed-2", shares=shares) for a in addresses]
    assert again == kinds
    assert other != kinds
    upper = classify_mailbox("<PERSON7@Example.COM>", key=b"seed-1", shares=shares)
    assert upper is kinds[7]


def test_prefixes_win_over_the_hash():
    everyone_unknown = MailboxShares(unknown=1.0, full=0.0, greylist=0.0, dsn=0.0)
    key = b"k"
    assert classify_mailbox("Full.x@a.com", key=key, shares=everyone_unknown) is (
        Mailbox.full
    )
    assert classify_mailbox("grey@a.com", key=key, shares=everyone_unknown) is (
        Mailbox.greylist
    )
    assert classify_mailbox("dsnbounce7@a.com", key=key, shares=everyone_unknown) is (
        Mailbox.dsn
    )
    assert classify_mailbox("plain@a.com", key=key, shares=everyone_unknown) is (
        Mailbox.unknown
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"unknown": 1.5}, "unknown_share must be within [0, 1], got 1.5"),
        ({"unknown": 0.6, "full": 0.6}, "the shares must add up to at most 1"),
    ],
)
def test_bad_shares_are_refused(values: dict[str, float], message: str):
    with pytest.raises(ValueError, match=re.escape(message)):
        MailboxShares(**values)


# --- determinism, replies, protocol ---------------------------------------------------


async def _scripted_run(seed: int):
    """The same traffic each time: two IPs, mixed mailboxes, bursts and pauses."""
    clock = FakeClock(START)
    isp = SimulatedISP(
        PROFILES["gmail"],
        now=clock.now,
        rng=random.Random(seed),
        unknown_share=0.1,
        full_share=0.05,
        greylist_share=0.05,
        dsn_share=0.05,
    )
    port = await isp.start()
    clients = [Client(port, IP_A), Client(port, IP_B)]
    replies = []
    try:
        for n in range(60):
            client = clients[n % 3 == 0]
            replies.append(await client.send(f"member{n % 40}@gmail.com"))
            clock.advance(timedelta(seconds=20 if n < 30 else 90))
        for client in clients:
            await client.close()
    finally:
        await isp.stop()
    return isp.stats, isp.dsn_queue, replies, isp.received


async def test_the_same_seed_gives_the_same_run():
    first = await _scripted_run(seed=7)
    second = await _scripted_run(seed=7)
    third = await _scripted_run(seed=8)

    stats = first[0]
    assert stats[IP_A].throttled > 0 and stats[IP_A].unknown > 0
    assert stats[IP_A].dsn + stats[IP_B].dsn > 0
    assert first == second  # stats, DSN records, every reply with its ids
    assert first[0] != third[0]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_reply_classifies_as_the_simulation_means_it(name: str):
    profile = PROFILES[name]
    meant = {
        profile.throttle_reply: Verdict.throttle,
        profile.block_reply: Verdict.block,
        profile.unknown_reply: Verdict.hard,
        profile.dsn_reply: Verdict.hard,
        profile.full_reply: Verdict.soft,
        profile.greylist_reply: Verdict.soft,
        profile.data_reply: Verdict.delivered,
    }
    for template, verdict in meant.items():
        text = template.format(
            ip=IP_A, rcpt="x@example.com", host=profile.hostname, id="0a1b", epoch=1
        )
        assert classify_reply(parse_reply(text)).verdict is verdict, text


async def test_ehlo_advertises_pipelining_and_greets_the_client(make_isp: MakeISP):
    isp = make_isp("gmail")
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=await _started(isp), source_address=(IP_B, 0)
    )
    greeting = await client.connect()
    ehlo = await client.ehlo(hostname="mta2.example.com")
    extensions = set(client.esmtp_extensions)
    await client.quit()
    assert greeting.code == 220 and greeting.message.startswith("mx.google.com ESMTP")
    assert ehlo.message.startswith("mx.google.com at your service, [127.0.0.3]")
    assert {"pipelining", "8bitmime", "enhancedstatuscodes", "size"} <= extensions


async def _converse(port: int, lines: list[bytes]) -> list[bytes]:
    """Send raw lines from IP_A, one at a time; return the first reply line to each."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(IP_A, 0)
    )
    answers = [await asyncio.wait_for(reader.readline(), 5)]
    for line in lines:
        writer.write(line + b"\r\n")
        answer = await asyncio.wait_for(reader.readline(), 5)
        answers.append(answer)
        while answer[3:4] == b"-":
            answer = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return answers


async def test_garbage_gets_errors_not_a_crash(make_isp: MakeISP):
    isp = make_isp("default", **NO_BAD_MAILBOXES)
    port = await _started(isp)
    conversation = [
        (b"\xff\xfe\x00 nonsense", b"500"),
        (b"RCPT TO:<a@b.c>", b"503"),  # no HELO yet
        (b"HELO", b"501"),
        (b"HELO client.example.com", b"250"),
        (b"MAIL FROM:<broken", b"553"),
        (b"MAIL FROM:<a b@c.d>", b"553"),
        (b"RCPT TO:<x@example.org>", b"503"),  # no MAIL yet
        (b"MAIL FROM:<>", b"250"),  # the null sender is fine
        (b"RCPT TO:<>", b"553"),
        (b"RCPT TO:<no-at-sign>", b"553"),
        (b"RCPT TO:<x@example.org> FOO=BAR", b"501"),
        (b"DATA", b"503"),  # no valid RCPT yet
        (b"RCPT TO:<x@example.org>", b"250"),
        (b"NOOP", b"250"),
    ]
    answers = await _converse(port, [line for line, _ in conversation])
    assert answers[0][:3] == b"220"
    assert [answer[:3] for answer in answers[1:]] == [code for _, code in conversation]
    assert answers[5].startswith(b"553 5.1.7 The sender address <broken> is not")
    assert isp.stats[IP_A].accepted == 0 and isp.connections == 1


async def test_a_421_closes_the_connection_from_the_server_side(make_isp: MakeISP):
    isp = make_isp("gmail", **NO_BAD_MAILBOXES)
    port = await _started(isp)
    allowed = int(80 * 10 / 60 + 2)
    fill = Client(port, IP_A)
    for n in range(allowed):
        assert (await fill.send(f"f{n}@gmail.com"))[0] == 250
    await fill.close()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(IP_A, 0)
    )
    writer.write(
        b"EHLO raw.example.com\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@gmail.com>\r\n"
    )
    received = b""
    while not reader.at_eof():  # bounded: the server closes, or 5 s pass
        received += await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    assert received.rstrip().endswith(b"- gsmtp")
    assert b"\r\n421 4.7.28 review our Bulk Email Senders Guidelines." in received


async def test_start_and_stop(make_isp: MakeISP):
    isp = make_isp("default")
    with pytest.raises(ValueError, match=r"loopback only, got '0\.0\.0\.0'"):
        await isp.start("0.0.0.0")
    port = await isp.start("127.0.0.1")
    assert port == isp.port > 0
    with pytest.raises(RuntimeError, match="already listening"):
        await isp.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"220 ")
    await isp.stop()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # session closed by stop
    writer.close()
    await isp.stop()  # a second stop is harmless
    assert isp.connections == 1


async def test_context_manager_and_profile_override(clock: FakeClock):
    strict = dataclasses.replace(
        PROFILES["default"], tolerance=Tolerance(initial_per_hour=6, burst=0)
    )
    async with SimulatedISP(strict, now=clock.now, rng=random.Random(3)) as isp:
        client = Client(isp.port, IP_A)
        codes = [(await client.send(f"x{n}@example.org"))[0] for n in range(2)]
        await client.close()
    assert codes == [250, 421]  # 6/h allows one message per 10 minutes


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("initial_per_hour", 0, "initial_per_hour must be positive, got 0"),
        ("block_keep", 1.5, "block_keep must be within [0, 1], got 1.5"),
        ("window", timedelta(0), "window_seconds must be positive, got 0.0"),
    ],
)
def test_bad_tolerances_are_refused(field: str, value: object, message: str):
    with pytest.raises(ValueError, match=re.escape(message)):
        Tolerance(**{field: value})  # type: ignore[arg-type]


def test_a_profile_needs_error_replies():
    with pytest.raises(ValueError, match="throttle_reply must be a 4xx or 5xx reply"):
        dataclasses.replace(PROFILES["gmail"], throttle_reply="250 fine")
