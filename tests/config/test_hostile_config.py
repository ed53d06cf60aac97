"""Hostile config files (issue 12, item 5): each one exits 2 with one line,
quickly and in little memory, never a traceback and never a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import String

from warmup.adapters.db.schema import recipients
from warmup.cli import cli
from warmup.config import EXAMPLE_CONFIG
from warmup.config.reader import (
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    Context,
    parse_yaml,
)
from warmup.config.settings import MAX_NODE_CHARS

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def _check(config: Path | str) -> Result:
    return CliRunner().invoke(cli, ["-c", str(config), "check"])


def _one_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def _example(tmp_path: Path, node: str) -> Path:
    text = EXAMPLE_CONFIG.read_text().replace(
        "schedules: schedules/", f"schedules: {EXAMPLE_CONFIG.parent}/schedules/"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("node: null", f"node: {node}"))
    return path


def test_billion_laughs_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "laughs.yaml"
    config.write_text(LAUGHS)
    line = _one_line(_check(config))
    assert line == (
        f"configuration problem: {config}:6: bad YAML: more than "
        f"{MAX_YAML_NODES:,} values once aliases are expanded"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000, f":1: bad YAML: nested deeper than {MAX_YAML_DEPTH} levels"),
        ("a: &a [*a]\n", ":1: bad YAML: found a recursive alias"),
        (
            # Shallow anchors that nest deep once expanded.
            "a: &a " + "[" * 40 + "]" * 40 + "\nb: &b " + "[" * 30 + "*a" + "]" * 30,
            f":2: bad YAML: nested deeper than {MAX_YAML_DEPTH} levels once aliases",
        ),
        (
            "# x\n" * (MAX_YAML_BYTES // 4 + 1),
            f": larger than {MAX_YAML_BYTES // 1024}",
        ),
    ],
)
def test_hostile_yaml_is_one_line(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    assert f"configuration problem: {config}{problem}" in _one_line(_check(config))


def test_aliases_within_the_limits_still_work() -> None:
    ctx = Context(file="x.yaml")
    data = parse_yaml("a: &a {x: 1}\nb: [*a, *a]\n", ctx)
    assert data == {"a": {"x": 1}, "b": [{"x": 1}, {"x": 1}]}
    assert ctx.issues == [] and not ctx.unreadable


def test_special_files_are_refused_unread(tmp_path: Path) -> None:
    assert _one_line(_check("/dev/zero")) == (
        "configuration problem: /dev/zero: not a regular file"
    )
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    assert _one_line(_check(fifo)) == (
        f"configuration problem: {fifo}: not a regular file"
    )


def test_a_fifo_among_the_schedules_does_not_hang(tmp_path: Path) -> None:
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    default = EXAMPLE_CONFIG.parent / "schedules" / "default.yaml"
    (schedules / "default.yaml").write_text(default.read_text())
    os.mkfifo(schedules / "gmail.yaml")
    config = tmp_path / "config.yaml"
    config.write_text(
        EXAMPLE_CONFIG.read_text().replace("schedules: schedules/", "schedules: s/")
    )
    (tmp_path / "s").symlink_to(schedules)
    line = _one_line(_check(config))
    assert line == f"configuration problem: {tmp_path}/s/gmail.yaml: not a regular file"


def test_a_node_name_longer_than_the_claim_column_is_refused(tmp_path: Path) -> None:
    long = "n" * (MAX_NODE_CHARS + 1)
    line = _one_line(_check(_example(tmp_path, long)))
    assert f": node: at most {MAX_NODE_CHARS} characters" in line
    assert f"({MAX_NODE_CHARS + 1} characters)" in line
    fits = _check(_example(tmp_path, "n" * MAX_NODE_CHARS))
    assert fits.exit_code == 0, fits.output


def test_the_node_limit_leaves_room_for_the_process_id() -> None:
    column = recipients.c.claimed_by.type
    assert isinstance(column, String) and column.length is not None
    assert MAX_NODE_CHARS + len(":4194304") <= column.length  # pid_max on Linux
