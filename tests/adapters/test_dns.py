"""The MX resolver against a real DNS server on loopback (dnspython-built answers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from warmup.adapters.dns import DNSResolver
from warmup.testing.clock import FakeClock

ZONE = {
    "example.org.": ["20 mx2.example.org.", "10 MX1.Example.org."],
    "workspace.test.": ["1 aspmx.l.google.com."],
    "nullmx.test.": ["0 ."],
}


class _DNSServer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queries: list[str] = []
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # a DatagramTransport (not a declared subclass)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        name = str(query.question[0].name).lower()
        self.queries.append(name)
        if name == "slow.test.":
            return  # never answer: the client must time out
        response = dns.message.make_response(query)
        if name in ZONE:
            response.answer.append(
                dns.rrset.from_text(name, 300, "IN", "MX", *ZONE[name])
            )
        elif name == "nomx.test.":
            pass  # NOERROR, no answer
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def dns_server() -> AsyncIterator[tuple[_DNSServer, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _DNSServer, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    yield protocol, port
    transport.close()


def _resolver(port: int, clock: FakeClock) -> DNSResolver:
    return DNSResolver(
        timeout=timedelta(seconds=0.3),
        now=clock.now,
        nameservers=["127.0.0.1"],
        port=port,
    )


async def test_mx_hosts_by_preference_and_cached(dns_server) -> None:
    server, port = dns_server
    clock = FakeClock()
    resolver = _resolver(port, clock)
    answer = await resolver.mx("example.org")
    assert answer.hosts == ("mx1.example.org", "mx2.example.org")
    assert answer.error is None
    await resolver.mx("example.org")
    assert server.queries.count("example.org.") == 1  # cached within the TTL
    clock.advance(timedelta(seconds=301))
    await resolver.mx("example.org")
    assert server.queries.count("example.org.") == 2


async def test_permanent_and_temporary_failures(dns_server) -> None:
    _, port = dns_server
    resolver = _resolver(port, FakeClock())
    assert (await resolver.mx("gone.test")).error == "nxdomain"
    assert (await resolver.mx("nullmx.test")).error == "nullmx"
    assert (await resolver.mx("nomx.test")).hosts == ("nomx.test",)
    assert (await resolver.mx("slow.test")).error == "temporary"
