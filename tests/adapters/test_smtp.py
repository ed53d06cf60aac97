"""SMTPSender against real sockets on loopback: ScriptedSMTPServer in the test loop.

The ``server`` and ``tls_server`` fixtures run every test twice: once with a server
that offers PIPELINING (MAIL, RCPT and DATA go in one write) and once without.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest

from warmup.adapters.smtp import SendOutcome, SMTPSender
from warmup.core.model import SendStage, Verdict
from warmup.core.replies.classify import ConnectionFailure, SMTPReply, classify_failure
from warmup.core.settings import SourceIP, Timeouts, TLSSettings
from warmup.testing.smtp import ScriptedReply, ScriptedSMTPServer, self_signed_context

IP_A = SourceIP(address="127.0.0.2", helo="mta2.example.test")
IP_B = SourceIP(address="127.0.0.3", helo="mta3.example.test")
MESSAGE = b"From: a@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"
SHORT = Timeouts(
    connect=timedelta(seconds=0.2),
    command=timedelta(seconds=0.2),
    data=timedelta(seconds=0.2),
)
# generous for normal steps (slow CI), short where a test waits for a timeout
ROOMY = Timeouts(
    connect=timedelta(seconds=5),
    command=timedelta(seconds=5),
    data=timedelta(seconds=5),
)
PLAIN = TLSSettings(starttls="off")

MakeSender = Callable[..., SMTPSender]


@pytest.fixture(params=[False, True], ids=["stepwise", "pipelined"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    return cast(bool, request.param)


@pytest.fixture
async def server(pipelining: bool) -> AsyncIterator[ScriptedSMTPServer]:
    async with ScriptedSMTPServer(pipelining=pipelining) as running:
        yield running


@pytest.fixture
async def make_sender() -> AsyncIterator[MakeSender]:
    made: list[SMTPSender] = []

    def make(**kwargs: object) -> SMTPSender:
        options: dict[str, object] = {"timeouts": ROOMY, "tls": PLAIN, **kwargs}
        sender = SMTPSender(**options)  # type: ignore[arg-type]
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.close()


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture
async def tls_server(
    tls_dir: Path, pipelining: bool
) -> AsyncIterator[ScriptedSMTPServer]:
    try:
        context = self_signed_context(tls_dir)
    except RuntimeError as exc:
        pytest.skip(f"cannot make a TLS certificate: {exc}")
    async with ScriptedSMTPServer(
        tls_context=context, pipelining=pipelining
    ) as running:
        yield running


async def send(
    sender: SMTPSender,
    server: ScriptedSMTPServer,
    *,
    source: SourceIP = IP_A,
    recipient: str = "user@example.test",
    message: bytes = MESSAGE,
) -> SendOutcome:
    return await sender.send(
        source=source,
        host=server.host,
        port=server.port,
        sender="bounces@example.test",
        recipient=recipient,
        message=message,
    )


def reply_of(outcome: SendOutcome) -> SMTPReply:
    assert outcome.reply is not None, outcome
    return outcome.reply


# --- delivery, source binding, HELO ---------------------------------------------------


async def test_each_send_leaves_from_its_source_ip_with_its_helo(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender()

    first = await send(sender, server, source=IP_A, recipient="a@example.test")
    second = await send(sender, server, source=IP_B, recipient="b@example.test")

    assert first.accepted and second.accepted
    assert (first.stage, reply_of(first).code, first.failure) == ("data", 250, None)
    seen = [(m.peer_ip, m.helo, m.rcpt_tos) for m in server.received]
    assert seen == [
        ("127.0.0.2", "mta2.example.test", ("a@example.test",)),
        ("127.0.0.3", "mta3.example.test", ("b@example.test",)),
    ]
    assert server.received[0].mail_from == "bounces@example.test"
    assert server.received[0].content.endswith(b"Hello.\r\n")
    assert sender.stats.connections_opened == 2
    assert sender.stats.messages_sent == 2


async def test_falls_back_to_helo_when_the_server_refuses_ehlo(
    make_sender: MakeSender,
) -> None:
    async with ScriptedSMTPServer(ehlo=False) as server:
        outcome = await send(make_sender(), server)

    assert outcome.accepted
    assert server.verbs()[:2] == ["EHLO", "HELO"]
    assert server.commands[1].argument == "mta2.example.test"


# --- pooling --------------------------------------------------------------------------


@pytest.mark.parametrize(("messages", "per_connection"), [(7, 3), (6, 3), (4, 1)])
async def test_reuses_a_connection_for_up_to_the_message_limit(
    server: ScriptedSMTPServer,
    make_sender: MakeSender,
    messages: int,
    per_connection: int,
) -> None:
    sender = make_sender(messages_per_connection=per_connection)

    outcomes = [await send(sender, server) for _ in range(messages)]

    assert all(outcome.accepted for outcome in outcomes)
    expected = math.ceil(messages / per_connection)
    assert server.connections == sender.stats.connections_opened == expected
    # every connection that reached the limit said QUIT before the next one opened
    assert server.verbs().count("QUIT") == messages // per_connection
    await sender.close()
    assert server.verbs().count("QUIT") == expected


async def test_at_most_connections_per_key_are_open_at_once(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender(connections_per_lane=2)
    for _ in range(12):
        server.script.on_data("250 2.0.0 OK", delay=0.02)  # keep sessions busy

    outcomes = await asyncio.gather(
        *(send(sender, server, source=IP_A if n % 2 else IP_B) for n in range(12))
    )

    assert all(outcome.accepted for outcome in outcomes)
    assert len(server.received) == 12
    # two keys (two source IPs) with two connections each, reused by the waiting sends
    assert server.max_active == 4
    assert server.connections == 4
    assert sorted(server.peers) == ["127.0.0.2"] * 2 + ["127.0.0.3"] * 2


async def test_a_session_dropped_by_the_server_while_idle_is_replaced(
    make_sender: MakeSender, pipelining: bool
) -> None:
    async with ScriptedSMTPServer(idle_timeout=0.05, pipelining=pipelining) as server:
        sender = make_sender()
        first = await send(sender, server)
        await asyncio.sleep(0.2)  # the server closes the idle session
        second = await send(sender, server)

    assert first.accepted and second.accepted
    assert server.connections == 2
    assert sender.stats.failures == 0


async def test_a_reused_session_dropped_at_mail_is_retried_once_on_a_new_one(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender()
    mails = 0

    def drop_second_mail(peer_ip: str, command: str, argument: str) -> str | None:
        nonlocal mails
        mails += command == "MAIL"
        if mails == 2 and command == "MAIL":
            server.disconnect()
        return None

    server.reply_for = drop_second_mail
    first = await send(sender, server)
    second = await send(sender, server)

    assert first.accepted and second.accepted
    assert server.connections == 2
    assert sender.stats.failures == 0
    assert len(server.received) == 2


async def test_a_session_idle_longer_than_max_idle_is_quit_and_replaced(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender(max_idle=timedelta(0))

    await send(sender, server)
    await asyncio.sleep(0.01)
    await send(sender, server)

    assert server.connections == 2
    assert server.verbs().count("QUIT") == 1


async def test_a_cancelled_send_does_not_return_its_session_to_the_pool(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender(timeouts=Timeouts(data=timedelta(seconds=5)))
    server.script.on_data("250 2.0.0 OK", delay=5)
    task = asyncio.create_task(send(sender, server))
    await asyncio.sleep(0.1)  # the message data is sent; the reply is 5 s away
    assert server.verbs()[-1] == "DATA"

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await send(sender, server)

    assert after.accepted
    assert server.connections == 2


async def test_close_quits_idle_sessions_and_refuses_later_sends(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    async with make_sender() as sender:
        await send(sender, server, source=IP_A)
        await send(sender, server, source=IP_B)
        assert server.verbs().count("QUIT") == 0

    assert server.verbs().count("QUIT") == 2
    with pytest.raises(RuntimeError, match="after close"):
        await send(sender, server)


# --- replies are values ---------------------------------------------------------------


async def test_a_rejected_recipient_is_a_value_and_the_session_is_kept(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender()
    server.script.on_rcpt(
        "gone@example.test", "550 5.1.1 <gone@example.test>: no such user"
    )

    rejected = await send(sender, server, recipient="gone@example.test")
    accepted = await send(sender, server, recipient="here@example.test")

    assert rejected.failure is None and not rejected.accepted
    assert rejected.stage == "rcpt"
    reply = reply_of(rejected)
    assert (reply.code, reply.enhanced) == (550, "5.1.1")
    assert "no such user" in reply.text
    assert accepted.accepted
    assert server.connections == 1
    # pipelined, DATA went too, answered 503 by aiosmtpd without a hook: not seen
    assert server.verbs()[:5] == ["EHLO", "MAIL", "RCPT", "RSET", "MAIL"]
    assert [m.rcpt_tos for m in server.received] == [("here@example.test",)]


async def test_a_rejected_sender_is_a_value_at_stage_mail(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    server.script.on_mail("550 5.7.26 unauthenticated mail is prohibited")
    sender = make_sender()

    outcome = await send(sender, server)
    after = await send(sender, server)

    assert outcome.stage == "mail"
    assert (reply_of(outcome).code, reply_of(outcome).enhanced) == (550, "5.7.26")
    # pipelined, RCPT and DATA went too, answered 503 by aiosmtpd without a hook
    assert server.verbs()[:4] == ["EHLO", "MAIL", "RSET", "MAIL"]
    assert after.accepted and server.connections == 1


async def test_a_rejected_message_is_a_value_at_stage_data(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender()
    server.script.on_data("554 5.7.1 message content rejected")

    rejected = await send(sender, server)
    accepted = await send(sender, server)

    assert rejected.stage == "data" and rejected.failure is None
    assert (reply_of(rejected).code, reply_of(rejected).enhanced) == (554, "5.7.1")
    assert accepted.accepted
    assert len(server.received) == 1
    assert server.connections == 1


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
@pytest.mark.parametrize("hang_up", [False, True])
async def test_a_421_reply_is_a_value_and_ends_the_session(
    make_sender: MakeSender, stage: str, pipelining: bool, hang_up: bool
) -> None:
    sender = make_sender()
    throttle = "421 4.7.28 Our system has detected an unusual rate of mail"
    # hang_up=False: the server leaves the connection open; the client hangs up
    async with ScriptedSMTPServer(
        hang_up_on_421=hang_up, pipelining=pipelining
    ) as server:
        server.script.add(ScriptedReply(command=stage.upper(), reply=throttle))
        throttled = await send(sender, server)
        after = await send(sender, server)

    assert throttled.failure is None and throttled.stage == stage
    assert (reply_of(throttled).code, reply_of(throttled).enhanced) == (421, "4.7.28")
    assert after.accepted
    assert server.connections == 2
    assert "RSET" not in server.verbs()


async def test_a_multiline_reply_keeps_its_enhanced_code_and_all_its_text(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    server.script.on_rcpt(
        None,
        "550-5.7.26 This mail is unauthenticated, which poses a security risk\r\n"
        "550 5.7.26 to the sender and Gmail users.",
    )

    outcome = await send(make_sender(), server)

    reply = reply_of(outcome)
    assert (reply.code, reply.enhanced) == (550, "5.7.26")
    assert reply.text == (
        "This mail is unauthenticated, which poses a security risk "
        "to the sender and Gmail users."
    )


async def test_the_server_can_answer_per_source_ip(
    make_sender: MakeSender, pipelining: bool
) -> None:
    counts: dict[str, int] = {}

    def throttle_a_after_two(peer_ip: str, command: str, argument: str) -> str | None:
        if command != "RCPT":
            return None
        counts[peer_ip] = counts.get(peer_ip, 0) + 1
        if peer_ip == "127.0.0.2" and counts[peer_ip] > 2:
            return "421 4.7.28 rate limited"
        return None

    async with ScriptedSMTPServer(
        reply_for=throttle_a_after_two, pipelining=pipelining
    ) as server:
        sender = make_sender()
        from_a = [await send(sender, server, source=IP_A) for _ in range(3)]
        from_b = [await send(sender, server, source=IP_B) for _ in range(3)]

    assert [o.accepted for o in from_a] == [True, True, False]
    assert reply_of(from_a[2]).code == 421
    assert all(o.accepted for o in from_b)


async def test_an_address_with_control_characters_is_rejected_without_sending(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    outcome = await send(
        make_sender(), server, recipient="x@example.test>\r\nRCPT TO:<y@example.test"
    )

    assert outcome.failure is None and not outcome.accepted
    assert reply_of(outcome).enhanced == "5.1.3"
    assert "MAIL" not in server.verbs()


async def test_an_eight_bit_message_arrives_unchanged(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    body = "Grüße aus Köln\r\n".encode()
    message = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body

    outcome = await send(make_sender(), server, message=message)

    assert outcome.accepted
    assert server.received[0].content.endswith(body)


async def test_a_garbled_reply_is_a_reset_failure(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    server.script.on_rcpt(None, "this is not an SMTP reply")

    outcome = await send(make_sender(), server)

    assert (outcome.failure, outcome.stage) == (ConnectionFailure.reset, "rcpt")
    assert "Malformed" in outcome.detail


async def test_a_non_ascii_recipient_goes_with_smtputf8(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    outcome = await send(make_sender(), server, recipient="jörg@example.test")

    assert outcome.accepted
    assert server.received[0].rcpt_tos == ("jörg@example.test",)


# --- connection-level failures --------------------------------------------------------


async def test_a_refusing_greeting_is_a_failure_with_the_greeting_text(
    make_sender: MakeSender,
) -> None:
    async with ScriptedSMTPServer(greeting="421 4.7.0 Try again later, closing") as srv:
        outcome = await send(make_sender(), srv)

    assert outcome.reply is None
    assert (outcome.failure, outcome.stage) == (
        ConnectionFailure.greeting421,
        "connect",
    )
    assert outcome.detail == "421 4.7.0 Try again later, closing"
    throttle = classify_failure(ConnectionFailure.greeting421, outcome.detail)
    assert throttle.verdict is Verdict.throttle


async def test_a_closed_port_is_a_refused_failure(make_sender: MakeSender) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends

    sender = make_sender()
    outcome = await sender.send(
        source=IP_A,
        host="127.0.0.1",
        port=port,
        sender="b@example.test",
        recipient="u@example.test",
        message=MESSAGE,
    )

    assert (outcome.failure, outcome.stage) == (ConnectionFailure.refused, "connect")
    assert sender.stats.failures == 1
    assert sender.stats.connections_opened == 0


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts connections and never says anything."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield silent.sockets[0].getsockname()[1]
    silent.close()
    for writer in held:
        writer.close()
    await silent.wait_closed()


async def test_a_silent_server_times_out_within_the_connect_timeout(
    silent_port: int, make_sender: MakeSender
) -> None:
    sender = make_sender(timeouts=SHORT)
    loop = asyncio.get_running_loop()
    started = loop.time()

    outcome = await sender.send(
        source=IP_A,
        host="127.0.0.1",
        port=silent_port,
        sender="b@example.test",
        recipient="u@example.test",
        message=MESSAGE,
    )

    elapsed = loop.time() - started
    assert (outcome.failure, outcome.stage) == (ConnectionFailure.timeout, "connect")
    assert 0.15 < elapsed < 1.0


async def test_a_stalled_command_times_out_and_the_session_is_replaced(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender(timeouts=SHORT)
    server.script.on_rcpt(None, "250 2.1.5 OK", delay=1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()

    stalled = await send(sender, server)
    elapsed = loop.time() - started
    after = await send(sender, server)

    assert (stalled.failure, stalled.stage) == (ConnectionFailure.timeout, "rcpt")
    assert elapsed < 0.8
    assert after.accepted
    assert server.connections == 2


async def test_a_server_hanging_up_mid_session_is_a_reset_failure(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender()

    def hang_up(peer_ip: str, command: str, argument: str) -> str | None:
        if command == "RCPT":
            server.disconnect()
        return None

    server.reply_for = hang_up
    outcome = await send(sender, server)

    assert (outcome.failure, outcome.stage) == (ConnectionFailure.reset, "rcpt")
    assert outcome.reply is None


# --- TLS ------------------------------------------------------------------------------


async def test_opportunistic_tls_upgrades_when_offered(
    tls_server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender(tls=TLSSettings(starttls="opportunistic", verify=False))

    outcome = await send(sender, tls_server)

    assert outcome.accepted
    assert tls_server.received[0].tls
    assert tls_server.verbs()[:3] == ["EHLO", "STARTTLS", "EHLO"]


async def test_opportunistic_tls_falls_back_to_plain_text_when_the_handshake_fails(
    tls_server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    # verifying a self-signed certificate fails the handshake
    sender = make_sender(tls=TLSSettings(starttls="opportunistic", verify=True))

    outcome = await send(sender, tls_server)

    assert outcome.accepted
    assert not tls_server.received[0].tls
    assert tls_server.connections == 2
    assert tls_server.verbs()[:4] == ["EHLO", "STARTTLS", "EHLO", "MAIL"]


async def test_required_tls_fails_when_the_handshake_fails(
    tls_server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender(tls=TLSSettings(starttls="required", verify=True))

    outcome = await send(sender, tls_server)

    assert (outcome.failure, outcome.stage) == (ConnectionFailure.tls, "starttls")
    assert tls_server.received == []
    assert tls_server.connections == 1


@pytest.mark.parametrize(
    ("mode", "accepted"), [("opportunistic", True), ("required", False)]
)
async def test_a_refused_starttls_goes_on_in_plain_text_unless_tls_is_required(
    tls_dir: Path, make_sender: MakeSender, mode: str, accepted: bool
) -> None:
    try:
        context = self_signed_context(tls_dir)
    except RuntimeError as exc:
        pytest.skip(f"cannot make a TLS certificate: {exc}")
    refusal = "454 4.7.0 TLS not available due to local problem"
    sender = make_sender(tls=TLSSettings(starttls=mode))

    async with ScriptedSMTPServer(tls_context=context, starttls_reply=refusal) as srv:
        outcome = await send(sender, srv)

    assert outcome.accepted is accepted
    assert srv.connections == 1  # the same session went on, or none was used
    if accepted:
        assert not srv.received[0].tls
        assert srv.verbs()[:3] == ["EHLO", "STARTTLS", "MAIL"]
    else:
        assert (outcome.failure, outcome.stage) == (ConnectionFailure.tls, "starttls")
        assert outcome.detail == refusal
        assert "MAIL" not in srv.verbs()


async def test_required_tls_refuses_a_server_without_starttls(
    server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    sender = make_sender(tls=TLSSettings(starttls="required"))

    outcome = await send(sender, server)

    assert (outcome.failure, outcome.stage) == (ConnectionFailure.tls, "starttls")
    assert "MAIL" not in server.verbs()


async def test_tls_off_never_upgrades(
    tls_server: ScriptedSMTPServer, make_sender: MakeSender
) -> None:
    outcome = await send(make_sender(tls=TLSSettings(starttls="off")), tls_server)

    assert outcome.accepted
    assert "STARTTLS" not in tls_server.verbs()
    assert not tls_server.received[0].tls


# --- values ---------------------------------------------------------------------------


def test_an_outcome_has_exactly_one_of_reply_and_failure() -> None:
    reply = SMTPReply(code=250, enhanced=None, text="OK")
    with pytest.raises(ValueError, match="exactly one"):
        SendOutcome(reply=None, failure=None)
    with pytest.raises(ValueError, match="exactly one"):
        SendOutcome(reply=reply, failure=ConnectionFailure.reset)
    with pytest.raises(ValueError, match="stage"):
        SendOutcome(reply=reply, failure=None, stage=cast(SendStage, "quit"))


def test_the_sender_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="starttls"):
        SMTPSender(timeouts=ROOMY, tls=TLSSettings(starttls="sometimes"))
    with pytest.raises(ValueError, match="connections_per_lane"):
        SMTPSender(timeouts=ROOMY, tls=PLAIN, connections_per_lane=0)


def test_addresses_go_on_the_command_line_as_aiosmtplib_would_put_them() -> None:
    """Dot-atom addresses skip the parseaddr pass (it costs ~15 us each); every
    address, shortcut or not, is quoted as aiosmtplib's quote_address quotes it, and
    one that aiosmtplib refuses (it would smuggle parameters) is refused too."""
    from aiosmtplib.email import quote_address as theirs

    from warmup.adapters.smtp_wire import PLAIN_ADDRESS, quote_address

    rng = random.Random(5321)

    def piece(chars: str) -> str:
        return "".join(rng.choices(chars, k=rng.randint(1, 8)))

    odd = ' "<>()[]\\,;:@é'
    generated = [
        piece("ab.-+_=!#$%&'*/?^`{|}~" + odd[: rng.randint(0, 3)])
        + "@"
        + piece("ab1-." + odd[: rng.randint(0, 3)])
        for _ in range(5000)
    ]
    samples = [
        "u1@gmail.com",
        "bounces+r12-a3-0123456789@bounce.example",
        "a.b.c@x-y.example",
        "a!b#c$d%e&f'g*h+i/j=k?l^m_n`o{p|q}r~s-t@x.y",
        "-@x",
        "",
        '"a b"@x.y',
        "Name <a@x.y>",
        "a@x.y> SIZE=1",
        *generated,
    ]
    plain = [address for address in samples if PLAIN_ADDRESS.fullmatch(address)]
    assert len(plain) > 500  # the fuzz does reach the shortcut
    refused = 0
    for address in samples:
        try:
            expected = theirs(address)
        except ValueError:
            refused += 1
            with pytest.raises(ValueError, match="command line"):
                quote_address(address)
            continue
        assert quote_address(address) == expected, address
    assert refused > 100  # the fuzz does reach the refusal
    for other in (
        '"a b"@x.y',
        "a b@x.y",
        "<a@x.y>",
        "a..b@x.y",
        "a@[127.0.0.1]",
        "é@x.y",
        "",
    ):
        assert not PLAIN_ADDRESS.fullmatch(other), other
