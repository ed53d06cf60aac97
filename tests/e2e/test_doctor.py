"""`warmup doctor` against a DNS server on loopback (dns.nameservers): a broken
zone names each problem with its fix and exits 1; the fixed zone is all ok."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from warmup.adapters.dkim_keys import generate_key, txt_record, write_key
from warmup.cli import cli
from warmup.testing.dns import Zone, ZoneServer

IP1, IP2 = "192.0.2.10", "192.0.2.11"


def _txt(text: str) -> dict[str, list[str]]:
    """One TXT record, split into strings of at most 255 bytes."""
    parts = " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))
    return {"TXT": [parts]}


def _zone(dkim_record: str, *, broken: bool) -> Zone:
    zone: dict[str, dict[str, list[str]]] = {
        "10.2.0.192.in-addr.arpa": {"PTR": ["mta1.shop.example."]},
        "11.2.0.192.in-addr.arpa": {"PTR": ["mta2.shop.example."]},
        "mta1.shop.example": {"A": [IP1]},
        "mta2.shop.example": {"A": [IP2]},
        "bounce.shop.example": {
            **_txt("v=spf1 a:mx.shop.example include:_spf.shop.example -all"),
            "MX": ["10 mx.shop.example."],
        },
        "_spf.shop.example": _txt(f"v=spf1 ip4:{IP2}/32 -all"),
        "mx.shop.example": {"A": [IP1]},
        "s1._domainkey.shop.example": _txt(dkim_record),
        "_dmarc.shop.example": _txt("v=DMARC1; p=none; rua=mailto:dmarc@shop.example"),
    }
    if broken:
        del zone["11.2.0.192.in-addr.arpa"]  # IP2 has no PTR
        # IP1's PTR is another name: HELO mta1 no longer resolves to it either.
        zone["10.2.0.192.in-addr.arpa"] = {"PTR": ["mta-one.shop.example."]}
        zone["mta-one.shop.example"] = {"A": [IP1]}
        zone["mta1.shop.example"] = {"A": ["192.0.2.99"]}
        zone["_spf.shop.example"] = _txt("v=spf1 ip4:192.0.2.12 -all")  # misses IP2
        other = txt_record(generate_key("rsa", 1024))
        zone["s1._domainkey.shop.example"] = _txt(other)  # another key
    return zone


def _config(tmp_path: Path, port: int, key: Path) -> Path:
    (tmp_path / "schedules").mkdir(exist_ok=True)
    (tmp_path / "schedules" / "default.yaml").write_text(
        "isp: default\nramp:\n  - {days: 1-30, per_hour: 60}\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'w.db'}\nschedules: schedules/\n"
        f"ips:\n  - {{address: {IP1}, helo: mta1.shop.example}}\n"
        f"  - {{address: {IP2}, helo: mta2.shop.example}}\n"
        "bounces: {return_path: bounces@bounce.shop.example}\n"
        f"delivery: {{timeouts: {{dns: 2s}}}}\n"
        f"dkim:\n  keys:\n    - {{domain: shop.example, selector: s1, key: '{key}'}}\n"
        f"dns:\n  nameservers: ['127.0.0.1:{port}']\n"
    )
    return config


def _doctor(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config), "doctor", *args])
    return result.exit_code, result.output


async def test_broken_zone_names_each_problem_and_fixed_zone_is_all_ok(
    tmp_path: Path,
) -> None:
    key = generate_key("rsa", 2048)
    write_key(key, tmp_path / "s1.pem")
    record = txt_record(key)
    async with ZoneServer(_zone(record, broken=True)) as server:
        config = _config(tmp_path, server.port, tmp_path / "s1.pem")
        code, output = await asyncio.to_thread(_doctor, config, "--json")
        table_code, table = await asyncio.to_thread(_doctor, config)
    assert code == 1 and table_code == 1, output
    checks = [json.loads(line) for line in output.splitlines()]
    assert all(
        set(c) == {"ip", "domain", "check", "status", "detail", "fix"} for c in checks
    )
    failed = {(c["ip"], c["check"]): c for c in checks if c["status"] == "fail"}
    assert sorted(failed) == [
        ("", "dkim"),
        (IP1, "helo"),
        (IP2, "ptr"),
        (IP2, "ptr_forward"),
        (IP2, "spf"),
    ]
    assert "set ips[].helo to mta-one.shop.example" in failed[(IP1, "helo")]["fix"]
    assert (
        f"add ip4:{IP2} to the SPF record (TXT) of bounce.shop.example"
        == (failed[(IP2, "spf")]["fix"])
    )
    assert "publishes another key" in failed[("", "dkim")]["detail"]
    assert record in failed[("", "dkim")]["fix"]  # the record to publish, whole
    assert "PTR" in failed[(IP2, "ptr")]["fix"]
    assert "fail" in table and "mta-one.shop.example" in table
    assert server.queries  # the lookups went to the loopback server

    async with ZoneServer(_zone(record, broken=False)) as server:
        config = _config(tmp_path, server.port, tmp_path / "s1.pem")
        code, output = await asyncio.to_thread(_doctor, config, "--json")
    checks = [json.loads(line) for line in output.splitlines()]
    assert code == 0, output
    assert {c["status"] for c in checks} == {"ok"}
    assert sorted({c["check"] for c in checks}) == [
        "dkim", "dmarc", "helo", "mx", "ptr", "ptr_forward", "spf",
    ]  # fmt: skip
    assert len([c for c in checks if c["check"] == "spf"]) == 2
