"""The relay with real clients (smtplib, aiosmtplib) over loopback and STARTTLS,
into a real store: what is accepted, how it is filed, what the message becomes."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select

from tests.adapters.relay_harness import (
    BOUNCE_DOMAIN,
    OUTSIDE,
    PASSWORD,
    USER,
    RawClient,
    Relay,
    client_context,
    running_relay,
)
from warmup.adapters.db.schema import campaigns, messages, recipients
from warmup.app.ports import FiledMessage, RelayedMessage
from warmup.core.errors import StoreError
from warmup.core.recipients.suppression import make_suppression

MESSAGE = (
    "From: Shop <shop@shop.example>\r\n"
    "To: Ann <ann@gmail.com>\r\n"
    "Bcc: secret@gmail.com\r\n"
    "X-Warmup-Campaign: spring-sale\r\n"
    "Message-ID: <client-1@shop.example>\r\n"
    "Subject: Spring sale\r\n"
    "\r\n"
    "Everything must go.\r\n"
)


def _smtplib_submit(
    port: int, cert: Path, recipients: list[str], message: str, *, login: bool = True
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP(
        "127.0.0.1", port, source_address=(OUTSIDE, 0), timeout=10
    ) as client:
        client.ehlo("tool.example")
        before = dict(client.esmtp_features)
        client.starttls(context=client_context(cert))
        client.ehlo("tool.example")
        assert "auth" not in before and "starttls" in before
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        if login:
            client.login(USER, PASSWORD)
        return client.sendmail("shop@shop.example", recipients, message.encode())


async def _rows(relay: Relay) -> list[dict[str, object]]:
    query = select(recipients, campaigns.c.name.label("campaign")).join(
        campaigns, campaigns.c.id == recipients.c.campaign_id
    )
    async with relay.store.engine.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def _content(relay: Relay, message_id: object) -> bytes:
    async with relay.store.engine.connect() as conn:
        query = select(messages.c.content).where(messages.c.id == message_id)
        return bytes((await conn.execute(query)).scalar_one())


async def test_ehlo_offers_what_the_issue_lists(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        client = await RawClient.connect(relay.port)
        greeting = await client.reply()
        assert greeting == "220 relay.test ESMTP warmup"
        features = (await client.send("EHLO tool.example")).splitlines()
        names = [line[4:].split()[0] for line in features[1:]]
        assert names == [
            "SIZE",
            "8BITMIME",
            "SMTPUTF8",
            "STARTTLS",
            "PIPELINING",
            "HELP",
        ]
        assert features[1] == "250-SIZE 26214400"
        assert (await client.starttls(client_context(relay.cert))).startswith("220")
        features = (await client.send("EHLO tool.example")).splitlines()
        assert "250-AUTH LOGIN PLAIN" in features
        assert not any("STARTTLS" in line for line in features)
        await client.close()


async def test_smtplib_with_auth_over_starttls_is_queued(
    tmp_path: Path, database_url: str
) -> None:
    async with running_relay(tmp_path, database_url) as relay:
        await relay.store.add_suppressions(
            [
                make_suppression(
                    "gone@gmail.com", reason="hard", source="t", now=relay.clock.now()
                )
            ]
        )
        refused = await asyncio.to_thread(
            _smtplib_submit,
            relay.port,
            relay.cert,
            ["ann@gmail.com", "Bob@Example.NET", "gone@gmail.com", "ann@gmail.com"],
            MESSAGE,
        )
        assert refused == {}
        rows = sorted(await _rows(relay), key=lambda r: str(r["address"]))
        assert [(r["address"], r["state"], r["isp"], r["campaign"]) for r in rows] == [
            ("Bob@example.net", "queued", None, "spring-sale"),
            ("ann@gmail.com", "queued", "gmail", "spring-sale"),
            ("gone@gmail.com", "suppressed", None, "spring-sale"),
        ]
        assert len({r["message_id"] for r in rows}) == 1
        content = await _content(relay, rows[0]["message_id"])
        assert content.startswith(
            b"Received: from tool.example ([127.0.0.2])\r\n"
            b"\tby relay.test with ESMTPSA;"
        )
        assert b"Bcc" not in content and b"X-Warmup-Campaign" not in content
        assert content.endswith(
            b"Message-ID: <client-1@shop.example>\r\nSubject: Spring sale\r\n"
            b"\r\nEverything must go.\r\n"
        )
        async with relay.store.engine.connect() as conn:
            row = (await conn.execute(select(messages))).one()
        assert (row.mail_from, row.peer, row.auth_user) == (
            "shop@shop.example",
            OUTSIDE,
            USER,
        )


async def test_aiosmtplib_auth_login_names_the_campaign_by_user(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=relay.port,
            source_address=(OUTSIDE, 0),
            tls_context=client_context(relay.cert),
            start_tls=True,
            timeout=10,
        )
        async with client:
            await client.ehlo()  # again, after STARTTLS
            await client.auth_login(USER, PASSWORD)
            no_header = MESSAGE.replace("X-Warmup-Campaign: spring-sale\r\n", "")
            _, reply = await client.sendmail(
                "shop@shop.example", ["ann@gmail.com"], no_header
            )
            # The same address again, in another message: both are kept.
            await client.sendmail("shop@shop.example", ["ann@gmail.com"], no_header)
        assert reply.startswith("2.0.0 OK queued as ")
        rows = await _rows(relay)
        assert [(r["campaign"], r["state"]) for r in rows] == [(USER, "queued")] * 2


async def test_allowed_network_needs_no_auth_and_no_tls(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await aiosmtplib.send(
            MESSAGE.replace("X-Warmup-Campaign: spring-sale\r\n", ""),
            sender="shop@shop.example",
            recipients=["ann@gmail.com"],
            hostname="127.0.0.1",
            port=relay.port,
            start_tls=False,
            timeout=10,
        )
        rows = await _rows(relay)
        assert [(r["campaign"], r["state"]) for r in rows] == [("relay", "queued")]


async def test_outside_without_auth_is_refused_and_nothing_queued(
    tmp_path: Path,
) -> None:
    async with running_relay(tmp_path) as relay:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            await asyncio.to_thread(
                _smtplib_submit,
                relay.port,
                relay.cert,
                ["ann@gmail.com"],
                MESSAGE,
                login=False,
            )
        assert refused.value.smtp_code == 530
        assert await relay.counts() == {} and await relay.messages() == 0


async def test_mail_for_the_bounce_domain_goes_to_the_sink_from_anyone(
    tmp_path: Path,
) -> None:
    dsn = "From: MAILER-DAEMON@mx.gmail.com\r\nSubject: failure\r\n\r\nbounced\r\n"
    async with running_relay(tmp_path, sink=True) as relay:
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=relay.port,
            source_address=(OUTSIDE, 0),
            start_tls=False,
            timeout=10,
        )
        async with client:  # as an ISP's MTA would: plain text, null sender
            await client.sendmail("", [f"bounces+tok@{BOUNCE_DOMAIN}"], dsn)
        assert relay.sunk == [(dsn.encode(), f"bounces+tok@{BOUNCE_DOMAIN}")]
        assert await relay.counts() == {} and await relay.messages() == 0


async def test_mixed_recipients_split_between_sink_and_queue(tmp_path: Path) -> None:
    async with running_relay(tmp_path, sink=True) as relay:
        await aiosmtplib.send(
            MESSAGE,
            sender="shop@shop.example",
            recipients=["ann@gmail.com", f"x@{BOUNCE_DOMAIN}"],
            hostname="127.0.0.1",
            port=relay.port,
            start_tls=False,
            timeout=10,
        )
        assert [r for _, r in relay.sunk] == [f"x@{BOUNCE_DOMAIN}"]
        assert await relay.counts() == {"queued": 1}


async def test_pipelined_transactions(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        client = await RawClient.connect(relay.port, source="127.0.0.1")
        await client.reply()
        await client.send("EHLO tool.example")
        client.writer.write(
            b"MAIL FROM:<a@shop.example>\r\nRCPT TO:<ann@gmail.com>\r\n"
            b"RCPT TO:<bob@gmail.com>\r\nDATA\r\n"
        )
        replies = [await client.reply() for _ in range(4)]
        assert [r[:3] for r in replies] == ["250", "250", "250", "354"]
        assert (await client.send(b"Subject: x\r\n\r\nhi\r\n.")).startswith("250 2.0.0")
        await client.close()
        assert await relay.counts() == {"queued": 2}


async def test_a_store_failure_answers_451_and_keeps_nothing(tmp_path: Path) -> None:
    class Broken:
        async def commit_message(self, message: RelayedMessage) -> FiledMessage:
            raise StoreError("accepting a message", "disk full")

    async with running_relay(tmp_path, submissions=Broken()) as relay:
        with pytest.raises(aiosmtplib.SMTPDataError) as failed:
            await aiosmtplib.send(
                MESSAGE,
                sender="a@shop.example",
                recipients=["ann@gmail.com"],
                hostname="127.0.0.1",
                port=relay.port,
                start_tls=False,
                timeout=10,
            )
        assert failed.value.code == 451
        assert await relay.messages() == 0


async def test_stop_waits_for_a_commit_in_progress(tmp_path: Path) -> None:
    gate = asyncio.Event()

    async with running_relay(tmp_path) as relay:
        real = relay.server.intake.store

        class Slow:
            async def commit_message(self, message: RelayedMessage) -> FiledMessage:
                await gate.wait()
                return await real.commit_message(message)

        relay.server.intake.store = Slow()
        sending = asyncio.create_task(
            aiosmtplib.send(
                MESSAGE,
                sender="a@shop.example",
                recipients=["ann@gmail.com"],
                hostname="127.0.0.1",
                port=relay.port,
                start_tls=False,
                timeout=10,
            )
        )
        for _ in range(1000):  # until the DATA is being filed
            if relay.server.committing:
                break
            await asyncio.sleep(0.01)
        stopping = asyncio.create_task(relay.server.stop(timedelta(seconds=10)))
        await asyncio.sleep(0)
        gate.set()
        await stopping
        _, reply = await sending
        assert reply.startswith("2.0.0 OK queued as")
        assert await relay.counts() == {"queued": 1}
