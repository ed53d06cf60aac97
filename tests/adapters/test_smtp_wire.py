"""The sender's wire (warmup.adapters.smtp_wire) against a raw asyncio SMTP server.

``RawServer`` answers line by line from a per-verb script and records every chunk it
reads and every reply it writes, so a test sees whether MAIL, RCPT and DATA came in
one write (pipelined, RFC 2920) or each after the reply to the one before.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from warmup.adapters.smtp import SMTPSender
from warmup.adapters.smtp_wire import (
    MAX_REPLY,
    Reply,
    SMTPWire,
    WireClosed,
    WireProtocolError,
    data_payload,
    parse_extensions,
)
from warmup.core.model import SendStage
from warmup.core.replies.classify import ConnectionFailure
from warmup.core.settings import SourceIP, Timeouts, TLSSettings

SOURCE = SourceIP(address="127.0.0.2", helo="mta2.example.test")
MESSAGE = b"From: a@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"
ROOMY = Timeouts(
    connect=timedelta(seconds=5),
    command=timedelta(seconds=5),
    data=timedelta(seconds=5),
)
EHLO_PIPELINING = b"250-raw.test\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"
EHLO_PLAIN = b"250-raw.test\r\n250 8BITMIME\r\n"
DEFAULTS = {
    "HELO": b"250 raw.test\r\n",
    "MAIL": b"250 2.1.0 OK\r\n",
    "RCPT": b"250 2.1.5 OK\r\n",
    "DATA": b"354 go ahead\r\n",
    ".": b"250 2.0.0 queued\r\n",  # the end of the message data
    "RSET": b"250 2.0.0 OK\r\n",
    "QUIT": b"221 2.0.0 bye\r\n",
}
STREAM = b"stream"  # as a scripted reply: endless bytes without a line end


class RawServer:
    """A line-by-line SMTP responder on 127.0.0.1 that records the traffic."""

    def __init__(self, *, ehlo: bytes = EHLO_PIPELINING, split: bool = False) -> None:
        self.ehlo = ehlo
        self.split = split  # write every reply byte by byte
        self.script: dict[str, deque[bytes]] = {}
        self.events: list[tuple[str, bytes]] = []  # ("in", chunk) / ("out", reply)
        self.lines: list[bytes] = []  # command lines, in order
        self.bodies: list[bytes] = []  # message data after a 354, with the "."
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    def on(self, verb: str, *replies: bytes) -> None:
        self.script.setdefault(verb, deque()).extend(replies)

    def verbs(self) -> list[str]:
        return [line[:4].decode().upper() for line in self.lines]

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    def _reply(self, verb: str) -> bytes:
        queued = self.script.get(verb)
        if queued:
            return queued.popleft()
        return self.ehlo if verb == "EHLO" else DEFAULTS.get(verb, b"502 what\r\n")

    async def _write(self, writer: asyncio.StreamWriter, reply: bytes) -> None:
        self.events.append(("out", reply))
        if reply == STREAM:
            for _ in range(64):  # 1 MiB at most: far over the client's bound
                writer.write(b"x" * 16384)
                await writer.drain()
            return
        for piece in (
            [reply[i : i + 1] for i in range(len(reply))] if self.split else [reply]
        ):
            writer.write(piece)
            await writer.drain()
            if self.split:
                await asyncio.sleep(0)  # let the client read this byte alone

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            await self._write(writer, b"220 raw.test ESMTP\r\n")
            await self._session(reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        buffer, in_data = b"", False
        for _ in range(10_000):  # bounded: far more chunks than any test sends
            chunk = await reader.read(65536)
            if not chunk:
                return
            self.events.append(("in", chunk))
            buffer += chunk
            while True:
                if in_data:
                    end = (
                        0 if buffer.startswith(b".\r\n") else buffer.find(b"\r\n.\r\n")
                    )
                    if end < 0:
                        break
                    size = 3 if end == 0 else end + 5
                    self.bodies.append(buffer[:size])
                    buffer, in_data, verb = buffer[size:], False, "."
                else:
                    end = buffer.find(b"\r\n")
                    if end < 0:
                        break
                    self.lines.append(buffer[:end])
                    verb = buffer[:4].decode().upper()
                    buffer = buffer[end + 2 :]
                reply = self._reply(verb)
                await self._write(writer, reply)
                in_data = in_data or (verb == "DATA" and reply.startswith(b"354"))
                if verb == "QUIT" or reply.startswith(b"421") or reply == STREAM:
                    return


@pytest.fixture
async def make_sender() -> AsyncIterator[Callable[..., SMTPSender]]:
    made: list[SMTPSender] = []

    def make(**kwargs: object) -> SMTPSender:
        options: dict[str, object] = {
            "timeouts": ROOMY,
            "tls": TLSSettings(starttls="off"),
            **kwargs,
        }
        sender = SMTPSender(**options)  # type: ignore[arg-type]
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.close()


async def send(
    sender: SMTPSender, server: RawServer, message: bytes = MESSAGE
) -> tuple[SendStage | None, int | None, ConnectionFailure | None, str]:
    outcome = await sender.send(
        source=SOURCE,
        host="127.0.0.1",
        port=server.port,
        sender="b@example.test",
        recipient="u@example.test",
        message=message,
    )
    code = outcome.reply.code if outcome.reply is not None else None
    return outcome.stage, code, outcome.failure, outcome.detail


GROUP = b"MAIL FROM:<b@example.test>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n"
ACCEPTED = (SendStage.data, 250, None, "")


# --- pipelining used, or not ----------------------------------------------------------


async def test_mail_rcpt_and_data_go_in_one_write_when_the_server_offers_pipelining(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer() as server:
        sender = make_sender()
        outcomes = [await send(sender, server) for _ in range(2)]

    assert outcomes == [ACCEPTED, ACCEPTED]
    chunks = [data for kind, data in server.events if kind == "in"]
    # the server read all three commands before it had answered any of them
    assert chunks.count(GROUP) == 2
    assert server.bodies == [MESSAGE + b".\r\n"] * 2
    assert server.connections == 1


async def test_each_command_waits_for_its_reply_without_pipelining(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer(ehlo=EHLO_PLAIN) as server:
        outcome = await send(make_sender(), server)

    assert outcome == ACCEPTED
    after_ehlo = server.events[3:]  # after greeting out, EHLO in, EHLO reply out
    assert [kind for kind, _ in after_ehlo] == ["in", "out"] * 4
    assert [data for kind, data in after_ehlo if kind == "in"] == [
        b"MAIL FROM:<b@example.test>\r\n",
        b"RCPT TO:<u@example.test>\r\n",
        b"DATA\r\n",
        MESSAGE + b".\r\n",
    ]


# --- refusals in a pipelined group ----------------------------------------------------


async def test_a_refused_recipient_in_the_group_decides_then_rset_keeps_the_session(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer() as server:
        server.on("RCPT", b"550 5.1.1 no such user\r\n")
        server.on("DATA", b"503 5.5.1 no valid recipients\r\n")
        sender = make_sender()
        refused = await send(sender, server)
        after = await send(sender, server)

    assert refused[:3] == (SendStage.rcpt, 550, None)
    assert after == ACCEPTED
    assert server.verbs()[1:] == [
        "MAIL",
        "RCPT",
        "DATA",
        "RSET",
        "MAIL",
        "RCPT",
        "DATA",
    ]
    assert server.connections == 1


async def test_a_refused_sender_in_the_group_decides_at_stage_mail(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer() as server:
        server.on("MAIL", b"550 5.7.1 go away\r\n")
        server.on("RCPT", b"503 5.5.1 MAIL first\r\n")
        server.on("DATA", b"503 5.5.1 MAIL first\r\n")
        sender = make_sender()
        refused = await send(sender, server)
        after = await send(sender, server)

    assert refused[:3] == (SendStage.mail, 550, None)
    assert after == ACCEPTED
    assert server.verbs()[4:6] == ["RSET", "MAIL"]
    assert server.connections == 1


async def test_a_354_after_a_refused_recipient_gets_a_lone_dot_then_rset(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer() as server:
        server.on("RCPT", b"550 5.1.1 no such user\r\n")
        server.on("DATA", b"354 go ahead anyway\r\n")
        server.on(".", b"554 5.5.1 no valid recipients\r\n")
        sender = make_sender()
        refused = await send(sender, server)
        after = await send(sender, server)

    assert refused[:3] == (SendStage.rcpt, 550, None)
    assert server.bodies == [b".\r\n", MESSAGE + b".\r\n"]  # no message text sent
    assert server.verbs()[4] == "RSET"
    assert after == ACCEPTED
    assert server.connections == 1


@pytest.mark.parametrize("stage", [SendStage.mail, SendStage.rcpt, SendStage.data])
async def test_a_421_in_the_group_ends_the_session(
    make_sender: Callable[..., SMTPSender], stage: SendStage
) -> None:
    async with RawServer() as server:
        server.on(stage.upper(), b"421 4.7.0 closing\r\n")
        sender = make_sender()
        throttled = await send(sender, server)
        after = await send(sender, server)

    assert throttled[:3] == (stage, 421, None)
    assert after == ACCEPTED
    assert server.connections == 2
    assert "RSET" not in server.verbs()


async def test_ehlo_refused_with_421_is_a_refusal_without_helo(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer() as server:
        server.on("EHLO", b"421 4.7.0 too busy\r\n")
        outcome = await send(make_sender(), server)

    assert outcome == (
        SendStage.ehlo,
        None,
        ConnectionFailure.greeting421,
        "421 4.7.0 too busy",
    )
    assert server.verbs() == ["EHLO"]


# --- replies split anyhow, and bounded ------------------------------------------


@pytest.mark.parametrize("ehlo", [EHLO_PIPELINING, EHLO_PLAIN], ids=["pipe", "plain"])
async def test_replies_written_byte_by_byte_are_read_whole(
    make_sender: Callable[..., SMTPSender], ehlo: bytes
) -> None:
    async with RawServer(ehlo=ehlo, split=True) as server:
        server.on("RCPT", b"550-5.1.1 no such\r\n550-5.1.1 user\r\n550 5.1.1 here\r\n")
        sender = make_sender()
        refused = await sender.send(
            source=SOURCE, host="127.0.0.1", port=server.port,
            sender="b@example.test", recipient="u@example.test", message=MESSAGE,
        )  # fmt: skip
        after = await send(sender, server)

    assert refused.reply is not None and refused.stage is SendStage.rcpt
    assert (refused.reply.code, refused.reply.text) == (550, "no such user here")
    assert after == ACCEPTED
    assert server.connections == 1


@pytest.mark.parametrize("verb", ["MAIL", "RCPT"])
async def test_a_reply_that_never_ends_fails_the_session_early(
    make_sender: Callable[..., SMTPSender], verb: str
) -> None:
    async with RawServer(ehlo=EHLO_PLAIN) as server:
        server.on(verb, STREAM)
        outcome = await send(make_sender(), server)

    stage, code, failure, detail = outcome
    assert (stage, code, failure) == (
        SendStage[verb.lower()],
        None,
        ConnectionFailure.reset,
    )
    assert "too long" in detail


@pytest.fixture
async def wire() -> AsyncIterator[SMTPWire]:
    """A wire on one end of a socket pair; the test feeds it data itself."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    _transport, made = await loop.create_connection(SMTPWire, sock=ours)
    yield made
    made.close()
    theirs.close()


async def test_the_parser_takes_replies_byte_by_byte_and_several_at_once(
    wire: SMTPWire,
) -> None:
    wire.send(b"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<u@x>\r\nDATA\r\n", 4)
    stream = (
        b"220 hi\r\n250-x\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        b"250 ok\r\n550 5.1.1 no\r\n354 go\n"
    )
    for index in range(len(stream)):
        wire.data_received(stream[index : index + 1])
    wire.data_received(b"250 unsolicited\r\n")  # nothing announced: dropped

    replies = [await wire.reply(0.1) for _ in range(5)]
    assert replies == [
        Reply(220, "hi"),
        Reply(250, "x\nPIPELINING\n8BITMIME"),
        Reply(250, "ok"),
        Reply(550, "5.1.1 no"),
        Reply(354, "go"),
    ]
    wire.send(b"RSET\r\n", 1)
    wire.data_received(b"250 reset\r\n251 also\r\n")
    assert await wire.reply(0.1) == Reply(250, "reset")
    wire.send(b"NOOP\r\n", 1)
    wire.data_received(b"252 noop\r\n")
    assert await wire.reply(0.1) == Reply(252, "noop")  # "251 also" was dropped


@pytest.mark.parametrize(
    "data", [b"2" * (MAX_REPLY + 1), b"250-long\r\n" * (MAX_REPLY // 10 + 1)]
)
async def test_the_parser_bounds_a_reply(wire: SMTPWire, data: bytes) -> None:
    for start in range(0, len(data), 1000):
        wire.data_received(data[start : start + 1000])

    with pytest.raises(WireProtocolError, match="too long"):
        await wire.reply(0.1)
    assert not wire.is_connected


async def test_the_parser_refuses_a_malformed_line_and_eof_fails_what_is_left(
    wire: SMTPWire,
) -> None:
    wire.data_received(b"220 hi\r\n")
    assert await wire.reply(0.1) == Reply(220, "hi")
    wire.send(b"NOOP\r\nNOOP\r\n", 2)
    wire.data_received(b"250 ok\r\n")
    wire.eof_received()

    assert await wire.reply(0.1) == Reply(250, "ok")
    with pytest.raises(WireClosed, match="EOF"):
        await wire.reply(0.1)
    with pytest.raises(WireClosed):
        wire.send(b"NOOP\r\n", 1)


async def test_a_malformed_reply_line_fails_the_wire(wire: SMTPWire) -> None:
    wire.data_received(b"2x0 hi\r\n")

    with pytest.raises(WireProtocolError, match="Malformed"):
        await wire.reply(0.1)


# --- message data on the wire ---------------------------------------------------------


TRICKY = [
    b".starts with a dot\nbare LF\rbare CR\r\n..two dots\r\n.\r\n. \r\nno final end",
    b"\r\n.\r\n",
    b".",
    b"",
    b"a\r\r\nb\n\rc\r",
    b"\xc3\xa9t\xc3\xa9\n.\n..\n",
]


@pytest.mark.parametrize("message", TRICKY)
async def test_message_data_on_the_wire_is_what_aiosmtplib_sends(
    make_sender: Callable[..., SMTPSender], message: bytes
) -> None:
    async with RawServer() as server:
        ours = await send(make_sender(), server, message)
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port) as client:
            await client.sendmail("b@example.test", ["u@example.test"], message)

    assert ours == ACCEPTED
    assert len(server.bodies) == 2
    assert server.bodies[0] == server.bodies[1]


@given(
    st.binary(max_size=200)
    | st.lists(st.sampled_from([b".", b"\r", b"\n", b"x", b"\r\n", b"\r\n."])).map(
        b"".join
    )
)
def test_data_payload_matches_aiosmtplib_for_any_message(message: bytes) -> None:
    expected = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message))
    assert data_payload(message) == expected + b".\r\n"


# --- command lines -----------------------------------------------------------------


async def test_mail_and_rcpt_carry_8bitmime_and_smtputf8_in_the_group(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer() as server:
        outcome = await make_sender().send(
            source=SOURCE, host="127.0.0.1", port=server.port,
            sender="b@example.test", recipient="jörg@example.test",
            message="Grüße\r\n".encode(),
        )  # fmt: skip

    assert outcome.accepted
    group = (
        b"MAIL FROM:<b@example.test> BODY=8BITMIME SMTPUTF8\r\n"
        + "RCPT TO:<jörg@example.test>\r\n".encode()
        + b"DATA\r\n"
    )
    assert ("in", group) in server.events


async def test_an_address_unfit_for_a_command_line_is_refused_without_sending(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer() as server:
        outcome = await make_sender().send(
            source=SOURCE, host="127.0.0.1", port=server.port,
            sender="b@example.test", recipient="a b@example.test", message=MESSAGE,
        )  # fmt: skip

    assert outcome.reply is not None and outcome.failure is None
    assert (outcome.reply.code, outcome.reply.enhanced) == (None, "5.1.3")
    assert server.verbs() == ["EHLO"]


def test_ehlo_keywords_are_case_insensitive_and_keep_their_parameters() -> None:
    extensions = parse_extensions(
        "mx.test greets you\npipelining\nSIZE 35882577\nStartTLS"
    )

    assert extensions == {"pipelining": "", "size": "35882577", "starttls": ""}


async def test_a_lower_case_pipelining_keyword_is_honoured(
    make_sender: Callable[..., SMTPSender],
) -> None:
    async with RawServer(ehlo=b"250-raw.test\r\n250 pipelining\r\n") as server:
        outcome = await send(make_sender(), server)

    assert outcome == ACCEPTED
    assert ("in", GROUP) in server.events
