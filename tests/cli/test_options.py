"""-c/--config, --log-level and --log-format go before or after the command."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from warmup.cli import cli
from warmup.cli.logs import JSONFormatter, TextFormatter
from warmup.config.files import BUILTIN_SCHEDULES

SHARED = ("-c", "--config", "--log-level", "--log-format")


def _config(directory: Path, *, extra: str = "") -> Path:
    path = directory / "this-config.yaml"
    path.write_text(
        f"database: sqlite:///{directory / 'chosen.db'}\n"
        f"schedules: {BUILTIN_SCHEDULES}\n"
        "ips:\n  - address: 127.0.0.2\n    helo: a.example\n" + extra,
        encoding="utf-8",
    )
    return path


def _placed(where: str, config: Path, command: list[str]) -> list[str]:
    """``command`` with ``-c config`` before or after it."""
    option = ["-c", str(config)]
    return option + command if where == "before" else command + option


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml: the default would be the example
    return CliRunner()


@pytest.mark.parametrize("where", ["before", "after"])
def test_check_reads_the_config_given_before_or_after(
    where: str, tmp_path: Path, runner: CliRunner
) -> None:
    bad = _config(tmp_path, extra="timezone: Mars/Olympus\n")
    result = runner.invoke(cli, _placed(where, bad, ["check"]))
    assert result.exit_code == 2, result.output
    assert "this-config.yaml" in result.output and "timezone" in result.output


@pytest.mark.parametrize("where", ["before", "after"])
def test_nested_commands_use_the_config_given_before_or_after(
    where: str, tmp_path: Path, runner: CliRunner
) -> None:
    config = _config(tmp_path)
    added = runner.invoke(cli, _placed(where, config, ["suppress", "add", "x@y.test"]))
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, _placed(where, config, ["suppress", "list", "--json"]))
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["address"] == "x@y.test"
    assert (tmp_path / "chosen.db").exists()  # the config's database, not ./warmup.db
    assert not (tmp_path / "warmup.db").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_schedule_show_reads_the_schedules_of_the_config(
    where: str, tmp_path: Path, runner: CliRunner
) -> None:
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    for file in BUILTIN_SCHEDULES.glob("*.yaml"):
        if file.stem != "gmail":
            (schedules / file.name).write_bytes(file.read_bytes())
    config = _config(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(str(BUILTIN_SCHEDULES), "schedules"), "utf-8")
    shown = runner.invoke(cli, _placed(where, config, ["schedule", "show", "yahoo"]))
    assert shown.exit_code == 0, shown.output
    missing = runner.invoke(cli, _placed(where, config, ["schedule", "show", "gmail"]))
    assert missing.exit_code != 0  # this config's schedules have no gmail
    assert "gmail" in missing.output


def test_the_last_config_given_wins(tmp_path: Path, runner: CliRunner) -> None:
    good = _config(tmp_path)
    result = runner.invoke(cli, ["-c", "missing.yaml", "check", "-c", str(good)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["-c", str(good), "check", "-c", "missing.yaml"])
    assert result.exit_code == 2
    assert "missing.yaml: file not found" in result.output


def _walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, f"{path} {name}")


def test_every_command_takes_the_shared_options() -> None:
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        cli.get_command(ctx, name)
    commands = list(_walk(cli, "warmup"))
    assert len(commands) > 15
    for path, command in commands:
        opts = {opt for param in command.params for opt in param.opts}
        assert set(SHARED) <= opts, path


def test_help_of_a_command_lists_the_shared_options(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["suppress", "import", "--help"])
    assert result.exit_code == 0
    assert "-c, --config PATH" in result.output and "--log-format" in result.output


@pytest.fixture
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without the test runner's handlers (configure_logging
    leaves logging alone when someone else set it up), restored afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers = saved
        root.setLevel(level)


def _run_bare(root: logging.Logger, args: list[str]) -> None:
    """Invoke the CLI with the root logger bare (pytest re-adds its handlers
    at each phase, so they are removed inside the call)."""
    root.handlers = []
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "level", "formatter"),
    [
        (
            ["classify", "--log-level", "debug", "--log-format", "json"],
            10,
            JSONFormatter,
        ),
        (
            ["--log-level", "debug", "--log-format", "json", "classify"],
            10,
            JSONFormatter,
        ),
        (
            ["--log-level", "error", "classify", "--log-level", "info"],
            20,
            TextFormatter,
        ),
        (
            ["--log-format", "json", "classify", "--log-level", "error"],
            40,
            JSONFormatter,
        ),
        (["classify"], 30, TextFormatter),
    ],
)
def test_log_options_apply_before_or_after_the_command(
    bare_root: logging.Logger,
    args: list[str],
    level: int,
    formatter: type[logging.Formatter],
) -> None:
    _run_bare(bare_root, args)
    assert bare_root.level == level
    (handler,) = bare_root.handlers
    assert type(handler.formatter) is formatter
