"""`warmup run` as a real process ships outcome events to a webhook and to the
accounting log: the receiver is down (500) at first and the daemon is SIGKILLed
in the middle; afterwards every event has arrived, duplicates only by id."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from tests.app.test_shipping import Receiver
from tests.e2e.helpers import enqueue_via_cli
from tests.e2e.test_daemon import ENV, Tracker, _start, _stop, _write_project
from warmup.testing.smtp import ScriptedSMTPServer


def _outbox(database: Path) -> dict[int, str]:
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT id, type FROM events").fetchall())


async def _until(check: object, within: float) -> None:
    assert callable(check)
    for _ in range(int(within * 10)):  # bounded
        if check():
            return
        await asyncio.sleep(0.1)  # waiting on another process, not on time
    raise AssertionError("condition not met in time")


async def test_the_daemon_ships_every_event_through_an_outage_and_a_kill(
    tmp_path: Path,
) -> None:
    tracker = Tracker()
    receiver = Receiver(status=500)
    hooks = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = hooks.sockets[0].getsockname()[1]
    database = tmp_path / "warmup.db"
    log = tmp_path / "events.jsonl"
    addresses = [f"u{i}@gmail.com" for i in range(280)]
    addresses += [f"dead{i}@gmail.com" for i in range(20)]
    async with hooks, ScriptedSMTPServer(reply_for=tracker.reply) as server:
        config = _write_project(
            tmp_path, f"sqlite:///{database}", server.port, "node-a", ["127.0.0.2"]
        )
        config.write_text(
            config.read_text()
            + f"events: {{log: {log}}}\n"
            + "webhooks:\n"
            + f"  - {{url: 'http://127.0.0.1:{receiver.port}/h', "
            + "secret_env: WARMUP_VERP_SECRET, batch: 50}\n"
        )
        await enqueue_via_cli(tmp_path, config, addresses)
        run_log = tmp_path / "run.log"
        process = await _start(config, run_log)
        try:
            await tracker.reach(120, within=60)
            process.kill()  # SIGKILL in the middle
            await process.wait()
            receiver.status = 200  # the endpoint comes back
            process = await _start(config, run_log)
            await tracker.reach(280, within=120)
            await _until(lambda: len(_outbox(database)) >= 300, within=60)
            expected = set(_outbox(database))
            await _until(lambda: expected <= set(receiver.ids()), within=60)
            await _until(
                lambda: log.exists() and len(log.read_text().splitlines()) >= 300,
                within=30,
            )
        finally:
            code = await _stop(process)
    assert code == 0, run_log.read_text()[-2000:]
    outbox = _outbox(database)
    assert sorted(outbox.values()).count("bounced") == 20
    assert set(receiver.ids()) == set(outbox)  # none lost, none invented
    seen: dict[int, dict[str, object]] = {}
    for body in receiver.taken:
        for event in json.loads(body)["events"]:
            assert seen.setdefault(event["id"], event) == event  # same id, same event
    logged = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert set(logged) == set(outbox)
    assert "WARMUP_VERP_SECRET" in ENV  # the signing key the config names
