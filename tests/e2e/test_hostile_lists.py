"""Hostile recipient lists (issue 12, items 3 and 6): each one is refused row by
row with FILE:LINE: column: …, never a traceback, never a frozen daemon."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner, Result

from warmup.adapters.recipient_file import MAX_COLUMNS, MAX_LINE_BYTES, RowReader
from warmup.cli import cli
from warmup.config import EXAMPLE_CONFIG
from warmup.core.recipients.recipient import MAX_FIELD_BYTES, MAX_HEADER_FIELD_CHARS

TEMPLATE = b"""\
From: Shop <news@shop.example>
To: {{ email }}
Subject: Hi {{ first_name }}
Content-Type: text/plain; charset=utf-8

Hello {{ first_name }}! {{ story }}
"""


def _enqueue(tmp_path: Path, listing: Path) -> Result:
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace(
        "database: sqlite:///warmup.db", f"database: sqlite:///{tmp_path}/w.db"
    )
    text = text.replace(
        "schedules: schedules/", f"schedules: {EXAMPLE_CONFIG.parent}/schedules/"
    )
    config = tmp_path / "config.yaml"
    config.write_text(text)
    template = tmp_path / "msg.eml"
    template.write_bytes(TEMPLATE)
    args = ["-c", str(config), "enqueue", str(listing), "--template", str(template)]
    return CliRunner().invoke(cli, [*args, "--campaign", "c"], catch_exceptions=False)


def _queued(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "w.db") as db:
        return [row[0] for row in db.execute("SELECT address FROM recipients")]


def test_a_10_mb_jsonl_field_is_a_row_error(tmp_path: Path) -> None:
    listing = tmp_path / "list.jsonl"
    rows = [
        {"email": "a@gmail.com", "first_name": "A", "story": "x" * (10 << 20)},
        {"email": "b@gmail.com", "first_name": "B", "story": "é" * 500_000},
        {"email": "c@gmail.com", "first_name": "C", "story": "short"},
    ]
    listing.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = _enqueue(tmp_path, listing)
    assert result.exit_code == 0, result.output
    assert "queued 1, duplicate 0, suppressed 0, invalid 2" in result.output
    limit = f"story: value longer than {MAX_FIELD_BYTES:,} bytes"
    assert f"{listing}:1: {limit} (10,485,760 characters)" in result.output
    # 500,000 characters, but 1,000,000 bytes: refused by its size in bytes.
    assert f"{listing}:2: {limit} (500,000 characters)" in result.output
    assert _queued(tmp_path) == ["c@gmail.com"]


def test_a_1_mb_non_ascii_csv_field_in_a_header_is_a_row_error(
    tmp_path: Path,
) -> None:
    listing = tmp_path / "list.csv"
    header_value = "名" * (MAX_HEADER_FIELD_CHARS + 1)
    listing.write_text(
        "email,first_name,story\n"
        f"a@gmail.com,{'ü' * (1 << 20)},x\n"
        f"b@gmail.com,{header_value},x\n"
        f"c@gmail.com,{'名' * MAX_HEADER_FIELD_CHARS},{'ü' * 450_000}\n"
    )
    result = _enqueue(tmp_path, listing)
    assert result.exit_code == 0, result.output
    assert "queued 1, duplicate 0, suppressed 0, invalid 2" in result.output
    assert f"{listing}:2: first_name: value longer than {MAX_FIELD_BYTES:,}" in (
        result.output
    )
    assert (
        f"{listing}:3: first_name: value longer than 998 characters (999), but the "
        "template puts it in a header" in result.output
    )
    assert _queued(tmp_path) == ["c@gmail.com"]


def test_a_csv_field_over_the_parser_limit_is_a_row_error(tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    with listing.open("w") as out:
        out.write("email,first_name,story\n")
        out.write(f"a@gmail.com,A,{'x' * (MAX_LINE_BYTES + 1)}\n")
        out.write("b@gmail.com,B,fine\n")
    result = _enqueue(tmp_path, listing)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"{listing}:2: field larger than field limit" in result.output
    assert _queued(tmp_path) == ["b@gmail.com"]


def test_deeply_nested_jsonl_and_huge_numbers_are_row_errors(tmp_path: Path) -> None:
    listing = tmp_path / "list.jsonl"
    listing.write_text(
        '{"email": "a@gmail.com", "first_name": ' + "[" * 200_000 + "\n"
        '{"email": "b@gmail.com", "first_name": ' + "9" * 5000 + "}\n"
        '{"email": "c@gmail.com", "first_name": "C", "story": "s"}\n'
    )
    result = _enqueue(tmp_path, listing)
    assert result.exit_code == 0, result.output
    assert f"{listing}:1: bad JSON: nested too deeply" in result.output
    assert f"{listing}:2: bad JSON: Exceeds the limit (4300 digits)" in result.output
    assert _queued(tmp_path) == ["c@gmail.com"]


def test_a_jsonl_line_over_the_line_limit_is_skipped_unread(tmp_path: Path) -> None:
    listing = tmp_path / "list.jsonl"
    with listing.open("w") as out:
        out.write('{"email": "a@gmail.com", "story": "' + "x" * MAX_LINE_BYTES)
        out.write('"}\n{"email": "b@gmail.com", "first_name": "B", "story": "s"}\n')
    result = _enqueue(tmp_path, listing)
    assert f"{listing}:1: line longer than {MAX_LINE_BYTES:,} bytes" in result.output
    assert _queued(tmp_path) == ["b@gmail.com"]


def test_a_header_of_a_million_columns_is_one_short_error(tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(",".join(f"c{n}" for n in range(1_000_000)) + "\n")
    result = _enqueue(tmp_path, listing)
    assert result.exit_code == 2
    assert result.output == (
        f"error: {listing}: line 1: 1,000,000 columns in the header; "
        f"at most {MAX_COLUMNS}\n"
    )


def test_a_missing_email_column_lists_only_a_few_names(tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(",".join(f"c{n}" for n in range(500)) + "\n")
    result = _enqueue(tmp_path, listing)
    assert result.exit_code == 2
    assert "(found: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 and 490 more)" in (
        result.output
    )
    assert len(result.output) < 200


def test_control_characters_never_reach_a_header(tmp_path: Path) -> None:
    listing = tmp_path / "list.jsonl"
    rows = [
        {"email": "a@gmail.com", "first_name": "A\x00B", "story": "s"},
        {"email": "b@gmail.com", "first_name": "B", "story": "s\x1b[2J"},
        {"email": "c@gmail.com", "first_name": "C\tD", "story": "s"},
    ]
    listing.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = _enqueue(tmp_path, listing)
    assert f"{listing}:1: first_name: control character '\\x00' at position 2" in (
        result.output
    )
    assert f"{listing}:2: story: control character '\\x1b' at position 2" in (
        result.output
    )
    assert _queued(tmp_path) == ["c@gmail.com"]  # TAB is fine


def test_csv_rows_after_a_bad_one_are_read(tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(
        f"email,story\na@x.com,{'y' * (MAX_LINE_BYTES + 5)}\nb@x.com,ok\n"
    )
    reader = RowReader(str(listing), "csv")
    try:
        rows = list(reader)
    finally:
        reader.close()
    assert [(r.line, r.error) for r in rows] == [
        (2, f"field larger than field limit ({MAX_LINE_BYTES})"),
        (3, None),
    ]
    assert rows[1].values == {"email": "b@x.com", "story": "ok"}
