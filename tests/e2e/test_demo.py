"""`warmup demo` as a user runs it (small, so the suite stays fast)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from warmup.cli import cli

DAY_FIELDS = {
    "ip",
    "isp",
    "day",
    "date",
    "allowance_per_hour",
    "planned",
    "attempted",
    "delivered",
    "soft",
    "hard",
    "throttle",
    "block",
    "max_per_minute",
}


def test_demo_runs_and_writes_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    result = CliRunner().invoke(
        cli,
        [
            "demo",
            "--days",
            "4",
            "--ips",
            "2",
            "--recipients",
            "3000",
            "--scale",
            "0.05",
            "--seed",
            "3",
            "--json",
            str(out),
            "--dir",
            str(tmp_path / "demo"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["sent_to_suppressed"] == 0
    timings = summary["timings"]  # the phases, in wall seconds
    phases = ("setup", "list_load", "simulation", "report", "other")
    assert set(timings) == {*phases, "total", "cpu"}
    assert all(timings[name] >= 0 for name in phases)
    assert abs(sum(timings[name] for name in phases) - timings["total"]) < 0.1
    assert summary["days"]
    assert set(summary["days"][0]) >= DAY_FIELDS
    lanes = {(d["ip"], d["isp"]) for d in summary["days"]}
    assert {ip for ip, _ in lanes} == {"127.0.0.2", "127.0.0.3"}
    assert {isp for _, isp in lanes} == {"gmail", "microsoft", "yahoo", "apple"}
    for day in summary["days"]:
        assert day["attempted"] <= day["planned"]
        assert (
            day["delivered"]
            + day["soft"]
            + day["hard"]
            + day["throttle"]
            + day["block"]
            == day["attempted"]
        )
    totals = summary["recipients"]
    assert sum(totals.values()) == summary["queued"] == 3000
    # Suppressed: hard bounces (live or mailed back) and complainers.
    complaints = summary["late_reports"].get("complaint", 0)
    assert 0 < summary["suppressed"] <= totals["bounced"] + complaints
    assert "lanes after the simulation" in result.output
    assert "warmup -c" in result.output and "suppress list" in result.output
    # The config it leaves behind is valid and points at its database.
    check = CliRunner().invoke(
        cli, ["-c", str(tmp_path / "demo" / "config.yaml"), "check"]
    )
    assert check.exit_code == 0, check.output
