"""Files holding recipient addresses are private (issue 12, item 8): the SQLite
database and its -wal/-shm, `suppress export` output and the HTML report are
created 0600 under the usual umask 022."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from warmup.adapters.db.store import SQLStore
from warmup.app.ports import TemplateRecord
from warmup.cli import cli
from warmup.config import EXAMPLE_CONFIG


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _config(tmp_path: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace(
        "database: sqlite:///warmup.db", f"database: sqlite:///{tmp_path}/w.db"
    )
    text = text.replace(
        "schedules: schedules/", f"schedules: {EXAMPLE_CONFIG.parent}/schedules/"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


async def test_the_sqlite_database_and_its_wal_are_0600(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    store = await SQLStore.open(f"sqlite:///{database}")
    try:
        record = TemplateRecord(name="t.eml", sha256="c" * 64, content=b"S: x\n\n")
        await store.ensure_campaign("c", record, datetime(2030, 1, 1, tzinfo=UTC))
        wal = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert all(path.exists() for path in wal)
        assert {str(p.name): _mode(p) for p in wal} == {p.name: 0o600 for p in wal}
    finally:
        await store.close()


def test_export_and_report_are_0600(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    base = ["-c", str(config)]
    added = runner.invoke(cli, [*base, "suppress", "add", "a@example.com"])
    assert added.exit_code == 0, added.output
    assert _mode(tmp_path / "w.db") == 0o600
    export = tmp_path / "suppressed.csv"
    result = runner.invoke(cli, [*base, "suppress", "export", str(export)])
    assert result.exit_code == 0, result.output
    assert "a@example.com" in export.read_text()
    assert _mode(export) == 0o600
    html = tmp_path / "report.html"
    result = runner.invoke(cli, [*base, "report", "--html", str(html)])
    assert result.exit_code == 0, result.output
    assert _mode(html) == 0o600
