"""`warmup events`: filters by time and type, JSON lines or a readable line each."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from warmup.adapters.db.store import SQLStore
from warmup.app.ports import TemplateRecord
from warmup.cli import cli
from warmup.config.files import BUILTIN_SCHEDULES

NOON = datetime(2030, 1, 1, 12, tzinfo=UTC)


async def _fill(url: str) -> None:
    store = await SQLStore.open(url)
    try:
        record = TemplateRecord(
            name="t", sha256="e" * 64, content=b"Subject: x\r\n\r\n"
        )
        campaign = await store.ensure_campaign("winter", record, NOON)
        for hour in range(3):
            await store.record_refused(
                campaign.id, [f"u{hour}@x.example"], NOON + timedelta(hours=hour), "t"
            )
    finally:
        await store.close()


def test_events_since_a_time_as_json_and_as_lines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    asyncio.run(_fill(url))
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {url}\nschedules: {BUILTIN_SCHEDULES}\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"
    )
    runner = CliRunner()
    base = ["-c", str(config), "events"]
    since = (NOON + timedelta(minutes=30)).isoformat()
    found = runner.invoke(cli, [*base, "--since", since, "--json"])
    assert found.exit_code == 0, found.output
    rows = [json.loads(line) for line in found.output.splitlines()]
    assert [r["recipient"] for r in rows] == ["u1@x.example", "u2@x.example"]
    assert {r["type"] for r in rows} == {"suppressed"}
    lines = runner.invoke(cli, [*base, "--type", "suppressed"]).output.splitlines()
    assert len(lines) == 3 and "u0@x.example" in lines[0] and "[winter]" in lines[0]
    assert runner.invoke(cli, [*base, "--type", "delivered"]).output == ""
    bad = runner.invoke(cli, [*base, "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
