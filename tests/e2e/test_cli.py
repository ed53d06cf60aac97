"""The CLI as a user runs it: real config files, a real SQLite file and PostgreSQL."""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from warmup.cli import cli
from warmup.config import EXAMPLE_CONFIG

TEMPLATE = b"""\
From: Shop <news@shop.example>
To: {{ email }}
Subject: Hi {{ first_name }}
Content-Type: text/plain; charset=utf-8

Hello {{ first_name }}!
"""


def _config(tmp_path: Path, database_url: str) -> Path:
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace("database: sqlite:///warmup.db", f"database: {database_url}")
    text = text.replace(
        "schedules: schedules/", f"schedules: {EXAMPLE_CONFIG.parent}/schedules/"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _run(*args: str, config: Path | None = None, input: str | None = None):
    runner = CliRunner()
    prefix = ["-c", str(config)] if config else []
    return runner.invoke(cli, [*prefix, *args], input=input, catch_exceptions=False)


def test_check_accepts_the_example() -> None:
    result = _run("check", config=EXAMPLE_CONFIG)
    assert result.exit_code == 0, result.output
    assert "8 schedules" in result.output


def test_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    for name in ("default", "gmail"):
        (schedules / f"{name}.yaml").write_text(
            (EXAMPLE_CONFIG.parent / "schedules" / f"{name}.yaml").read_text()
        )
    gmail = schedules / "gmail.yaml"
    gmail.write_text(
        gmail.read_text().replace(
            "{days: 4-6, per_hour: 120}", "{days: 4-6, per_hour: 50}"
        )
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "timezone: Nowhere/Land\nips:\n  - {address: 127.0.0.2, helo: a.b}\n"
        "relay: {listen: 'x:99999'}\n"
    )
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = _run("check", config=config)
    assert result.exit_code == 2
    lines = [line.strip() for line in result.output.splitlines()]
    assert lines[0] == "3 configuration problems:"
    assert (
        f"{config}:1: timezone: unknown time zone (use an IANA name like "
        "'Asia/Tokyo'), got 'Nowhere/Land'" in lines
    )
    assert f"{config}:4: relay.listen: expected host:port, got 'x:99999'" in lines
    assert any(
        line.startswith(f"{gmail}:")
        and "ramp[1].per_hour: must be >= 60 (previous step), got 50" in line
        for line in lines
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing changed


def test_schedule_show_reproduces_the_gmail_reference_table() -> None:
    result = _run(
        "schedule",
        "show",
        "gmail",
        "--start",
        "2026-12-01",
        "--json",
        config=EXAMPLE_CONFIG,
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 23
    assert rows[0] == {
        "isp": "gmail",
        "day": 1,
        "date": "2026-12-01",
        "weekday": "Tue",
        "per_hour": 60,
        "per_day": 240,
    }
    table = {1: 60, 4: 120, 7: 180, 10: 240, 13: 360, 16: 720, 19: 1080, 22: 1440}
    for row in rows:
        step = max(day for day in table if day <= row["day"])
        assert row["per_hour"] == table[step]
        assert row["per_day"] == row["per_hour"] * 4
    assert rows[-1]["date"] == "2026-12-23" and rows[-1]["weekday"] == "Wed"
    text = _run(
        "schedule", "show", "gmail", "--start", "2026-12-01", config=EXAMPLE_CONFIG
    )
    assert "2026-12-05" in text.output and "Sat" in text.output


def test_schedule_show_unknown_isp_is_a_usage_error() -> None:
    result = _run("schedule", "show", "hotmale", config=EXAMPLE_CONFIG)
    assert result.exit_code == 2
    assert "no schedule for 'hotmale'" in result.output


def test_plan_json() -> None:
    result = _run(
        "plan",
        "--ips",
        "4",
        "--volume",
        "gmail=20000",
        "--volume",
        "yahoo=200000",
        "--start",
        "2026-12-01",
        "--json",
        config=EXAMPLE_CONFIG,
    )
    assert result.exit_code == 0, result.output
    gmail, yahoo = (json.loads(line) for line in result.output.splitlines())
    # 4 IPs x 1080/h x 4 h = 17,280 < 20,000 <= 4 x 1440 x 4 = 23,040 -> day 22
    assert gmail["day"] == 22 and gmail["date"] == "2026-12-22"
    assert gmail["capacity_on_day"] == 23_040
    assert yahoo["day"] is None and yahoo["ips_needed_when_warmed"] > 4


@pytest.mark.parametrize("bad", ["gmail", "gmail=lots", "=5", "gmail=0"])
def test_plan_rejects_bad_volumes(bad: str) -> None:
    result = _run("plan", "--ips", "2", "--volume", bad, config=EXAMPLE_CONFIG)
    assert result.exit_code == 2


def _write_list(
    path: Path, rows: int, suppressed: set[int], malformed: set[int], rng: random.Random
) -> list[str]:
    suppressed_addresses = []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "first_name", "score"])
        for index in range(rows):
            domain = rng.choice(["gmail.com", "yahoo.com", "example.org", "icloud.com"])
            address = f"user{index}@{domain}"
            if index in malformed:
                address = f"user{index}-at-{domain}"
            elif index in suppressed:
                suppressed_addresses.append(address)
            writer.writerow([address, f"Name{index}", rng.randint(0, 100)])
    return suppressed_addresses


def test_enqueue_100k_with_suppressed_and_malformed_rows(
    tmp_path: Path, database_url: str
) -> None:
    rng = random.Random(7)
    config = _config(tmp_path, database_url)
    indexes = rng.sample(range(100_000), 1_050)
    suppressed, malformed = set(indexes[:1_000]), set(indexes[1_000:])
    listing = tmp_path / "list.csv"
    addresses = _write_list(listing, 100_000, suppressed, malformed, rng)
    supp_file = tmp_path / "supp.csv"
    supp_file.write_text("address\n" + "\n".join(addresses) + "\n")
    template = tmp_path / "msg.eml"
    template.write_bytes(TEMPLATE)

    imported = _run("suppress", "import", str(supp_file), "--json", config=config)
    assert json.loads(imported.output.splitlines()[-1])["added"] == 1_000

    result = _run(
        "enqueue",
        str(listing),
        "--template",
        str(template),
        "--campaign",
        "winter",
        "--json",
        config=config,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary == {
        "campaign": "winter",
        "rows": 100_000,
        "queued": 98_950,
        "duplicate": 0,
        "suppressed": 1_000,
        "invalid": 50,
    }
    bad_lines = sorted(index + 2 for index in malformed)  # header is line 1
    reported = [line for line in result.output.splitlines() if "email:" in line]
    assert [int(line.split(":")[1]) for line in reported] == bad_lines

    again = _run(
        "enqueue",
        str(listing),
        "--template",
        str(template),
        "--campaign",
        "winter",
        "--json",
        config=config,
    )
    assert json.loads(again.output.splitlines()[-1])["duplicate"] == 98_950

    if database_url.startswith("sqlite"):
        db = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        queued = {row[0] for row in db.execute("SELECT address FROM recipients")}
        assert queued.isdisjoint(addresses)
        isps = dict(db.execute("SELECT isp, count(*) FROM recipients GROUP BY isp"))
        assert set(isps) == {"gmail", "yahoo", "apple", None}


def test_enqueue_jsonl_reports_bad_lines(tmp_path: Path, database_url: str) -> None:
    config = _config(tmp_path, database_url)
    listing = tmp_path / "list.jsonl"
    listing.write_bytes(
        b'{"email": "a@gmail.com", "first_name": "A", "last_open_at": "2030-01-01"}\n'
        b"\n"
        b"not json\n"
        b'["a list"]\n'
        b'{"email": "b@gmail.com"}\n'
        b'{"email": "c@gmail.com", "first_name": "C\\r\\nBcc: x@evil.example"}\n'
        b'{"email": "d@gmail.com", "first_name": "\xff"}\n'
        b'{"email": "e@gmail.com", "first_name": {"nested": 1}}\n'
        b'{"email": "f@gmail.com", "first_name": 5}\n'
    )
    template = tmp_path / "msg.eml"
    template.write_bytes(TEMPLATE)
    result = _run(
        "enqueue",
        str(listing),
        "--template",
        str(template),
        "--campaign",
        "j",
        config=config,
    )
    assert result.exit_code == 0, result.output
    assert "queued 2, duplicate 0, suppressed 0, invalid 6" in result.output
    for expected in (
        ":3: bad JSON",
        ":4: expected a JSON object",
        ":5: first_name: missing",
        ":6: first_name: line break",
        ":7: not valid UTF-8",
        ":8: first_name: nested values",
    ):
        assert expected in result.output


def test_enqueue_refuses_a_template_column_the_file_lacks(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path}/w.db")
    listing = tmp_path / "list.csv"
    listing.write_text("email\na@gmail.com\n")
    template = tmp_path / "msg.eml"
    template.write_bytes(TEMPLATE)
    result = _run(
        "enqueue",
        str(listing),
        "--template",
        str(template),
        "--campaign",
        "c",
        config=config,
    )
    assert result.exit_code == 2
    assert "{{ first_name }}" in result.output and "no such column" in result.output


def test_enqueue_without_email_column_or_file(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path}/w.db")
    template = tmp_path / "msg.eml"
    template.write_bytes(TEMPLATE)
    listing = tmp_path / "list.csv"
    listing.write_text("mail,first_name\na@gmail.com,A\n")
    result = _run(
        "enqueue",
        str(listing),
        "--template",
        str(template),
        "--campaign",
        "c",
        config=config,
    )
    assert result.exit_code == 2 and "no 'email' column" in result.output
    missing = _run(
        "enqueue",
        str(tmp_path / "nope.csv"),
        "--template",
        str(template),
        "--campaign",
        "c",
        config=config,
    )
    assert missing.exit_code == 2 and "cannot open" in missing.output


def test_suppress_round_trip(tmp_path: Path, database_url: str) -> None:
    config = _config(tmp_path, database_url)
    added = _run(
        "suppress",
        "add",
        "A@Example.com",
        "@dead.example",
        "--reason",
        "hard",
        config=config,
    )
    assert added.exit_code == 0 and "added 2" in added.output
    bad = _run("suppress", "add", "nonsense", config=config)
    assert bad.exit_code == 2
    listed = _run("suppress", "list", "--json", config=config)
    entries = [json.loads(line) for line in listed.output.splitlines()]
    assert [(e["address"], e["kind"], e["reason"]) for e in entries] == [
        ("A@example.com", "address", "hard"),
        ("@dead.example", "domain", "hard"),
    ]
    out = tmp_path / "export.csv"
    assert _run("suppress", "export", str(out), config=config).exit_code == 0
    with out.open() as handle:
        exported = list(csv.DictReader(handle))
    assert [row["address"] for row in exported] == ["A@example.com", "@dead.example"]
    removed = _run(
        "suppress", "remove", "a@EXAMPLE.com", "A@example.com", config=config
    )
    assert "removed 1" in removed.output
    table = _run("suppress", "list", config=config)
    assert "@dead.example" in table.output and "A@example.com" not in table.output


def test_suppress_list_by_source_shows_the_dns_suppressions(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path}/w.db")
    _run("suppress", "add", "@dead.example", "--source", "dns", config=config)
    _run("suppress", "add", "a@example.com", config=config)
    listed = _run("suppress", "list", "--json", "--source", "dns", config=config)
    assert [json.loads(x)["address"] for x in listed.output.splitlines()] == [
        "@dead.example"
    ]
    assert "--source" in _run("suppress", "list", "--help", config=config).output


def test_suppress_import_reports_invalid_rows(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path}/w.db")
    source = tmp_path / "in.csv"
    source.write_text("email,reason\nok@example.com,complaint\nbroken,hard\n@x.org,\n")
    result = _run("suppress", "import", str(source), "--json", config=config)
    assert result.exit_code == 0
    assert f"{source}:3: address:" in result.output
    assert json.loads(result.output.splitlines()[-1]) == {
        "rows": 3,
        "added": 2,
        "existing": 0,
        "invalid": 1,
    }
    bare = tmp_path / "bare.txt"
    bare.write_text("one@example.com\ntwo@example.com\n")
    plain = _run("suppress", "import", str(bare), "--json", config=config)
    assert json.loads(plain.output.splitlines()[-1])["added"] == 2
    listed = _run("suppress", "list", "--json", "--reason", "complaint", config=config)
    assert [json.loads(x)["address"] for x in listed.output.splitlines()] == [
        "ok@example.com"
    ]


def test_classify_plain_lines_in_order() -> None:
    replies = [
        "421 4.7.28 [203.0.113.10] Our system has detected an unusual rate of "
        "unsolicited mail originating from your IP address.",
        "550 5.1.1 The email account that you tried to reach does not exist.",
        "550 5.7.26 This message does not have authentication information "
        "(unauthenticated)",
        "250 2.0.0 OK",
    ]
    result = _run("classify", input="\n".join(replies) + "\n")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["verdict"], r["code"], r["enhanced"]) for r in rows] == [
        ("throttle", 421, "4.7.28"),
        ("hard", 550, "5.1.1"),
        ("block", 550, "5.7.26"),
        ("delivered", 250, "2.0.0"),
    ]
    assert {"reason", "permanent", "rule"} <= set(rows[0])


def test_classify_jsonl_multiline_and_bad_lines() -> None:
    lines = [
        json.dumps(
            {"reply": "550-5.7.1 [198.51.100.7] listed\r\n550 5.7.1 at Spamhaus"}
        ),
        "not json",
        json.dumps({"text": "no reply field"}),
        json.dumps({"reply": "452 4.2.2 The email account is over quota"}),
    ]
    result = _run("classify", "--jsonl", input="\n".join(lines) + "\n")
    assert result.exit_code == 0
    rows = [
        json.loads(line) for line in result.output.splitlines() if line.startswith("{")
    ]
    assert rows[0]["verdict"] == "block"
    assert rows[1] == {"line": 2, "error": "bad JSON: Expecting value at column 1"}
    assert rows[2]["line"] == 3 and "reply" in rows[2]["error"]
    assert rows[3]["verdict"] == "soft"


def test_classify_with_schedule_overrides() -> None:
    text = "421 4.7.28 unusual rate from your IP\n"
    result = _run("classify", "--isp", "gmail", input=text, config=EXAMPLE_CONFIG)
    assert json.loads(result.output)["rule"] == "override:gmail-rate-limited"


def test_run_refuses_without_the_verp_secret(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WARMUP_VERP_SECRET", raising=False)
    config = _config(tmp_path, f"sqlite:///{tmp_path}/w.db")
    result = _run("run", config=config)
    assert result.exit_code == 2
    assert "WARMUP_VERP_SECRET" in result.output


def test_run_refuses_a_node_without_ips(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WARMUP_VERP_SECRET", "s")
    config = _config(tmp_path, f"sqlite:///{tmp_path}/w.db")
    config.write_text(config.read_text().replace("node: null", "node: elsewhere"))
    result = _run("run", config=config)
    assert result.exit_code == 2
    assert "no source IPs for node 'elsewhere'" in result.output
