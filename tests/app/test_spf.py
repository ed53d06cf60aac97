"""SPF evaluation against a real DNS server on loopback (warmup.testing.dns)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from warmup.adapters.dns import DNSRecords, make_resolver
from warmup.app.spf import check_host
from warmup.core.auth.spf import SPFRecordError, parse_spf
from warmup.testing.dns import ZoneServer


def _txt(text: str) -> dict[str, list[str]]:
    return {"TXT": [f'"{text}"']}


ZONE = {
    "bounce.test": _txt("v=spf1 ip4:192.0.2.0/30 include:esp.test -all"),
    "esp.test": _txt("v=spf1 a:out.esp.test/31 mx ip6:2001:db8::/64 ~all"),
    "out.esp.test": {"A": ["198.51.100.10"]},
    "mail.esp.test": {"A": ["198.51.100.20"]},
    "esp.test.mx": {},
    "redirected.test": _txt("v=spf1 redirect=bounce.test"),
    "soft.test": _txt("v=spf1 ?ip4:203.0.113.1 ~all"),
    "two.test": {"TXT": ['"v=spf1 -all"', '"v=spf1 +all"']},
    "broken.test": _txt("v=spf1 ip4:300.1.1.1 -all"),
    "loop.test": _txt("v=spf1 include:loop.test -all"),
    "deep.test": _txt(
        "v=spf1 " + " ".join(f"a:n{i}.deep.test" for i in range(11)) + " -all"
    ),
    "noinclude.test": _txt("v=spf1 include:nothing.test -all"),
    "nothing.test": {"A": ["192.0.2.99"]},
    "split.test": {"TXT": ['"v=spf1 ip4:192.0.2.50" " -all"']},
    "ptr.test": _txt("v=spf1 ptr -all"),
    "77.2.0.192.in-addr.arpa": {"PTR": ["host.ptr.test."]},
    "78.2.0.192.in-addr.arpa": {"PTR": ["host.elsewhere.test."]},
    "host.ptr.test": {"A": ["192.0.2.77"]},
    "host.elsewhere.test": {"A": ["192.0.2.78"]},
    "exists.test": _txt("v=spf1 exists:ok.test -all"),
    "ok.test": {"A": ["127.0.0.2"]},
    "missing.test": _txt("v=spf1 exists:gone.test -all"),
    "macro.test": _txt("v=spf1 exists:%{i}.bl.test -all"),
}
ZONE["esp.test"]["MX"] = ["10 mail.esp.test."]
for i in range(11):
    ZONE[f"n{i}.deep.test"] = {"A": ["10.0.0.1"]}


@pytest.fixture
async def dns() -> AsyncIterator[DNSRecords]:
    async with ZoneServer(ZONE) as server:
        yield DNSRecords(
            make_resolver([("127.0.0.1", server.port)], timedelta(seconds=2))
        )


@pytest.mark.parametrize(
    ("ip", "domain", "result"),
    [
        ("192.0.2.3", "bounce.test", "pass"),  # ip4 with a prefix
        ("192.0.2.4", "bounce.test", "fail"),  # just outside it: -all
        ("198.51.100.11", "bounce.test", "pass"),  # include -> a:/31
        ("198.51.100.20", "bounce.test", "pass"),  # include -> mx
        ("2001:db8::25", "bounce.test", "pass"),  # include -> ip6
        ("198.51.100.30", "esp.test", "softfail"),
        ("192.0.2.1", "redirected.test", "pass"),
        ("192.0.2.9", "redirected.test", "fail"),
        ("203.0.113.1", "soft.test", "neutral"),
        ("192.0.2.1", "nowhere.test", "none"),
        ("192.0.2.1", "two.test", "permerror"),
        ("192.0.2.1", "broken.test", "permerror"),
        ("192.0.2.1", "loop.test", "permerror"),  # endless includes hit the limit
        ("192.0.2.1", "deep.test", "permerror"),  # 11 lookups
        ("192.0.2.1", "noinclude.test", "permerror"),
        ("192.0.2.50", "split.test", "pass"),  # TXT strings are joined
        ("192.0.2.77", "ptr.test", "pass"),  # validated PTR name under the domain
        ("192.0.2.78", "ptr.test", "fail"),  # its PTR name is elsewhere
        ("192.0.2.1", "exists.test", "pass"),
        ("192.0.2.1", "missing.test", "fail"),
        ("192.0.2.1", "macro.test", "permerror"),  # macros are not expanded
    ],
)
async def test_check_host(dns: DNSRecords, ip: str, domain: str, result: str) -> None:
    found = await check_host(ip, domain, dns)
    assert found.result == result, found.detail


async def test_lookup_limit_is_named(dns: DNSRecords) -> None:
    found = await check_host("192.0.2.1", "deep.test", dns)
    assert "more than 10 DNS lookups" in found.detail


@pytest.mark.parametrize(
    "record",
    ["v=spf1 foo:x -all", "v=spf1 ip4:2001:db8::/32", "v=spf1 redirect=a redirect=b"],
)
def test_bad_records(record: str) -> None:
    with pytest.raises(SPFRecordError):
        parse_spf(record)


def test_parse_terms() -> None:
    terms, redirect = parse_spf(
        "v=spf1 -a/24//64 ~mx:m.test exp=x.test redirect=r.test"
    )
    assert [
        (t.result, t.mechanism, t.value, t.v4_prefix, t.v6_prefix) for t in terms
    ] == [
        ("fail", "a", "", 24, 64),
        ("softfail", "mx", "m.test", 32, 128),
    ]
    assert redirect == "r.test"
