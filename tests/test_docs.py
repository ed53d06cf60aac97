"""README.md's shell examples run as written (datasette's test_docs, for commands).

Every line of a ```sh block is either a comment, a command in SKIP (with the
reason it cannot run here), or a `./dev …` / `warmup …` command that this test
runs through the repository's real `dev` script from a temporary directory set up
like a user's: the example config and schedules, and the input files the examples
name (FILES). The repository itself must come out untouched.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DEV = REPO / "dev"

# Commands that are not run here, and why.
SKIP = {
    "./dev demo": "runs 30 simulated days (about a minute); tests/e2e/test_demo.py",
    "./dev test": "the test suite itself",
}
# Input files the examples read, as a user would have them.
FILES = {
    "list.csv": "email,name,score\nann@example.com,Ann,3\nbob@example.org,Bob,1\n",
    "offer.eml": (
        "From: Offers <offers@example.com>\nSubject: December, {{ name }}\n"
        "Content-Type: text/plain; charset=utf-8\n\nHello {{ name }}!\n"
    ),
    "old-bounces.csv": "address,reason\nold@example.net,hard\n",
}
# What a command reads on stdin (a password asked twice).
STDIN = {"./dev relay adduser spring-sale": "long enough\nlong enough\n"}
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_commands() -> list[str]:
    """The command lines of README's sh blocks, without comments."""
    commands = []
    for block in SH_BLOCK.findall(README.read_text(encoding="utf-8")):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def _skipped(command: str) -> str | None:
    for prefix, reason in SKIP.items():
        if command == prefix or command.startswith(prefix + " "):
            return reason
    return None


def test_readme_has_runnable_examples() -> None:
    commands = readme_commands()
    runnable = [c for c in commands if _skipped(c) is None]
    assert len(runnable) >= 7, commands
    for command in commands:
        assert command.split()[0] in ("./dev", "warmup"), (
            f"README example {command!r}: the docs test runs only ./dev and warmup "
            "commands; support it there or list it in SKIP with a reason"
        )


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory outside the repository, set up as the README assumes."""
    directory = tmp_path_factory.mktemp("user")
    shutil.copy(REPO / "warmup" / "config.example.yaml", directory)
    shutil.copytree(REPO / "warmup" / "schedules", directory / "schedules")
    for name, text in FILES.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    program = str(DEV) if words[0] == "./dev" else str(REPO / ".venv/bin/warmup")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARMUP_")}
    return subprocess.run(
        [program, *words[1:]],
        cwd=cwd,
        input=STDIN.get(command, ""),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        # No controlling terminal: a password prompt reads stdin, never the tty.
        start_new_session=True,
        check=False,
    )


def _repo_files() -> set[str]:
    return {p.name for p in REPO.iterdir()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [c for c in readme_commands() if _skipped(c) is None]
)
def test_readme_example_runs_as_written(command: str, user_dir: Path) -> None:
    before = _repo_files()
    result = _run(command, user_dir)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert _repo_files() == before  # nothing written into the repository


@pytest.mark.slow
def test_dev_keeps_the_callers_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        (REPO / "warmup" / "config.example.yaml")
        .read_text(encoding="utf-8")
        .replace("schedules: schedules/", f"schedules: {REPO / 'schedules'}"),
        encoding="utf-8",
    )
    before = _repo_files()
    checked = _run("./dev -c mine.yaml check", tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "ok mine.yaml" in checked.stdout
    status = _run("./dev status --json", tmp_path)
    assert status.returncode == 0, status.stderr
    assert _repo_files() == before  # no warmup.db in the repository
    assert (tmp_path / "warmup.db").exists()  # ./warmup.db is the caller's


def test_the_shortcut_links_resolve_to_the_shipped_files() -> None:
    """`config.example.yaml` and `schedules` at the top are links into the
    package (see README, Configuration): they must not dangle."""
    for name, target in [
        ("config.example.yaml", "warmup/config.example.yaml"),
        ("schedules", "warmup/schedules"),
    ]:
        link = REPO / name
        assert link.resolve() == (REPO / target).resolve(), name
        assert link.exists(), name
    assert (REPO / "schedules" / "gmail.yaml").is_file()
