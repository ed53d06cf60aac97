"""The demo's bounce-mailbox poll stops at an empty new/; a report delivered
after a quiet poll is still read at the next one."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warmup.adapters.db.store import SQLStore
from warmup.app.ingest import BounceIntake
from warmup.cli.demo_cmd import _mailbox_poll
from warmup.cli.demo_setup import bounce_maildir
from warmup.core.settings import RetryPolicy
from warmup.sim.reports import build_dsn
from warmup.testing.clock import FakeClock

START = datetime(2030, 1, 1, tzinfo=UTC)


def _seen(root: Path) -> list[str]:
    return sorted(p.name for p in (bounce_maildir(root) / "cur").iterdir())


def _unread(root: Path) -> list[str]:
    return sorted(p.name for p in (bounce_maildir(root) / "new").iterdir())


async def test_a_report_after_a_quiet_poll_is_read_at_the_next(tmp_path: Path) -> None:
    store = await SQLStore.open(f"sqlite:///{tmp_path / 'w.db'}")
    clock = FakeClock(START)
    intake = BounceIntake(
        store,
        clock=clock,
        return_path="bounces@bounce.test",
        secret=b"k",
        retry=RetryPolicy(),
    )
    try:
        poll = _mailbox_poll(intake, tmp_path)
        await poll(START)  # nothing there: a quiet poll
        box = mailbox.Maildir(bounce_maildir(tmp_path), create=True)
        box.add(
            build_dsn(
                to="bounces@bounce.test",
                recipient="ann@gmail.test",
                diagnostic="550 5.1.1 user unknown",
                reporting_mta="mx.gmail.test",
                original_headers="Subject: hi\r\n",
                now=START,
            )
        )
        await poll(START + timedelta(minutes=5))  # not due yet
        assert len(_unread(tmp_path)) == 1
        await poll(START + timedelta(minutes=15))
        assert _unread(tmp_path) == [] and len(_seen(tmp_path)) == 1
        assert _seen(tmp_path)[0].endswith(":2,S")
        await poll(START + timedelta(minutes=30))  # again, nothing new
        box.add(
            build_dsn(
                to="bounces@bounce.test",
                recipient="bob@gmail.test",
                diagnostic="550 5.1.1 user unknown",
                reporting_mta="mx.gmail.test",
                original_headers="Subject: hi\r\n",
                now=START,
            )
        )
        await poll(START + timedelta(minutes=45))
        assert _unread(tmp_path) == [] and len(_seen(tmp_path)) == 2
    finally:
        await store.close()
