"""`warmup relay cert` and `warmup relay adduser`, and the relay's start-up checks."""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert

from warmup.adapters.db.schema import events
from warmup.adapters.db.store import SQLStore
from warmup.adapters.relay_users import UserFile
from warmup.cli import cli
from warmup.cli.outbound import consumer_names
from warmup.cli.relay_cmds import forwarding, own_domains, relaying
from warmup.config import load_config
from warmup.config.files import BUILTIN_SCHEDULES
from warmup.core.errors import InputError
from warmup.testing.clock import FakeClock

NOW = datetime(2030, 1, 1, tzinfo=UTC)

CONFIG = """\
database: sqlite:///{tmp}/w.db
timezone: UTC
schedules: {schedules}
ips:
  - {{address: 127.0.0.2, helo: a.test}}
relay:
  enabled: true
  listen: 127.0.0.1:{port}
{extra}"""


def _config(tmp_path: Path, extra: str = "", port: int = 2587) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(tmp=tmp_path, schedules=BUILTIN_SCHEDULES, port=port, extra=extra)
    )
    return path


def _run(config: Path, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config), "relay", *args], input=input)
    return result.exit_code, result.output


def test_cert_writes_a_pair_that_loads(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    config = _config(tmp_path, f"  tls_cert: {cert}\n  tls_key: {key}\n")
    code, output = _run(config, "cert", "--hostname", "relay.example", "--days", "3")
    assert code == 0, output
    assert f"wrote {cert} and {key}" in output
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    code, output = _run(config, "cert")
    assert code == 2 and "exists (--force replaces it)" in output
    assert _run(config, "cert", "--force")[0] == 0


def test_adduser_prompts_twice_or_reads_stdin(tmp_path: Path) -> None:
    users = tmp_path / "users"
    config = _config(tmp_path, f"  users_file: {users}\n")
    code, output = _run(config, "adduser", "news", input="long enough\nlong enough\n")
    assert code == 0 and "added news" in output
    code, output = _run(
        config, "adduser", "news", "--password-stdin", input="another one\n"
    )
    assert code == 0 and "updated news" in output
    assert UserFile(users).verify("news", b"another one")
    code, output = _run(config, "adduser", "x", "--password-stdin", input="short\n")
    assert code == 2 and "at least 8" in output
    code, output = _run(
        config, "adduser", "bad name", "--password-stdin", input="x" * 9
    )
    assert code == 2 and "user names" in output


def test_adduser_without_a_users_file_writes_relay_users_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = _run(
        _config(tmp_path), "adduser", "news", "--password-stdin", input="long enough\n"
    )
    assert code == 0, output
    assert UserFile(tmp_path / "relay-users").verify("news", b"long enough")
    assert "users_file: relay-users" in output  # says what to put in the config
    other = tmp_path / "other"
    code, _ = _run(
        _config(tmp_path),
        "adduser",
        "news",
        "--file",
        str(other),
        "--password-stdin",
        input="long enough\n",
    )
    assert code == 0 and other.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  tls_cert: /nonexistent.pem\n", "set both tls_cert and tls_key"),
        (
            "  tls_cert: /nonexistent.pem\n  tls_key: /nonexistent.key\n",
            "cannot load the TLS certificate",
        ),
        ("  users_file: {tmp}/nope\n", "cannot read"),
    ],
)
async def test_relay_start_refuses_unusable_files(
    tmp_path: Path, extra: str, message: str
) -> None:
    config = load_config(_config(tmp_path, extra.format(tmp=tmp_path)))
    store = await SQLStore.open(config.settings.database)
    try:
        with pytest.raises(InputError, match=message):
            async with relaying(config, store=store, clock=FakeClock()):
                pass
    finally:
        await store.close()


async def test_relay_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = load_config(_config(tmp_path, port=port))
    store = await SQLStore.open(config.settings.database)
    try:
        with pytest.raises(InputError, match="cannot listen on"):
            async with relaying(config, store=store, clock=FakeClock()):
                pass
        path = _config(tmp_path, port=port)
        path.write_text(path.read_text().replace("enabled: true", "enabled: false"))
        async with relaying(load_config(path), store=store, clock=FakeClock()) as relay:
            assert relay is None
    finally:
        await store.close()
        server.close()
        await server.wait_closed()


def test_users_list_add_priority_and_remove(tmp_path: Path) -> None:
    users = tmp_path / "users"
    config = _config(tmp_path, f"  users_file: {users}\n")
    code, output = _run(config, "users", "list")
    assert code == 1 and "no users file" in output
    code, output = _run(
        config,
        "users",
        "add",
        "news",
        "--priority",
        "high",
        "--password-stdin",
        input="long enough\n",
    )
    assert code == 0 and "added news" in output
    assert _run(config, "adduser", "alerts", "--password-stdin", input="x" * 9)[0] == 0
    code, output = _run(
        config, "adduser", "alerts", "--keep-password", "--priority", "7"
    )
    assert code == 0 and "updated alerts" in output
    code, output = _run(config, "users", "list", "--json")
    rows = [json.loads(line) for line in output.splitlines()]
    assert [(r["name"], r["priority"]) for r in rows] == [
        ("news", "high"),
        ("alerts", "7"),
    ]
    assert all(r["changed"] for r in rows)
    code, output = _run(config, "users", "list")
    assert code == 0 and "news" in output and "high" in output
    code, output = _run(config, "users", "remove", "news")
    assert code == 0 and f"removed news from {users}" in output
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    code, output = _run(config, "users", "remove", "news")
    assert code == 1 and "no such user" in output
    code, output = _run(
        config, "adduser", "ghost", "--keep-password", "--priority", "1"
    )
    assert code == 2 and "no such user" in output
    code, output = _run(
        config, "adduser", "alerts", "--keep-password", "--priority", "x"
    )
    assert code == 2 and "--priority" in output
    assert set(UserFile(users).users()) == {"alerts"}


async def test_forwarding_starts_at_the_newest_event_and_only_when_on(
    tmp_path: Path,
) -> None:
    path = _config(tmp_path, "  forward_bounces: true\n")
    config = load_config(path)
    assert config.settings.relay.forward_bounces
    assert "forward:dsn" in consumer_names(config)
    assert "bounce.example.com" in own_domains(config)
    assert "a.test" in own_domains(config)  # the IP's HELO name
    store = await SQLStore.open(config.settings.database)
    try:
        async with store.engine.begin() as conn:
            for kind in ("bounced", "expired"):  # before it was turned on
                await conn.execute(insert(events).values(type=kind, at=NOW))
        last = await store.last_event_id()
        assert last == 2
        async with forwarding(config, store=store, clock=FakeClock()) as forwarder:
            assert forwarder is not None
        assert (await store.cursor("forward:dsn")).last_id == last
        path.write_text(path.read_text().replace("forward_bounces: true", ""))
        off = load_config(path)
        async with forwarding(off, store=store, clock=FakeClock()) as forwarder:
            assert forwarder is None
        assert "forward:dsn" not in consumer_names(off)
    finally:
        await store.close()


def test_check_refuses_a_bad_forward_bounces(tmp_path: Path) -> None:
    path = _config(tmp_path, "  forward_bounces: perhaps\n")
    result = CliRunner().invoke(cli, ["-c", str(path), "check"])
    assert result.exit_code == 2
    assert "relay.forward_bounces" in result.output
