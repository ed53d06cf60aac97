"""The `dkim:` and `dns:` sections of config.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from warmup.cli import cli
from warmup.config.reader import Context
from warmup.config.settings import Settings, parse_settings
from warmup.core.auth.dkim import DEFAULT_HEADERS
from warmup.core.settings import DKIMKeySettings, DKIMSettings, DNSSettings

BASE = "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"


def _parse(text: str) -> tuple[Settings, list[str]]:
    ctx = Context(file="config.yaml")
    settings = parse_settings(BASE + text, ctx)
    return settings, [str(issue) for issue in ctx.issues]


def test_defaults_sign_nothing_and_use_the_system_resolver() -> None:
    settings, issues = _parse("")
    assert issues == []
    assert settings.dkim == DKIMSettings(keys=(), unsigned="hold")
    assert settings.dns == DNSSettings(nameservers=())


def test_keys_unsigned_and_nameservers() -> None:
    settings, issues = _parse(
        "dkim:\n  unsigned: send\n  keys:\n"
        "    - {domain: Shop.Example., selector: s2026, key: k.pem}\n"
        "    - {domain: shop.example, selector: ed, key: e.pem,\n"
        "       headers: [From, Subject]}\n"
        "dns:\n  nameservers: [127.0.0.1, '127.0.0.1:5353', '[::1]:53', '::1']\n"
    )
    assert issues == []
    assert settings.dkim.unsigned == "send"
    assert settings.dkim.keys == (
        DKIMKeySettings(
            domain="shop.example",
            selector="s2026",
            key="k.pem",
            headers=DEFAULT_HEADERS,
        ),
        DKIMKeySettings(
            domain="shop.example",
            selector="ed",
            key="e.pem",
            headers=("from", "subject"),
        ),
    )
    assert settings.dns.nameservers == (
        ("127.0.0.1", 53),
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("::1", 53),
    )


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        (
            "dkim: {unsigned: drop}\n",
            "config.yaml:3: dkim.unsigned: must be one of hold, send, got 'drop'",
        ),
        (
            "dkim: {keys: [{domain: shop, selector: s, key: k}]}\n",
            "config.yaml:3: dkim.keys[0].domain: not a domain name like 'example.com', "
            "got 'shop'",
        ),
        (
            "dkim: {keys: [{domain: a.test, selector: 'bad sel', key: k}]}\n",
            "config.yaml:3: dkim.keys[0].selector: not a DKIM selector (DNS labels), "
            "got 'bad sel'",
        ),
        (
            "dkim: {keys: [{domain: a.test, selector: s}]}\n",
            "config.yaml: dkim.keys[0].key: is required",
        ),
        (
            "dkim: {keys: [{domain: a.test, selector: s, key: k,"
            " headers: [subject]}]}\n",
            "config.yaml:3: dkim.keys[0].headers: must include From "
            "(DKIM requires it), got ('subject',)",
        ),
        (
            "dkim: {keys: [{domain: a.test, selector: s, key: k, algo: rsa}]}\n",
            "config.yaml:3: dkim.keys[0].algo: unknown key",
        ),
        (
            "dkim: {keys: [{domain: a.test, selector: s, key: k},"
            " {domain: a.test, selector: s, key: j}]}\n",
            "config.yaml:3: dkim.keys[1].selector: listed twice for a.test, got 's'",
        ),
        (
            "dns: {nameservers: [ns.example.com]}\n",
            "config.yaml:3: dns.nameservers[0]: expected an IP address or IP:port, "
            "got 'ns.example.com'",
        ),
        (
            "dns: {nameservers: ['127.0.0.1:99999']}\n",
            "config.yaml:3: dns.nameservers[0]: bad port in '127.0.0.1:99999'",
        ),
    ],
)
def test_bad_values_are_named(text: str, issue: str) -> None:
    _, issues = _parse(text)
    assert len(issues) == 1, issues
    assert issues[0].startswith(issue), issues


def test_check_names_a_key_it_cannot_load(tmp_path: Path) -> None:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "default.yaml").write_text(
        "isp: default\nramp:\n  - {days: 1-30, per_hour: 60}\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        BASE + "schedules: schedules/\n"
        "dkim: {keys: [{domain: a.test, selector: s,"
        f" key: '{tmp_path}/none.pem'}}]}}\n"
    )
    result = CliRunner().invoke(cli, ["-c", str(config), "check"])
    assert result.exit_code == 2
    assert (
        f"dkim.keys[0].key: {tmp_path}/none.pem: cannot read the key" in result.output
    )


@pytest.mark.parametrize(
    ("sender", "warned"),
    [("news@mail.a.test", False), ("news@other.test", True)],
)
def test_enqueue_warns_when_no_key_covers_the_template(
    tmp_path: Path, sender: str, warned: bool
) -> None:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "default.yaml").write_text(
        "isp: default\nramp:\n  - {days: 1-30, per_hour: 60}\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        BASE + f"schedules: schedules/\ndatabase: sqlite:///{tmp_path / 'w.db'}\n"
        "dkim: {keys: [{domain: a.test, selector: s, key: k.pem}]}\n"
    )
    (tmp_path / "t.eml").write_text(f"From: {sender}\nSubject: x\n\nhello\n")
    (tmp_path / "list.csv").write_text("email\nann@example.net\n")
    result = CliRunner().invoke(
        cli,
        ["-c", str(config), "enqueue", str(tmp_path / "list.csv"),
         "--template", str(tmp_path / "t.eml"), "--campaign", "c"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    warning = "no dkim.keys entry covers From domain other.test: it will be held"
    assert (warning in result.output) is warned
