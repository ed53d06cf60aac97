"""dns.nameservers reach the sender too: MX host names are resolved by the
configured DNS server (on loopback here), not by the system."""

from __future__ import annotations

from datetime import timedelta

from warmup.adapters.dns import DNSResolver
from warmup.adapters.smtp import SMTPSender
from warmup.core.replies.classify import ConnectionFailure
from warmup.core.settings import SourceIP, Timeouts, TLSSettings
from warmup.testing.clock import FakeClock
from warmup.testing.dns import ZoneServer
from warmup.testing.smtp import ScriptedSMTPServer

SOURCE = SourceIP(address="127.0.0.2", helo="mta2.example.test")
TIMEOUTS = Timeouts(
    connect=timedelta(seconds=5),
    command=timedelta(seconds=5),
    data=timedelta(seconds=5),
)


async def test_mx_host_addresses_come_from_the_configured_nameservers() -> None:
    zone = {"mx1.only-in-our-zone.test": {"A": ["127.0.0.1"]}}
    async with ZoneServer(zone) as dns_server, ScriptedSMTPServer() as smtp:
        resolver = DNSResolver(
            timeout=timedelta(seconds=2),
            now=FakeClock().now,
            nameservers=[("127.0.0.1", dns_server.port)],
        )
        sender = SMTPSender(
            timeouts=TIMEOUTS,
            tls=TLSSettings(starttls="opportunistic"),
            address_of=resolver.address,
        )
        try:
            sent = await sender.send(
                source=SOURCE,
                host="mx1.only-in-our-zone.test",
                port=smtp.port,
                sender="b@bounce.test",
                recipient="ann@example.net",
                message=b"Subject: x\r\n\r\nhi\r\n",
            )
            missing = await sender.send(
                source=SOURCE,
                host="nowhere.only-in-our-zone.test",
                port=smtp.port,
                sender="b@bounce.test",
                recipient="bob@example.net",
                message=b"Subject: x\r\n\r\nhi\r\n",
            )
        finally:
            await sender.close()
    assert sent.accepted, sent
    assert [r.rcpt_tos for r in smtp.received] == [("ann@example.net",)]
    assert ("mx1.only-in-our-zone.test", "A") in dns_server.queries
    assert missing.failure is ConnectionFailure.dns
    assert "nowhere.only-in-our-zone.test" in missing.detail
