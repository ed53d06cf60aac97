"""The doctor's MX check of the bounce domain over real DNS (ZoneServer)."""

from __future__ import annotations

from datetime import timedelta

from warmup.adapters.dns import DNSRecords, make_resolver
from warmup.app.doctor import DoctorSetup, diagnose
from warmup.testing.dns import ZoneServer

ZONE = {
    # RFC 7505 null MX: this domain accepts no mail, so no bounce comes back.
    "nullmx.test": {"MX": ["0 ."]},
    "bounce.test": {"MX": ["10 mx.bounce.test."]},
    "mx.bounce.test": {"A": ["127.0.0.1"]},
}


async def _mx_check(domain: str) -> tuple[str, str, list[tuple[str, str]]]:
    async with ZoneServer(ZONE) as server:
        records = DNSRecords(
            make_resolver([("127.0.0.1", server.port)], timedelta(seconds=2))
        )
        setup = DoctorSetup(ips=(), bounce_domain=domain, keys=(), ours=("127.0.0.1",))
        checks = await diagnose(setup, records)
    (mx,) = [c for c in checks if c.check == "mx"]
    return mx.status, mx.detail, server.queries


async def test_a_null_mx_on_the_bounce_domain_is_no_mx() -> None:
    status, detail, queries = await _mx_check("nullmx.test")
    assert (status, detail) == ("fail", "no MX for the bounce domain nullmx.test")
    assert queries == [("nullmx.test", "MX")]  # no host "0" looked up


async def test_an_mx_reaching_the_relay_is_ok() -> None:
    status, detail, _ = await _mx_check("bounce.test")
    assert (status, detail) == ("ok", "MX mx.bounce.test reaches this relay")
