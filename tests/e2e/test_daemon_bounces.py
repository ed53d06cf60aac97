"""`warmup run` polls the bounce maildir (an APScheduler job) and applies what
arrives. Waits are bounded and on the effect appearing, never on time passing."""

from __future__ import annotations

import asyncio
import mailbox
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.helpers import enqueue_via_cli
from tests.e2e.test_daemon import Tracker, _start, _stop, _write_project
from warmup.sim.reports import build_dsn
from warmup.testing.smtp import ScriptedSMTPServer


def _suppressed(database: Path) -> dict[str, str]:
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT address, reason FROM suppressions").fetchall())


async def _until(check: object, within: float) -> None:
    """Poll ``check()`` (a cheap read) every 0.1 s, at most ``within`` seconds."""
    assert callable(check)
    for _ in range(int(within * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached within {within} s")


async def test_run_ingests_the_bounce_maildir(tmp_path: Path) -> None:
    tracker = Tracker()
    database = tmp_path / "warmup.db"
    box_path = tmp_path / "bouncebox"
    addresses = ["alice@gmail.com", "bob@gmail.com", "carol@gmail.com"]
    async with ScriptedSMTPServer(reply_for=tracker.reply) as server:
        config = _write_project(
            tmp_path, f"sqlite:///{database}", server.port, "n1", ["127.0.0.2"]
        )
        config.write_text(
            config.read_text().replace(
                "bounces: {return_path: bounces@bounce.test}\n",
                "bounces:\n  return_path: bounces@bounce.test\n"
                f"  maildir: {box_path}\n  poll_every: 1s\n"
                # The DSN below carries no token: matching it by its recipient
                # must be turned on (off by default since issue 12).
                "  recipient_lookback: 7d\n",
            )
        )
        await enqueue_via_cli(tmp_path, config, addresses)
        process = await _start(config, tmp_path / "run.log")
        try:
            await tracker.reach(3, within=30)
            box = mailbox.Maildir(box_path, create=True)
            dsn = build_dsn(
                to="postmaster@bounce.test",
                recipient="bob@gmail.com",
                diagnostic="550 5.1.1 The email account that you tried to reach "
                "does not exist.",
                reporting_mta="mx.google.test",
                original_headers="Subject: hello\n",
                now=datetime(2030, 1, 1, tzinfo=UTC),
            )
            key = box.add(dsn)
            box.add(b"Subject: not a bounce\n\nhello\n")
            await _until(lambda: "bob@gmail.com" in _suppressed(database), 20)
            # Handled mails are marked seen, so the next poll skips them.
            await _until(
                lambda: all(
                    "S" in mailbox.Maildir(box_path).get_message(k).get_flags()
                    for k in mailbox.Maildir(box_path).iterkeys()
                ),
                20,
            )
            assert "S" in mailbox.Maildir(box_path).get_message(key).get_flags()
        finally:
            code = await _stop(process)
    log = (tmp_path / "run.log").read_text()
    assert code == 0, log
    assert _suppressed(database) == {"bob@gmail.com": "userunknown"}
    assert "polling the bounce mailbox" in log
    assert "unsigned report, matched by its recipient: suppressed b***@gmail.com" in log
