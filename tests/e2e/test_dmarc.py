"""DMARC aggregate reports end to end: `warmup dmarc ingest` of a gzipped report,
`warmup status`, and the engine holding the failing IP's ramp."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tests.dmarc_samples import BILLION_LAUGHS, gzipped, record, report_xml
from tests.e2e.helpers import EngineRun, cli_run, enqueue_via_cli
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import MXAnswer
from warmup.cli.engine import build_dispatcher
from warmup.config import load_config
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver, FakeSender

SCHEDULE = "isp: default\nramp:\n  - {days: 1-30, per_hour: 2}\n"
D1, D2 = date(2030, 3, 1), date(2030, 3, 2)
FAILING = report_xml(
    D1,
    [
        record("127.0.0.2", 150, dkim="fail", spf="fail"),
        record("127.0.0.2", 50),
        record("127.0.0.3", 200),
    ],
)
CLEAN = report_xml(D2, [record("127.0.0.2", 200)], report_id="r2")


def _project(tmp_path: Path, database_url: str) -> Path:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "default.yaml").write_text(SCHEDULE)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {database_url}\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.test}\n"
        "  - {address: 127.0.0.3, helo: b.test}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
        "dmarc: {max_report_bytes: 100000}\n"
    )
    return config


async def test_a_failing_report_shows_in_status_and_holds_the_ramp(
    tmp_path: Path, database_url: str
) -> None:
    config_path = _project(tmp_path, database_url)
    await enqueue_via_cli(
        tmp_path, config_path, [f"u{i}@shop.test" for i in range(600)]
    )
    config = load_config(config_path)
    clock = FakeClock(datetime(2030, 3, 1, 0, 30, tzinfo=UTC))
    store = await SQLStore.open(config.settings.database)
    engine = build_dispatcher(
        config,
        store=store,
        sender=FakeSender(now=clock.now),
        resolver=FakeResolver({"shop.test": MXAnswer(hosts=("mx.shop.test",))}),
        clock=clock,
        secret=b"s",
        maintenance_every=timedelta(minutes=30),
        catch_up=4,
    )
    run = EngineRun(engine, clock, store)
    try:
        await run.drive_until(datetime(2030, 3, 1, 23, tzinfo=UTC))
        report = tmp_path / "gmail.test!shop.test!1!2.xml.gz"
        report.write_bytes(gzipped(FAILING))
        result = await cli_run(config_path, "dmarc", "ingest", str(report))
        assert result.exit_code == 0, result.output
        [line] = [json.loads(x) for x in result.stdout.splitlines()]
        assert (line["outcome"], line["messages"], line["dmarc_pass"]) == (
            "stored",
            400,
            250,
        )
        # Ingested twice: acts once.
        again = await cli_run(config_path, "dmarc", "ingest", str(report))
        assert json.loads(again.stdout)["outcome"] == "duplicate"

        status = await cli_run(config_path, "status", "--json")
        objects = [json.loads(x) for x in status.stdout.splitlines()]
        [auth] = [o for o in objects if o["kind"] == "authentication"]
        by_ip = {item["ip"]: item for item in auth["ips"]}
        assert by_ip["127.0.0.2"]["dmarc_pass_pct"] == 25.0
        assert by_ip["127.0.0.2"]["dkim_aligned_pct"] == 25.0
        assert by_ip["127.0.0.2"]["auth_failing"] is True
        assert by_ip["127.0.0.3"]["dmarc_pass_pct"] == 100.0
        assert by_ip["127.0.0.3"]["auth_failing"] is False
        table = await cli_run(config_path, "status")
        held = [x.split()[0] for x in table.stdout.splitlines() if x.endswith(" held")]
        assert held == ["127.0.0.2"]  # under "ramp": auth_failing holds its ramp

        engine.poke()
        await run.drive_until(datetime(2030, 3, 3, 1, tzinfo=UTC))
        assert await run.ramp_days() == {"127.0.0.2": 1, "127.0.0.3": 3}
        causes = await run.causes("127.0.0.2")
        assert causes.count("auth_failing") == 3  # learnt, then two day closes
        assert "advance" not in causes
        assert await run.causes("127.0.0.3") == ["advance", "advance"]

        # A clean day releases the hold: the next day close advances again.
        clean = tmp_path / "clean.xml"
        clean.write_bytes(CLEAN)
        assert (
            await cli_run(config_path, "dmarc", "ingest", str(clean))
        ).exit_code == 0
        engine.poke()
        await run.drive_until(datetime(2030, 3, 4, 1, tzinfo=UTC))
        assert await run.ramp_days() == {"127.0.0.2": 2, "127.0.0.3": 4}
        await engine.finish()
        page = tmp_path / "report.html"
        made = await cli_run(config_path, "report", "--html", str(page))
        assert made.exit_code == 0, made.output
        assert 'data-chart="chart-auth"' in page.read_text()
    finally:
        await store.close()


async def test_an_xml_bomb_is_refused_and_changes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    config_path = _project(tmp_path, database_url)
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(BILLION_LAUGHS)
    zip_bomb = tmp_path / "big.xml.gz"
    zip_bomb.write_bytes(gzipped(b"<feedback>" + b" " * 500_000))
    huge = tmp_path / "huge.xml"
    huge.write_bytes(b"<feedback>" + b" " * 500_000)
    paths = [str(bomb), str(zip_bomb), str(huge)]
    result = await cli_run(config_path, "dmarc", "ingest", *paths)
    assert result.exit_code == 1
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [line["outcome"] for line in lines] == ["refused"] * 3
    assert "larger than 100000 bytes" in lines[2]["error"]
    assert "XML refused" in lines[0]["error"] and str(bomb) in lines[0]["error"]
    assert "gzip bomb" in lines[1]["error"]
    assert "XML refused" in result.stderr
    store = await SQLStore.open(load_config(config_path).settings.database)
    try:
        assert await store.auth_days() == []
    finally:
        await store.close()
    status = await cli_run(config_path, "status", "--json")
    assert all(
        json.loads(x)["kind"] != "authentication" for x in status.stdout.splitlines()
    )
