"""`warmup run` as a process: it serves unsubscribe.listen, and its bounce maildir
takes unsubscribe mails and DMARC reports. Waits are bounded, on effects."""

from __future__ import annotations

import mailbox
import re
import sqlite3
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

from tests.dmarc_samples import gzipped, record, report_mail, report_xml
from tests.e2e.helpers import enqueue_via_cli
from tests.e2e.test_daemon import Tracker, _start, _stop, _write_project
from tests.e2e.test_daemon_bounces import _until
from tests.e2e.test_unsubscribe import ONE_CLICK, http, request
from warmup.app.clock import SystemClock
from warmup.testing.smtp import ScriptedSMTPServer


def _rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as db:
        return list(db.execute(sql).fetchall())


SERVING = re.compile(r"one-click unsubscribe on http://127\.0\.0\.1:(\d+)/u/")
LINKS = re.compile(r"<https://u\.shop\.test(\S+)>, <mailto:(\S+)>")
SECTION = "unsubscribe: {base_url: 'https://u.shop.test', listen: '127.0.0.1:0'}\n"


def _port(log: Path) -> int | None:
    found = SERVING.search(log.read_text())
    return int(found.group(1)) if found else None


async def test_run_serves_one_click_and_reads_mail_for_it(tmp_path: Path) -> None:
    tracker = Tracker()
    database = tmp_path / "warmup.db"
    box_path = tmp_path / "bouncebox"
    log = tmp_path / "run.log"
    addresses = ["alice@gmail.com", "bob@gmail.com", "carol@gmail.com"]
    async with ScriptedSMTPServer(reply_for=tracker.reply) as server:
        config = _write_project(
            tmp_path, f"sqlite:///{database}", server.port, "n1", ["127.0.0.2"]
        )
        config.write_text(
            config.read_text().replace(
                "bounces: {return_path: bounces@bounce.test}\n",
                "bounces:\n  return_path: bounces@bounce.test\n"
                f"  maildir: {box_path}\n  poll_every: 1s\n" + SECTION,
            )
        )
        await enqueue_via_cli(tmp_path, config, addresses)
        process = await _start(config, log)
        try:
            await tracker.reach(3, within=30)
            links = {}
            for received in server.received:
                header = str(message_from_bytes(received.content)["List-Unsubscribe"])
                match = LINKS.fullmatch(header)
                assert match, header
                links[received.rcpt_tos[0]] = match.groups()
            await _until(lambda: _port(log) is not None, 20)
            port = _port(log)
            assert port is not None
            path = links["alice@gmail.com"][0]
            status, _ = await http(
                ("127.0.0.1", port), request("POST", path, ONE_CLICK)
            )
            assert status == 200

            box = mailbox.Maildir(box_path, create=True)
            box.add(f"To: {links['bob@gmail.com'][1]}\nSubject: u\n\nstop\n".encode())
            # Yesterday on the daemon's (real) clock: mailed reports dated in
            # the future are refused.
            yesterday = SystemClock().now().date() - timedelta(days=1)
            xml = report_xml(
                yesterday, [record("127.0.0.2", 120, dkim="fail", spf="fail")]
            )
            box.add(report_mail(gzipped(xml), "gmail.test!gmail.com!1!2.xml.gz"))
            await _until(
                lambda: (
                    len(_rows(database, "SELECT * FROM suppressions")) == 2
                    and _rows(database, "SELECT * FROM dmarc_rows")
                ),
                20,
            )
        finally:
            code = await _stop(process)
    text = log.read_text()
    assert code == 0, text
    assert sorted(
        _rows(database, "SELECT address, reason, source FROM suppressions")
    ) == [
        ("alice@gmail.com", "unsubscribe", "one-click"),
        ("bob@gmail.com", "unsubscribe", "mailto"),
    ]
    assert _rows(
        database, "SELECT source_ip, messages, dmarc_pass FROM dmarc_rows"
    ) == [("127.0.0.2", 120, 0)]
    assert "alice@gmail.com" not in text  # recipients are masked in the log
