"""The MX resolver against a real DNS server on loopback (dnspython-built answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from warmup.adapters.dns import DNSResolver
from warmup.testing.clock import FakeClock
from warmup.testing.dns import ZoneServer

ZONE = {
    "example.org": {"MX": ["20 mx2.example.org.", "10 MX1.Example.org."]},
    "workspace.test": {"MX": ["1 aspmx.l.google.com."]},
    "nullmx.test": {"MX": ["0 ."]},
    "nomx.test": {},  # NOERROR, no answer
}


@pytest.fixture
async def dns_server() -> AsyncIterator[tuple[ZoneServer, int]]:
    async with ZoneServer(ZONE, silent=["slow.test"]) as server:
        yield server, server.port


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
    assert server.queries.count(("example.org", "MX")) == 1  # cached within the TTL
    clock.advance(timedelta(seconds=301))
    await resolver.mx("example.org")
    assert server.queries.count(("example.org", "MX")) == 2


async def test_permanent_and_temporary_failures(dns_server) -> None:
    _, port = dns_server
    resolver = _resolver(port, FakeClock())
    assert (await resolver.mx("gone.test")).error == "nxdomain"
    assert (await resolver.mx("nullmx.test")).error == "nullmx"
    assert (await resolver.mx("nomx.test")).hosts == ("nomx.test",)
    assert (await resolver.mx("slow.test")).error == "temporary"
