"""Meta-tests: exports, layering, documentation."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

import warmup
from warmup.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(warmup.__path__, "warmup.")
    if ".migrations" not in name and name != "warmup.__main__"
)


def _isort_key(name: str) -> tuple[int, str]:
    """ruff RUF022's order: CONSTANTS, then Classes, then everything else."""
    if name.isupper() or (name.upper() == name and "_" in name):
        return 0, name
    return (1 if name[0].isupper() else 2), name


@pytest.mark.parametrize("name", MODULES)
def test_dunder_all_is_sorted_and_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    assert list(exported) == sorted(exported, key=_isort_key), f"{name}.__all__ order"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "warmup" / "core").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT / "warmup" / "core")),
)
def test_core_imports_only_the_stdlib_and_itself(path: Path) -> None:
    allowed_stdlib = set(sys.stdlib_module_names) - {"asyncio", "sqlite3", "socket"}
    for module in _imports(path):
        top = module.split(".")[0]
        assert (
            module.startswith("warmup.core")
            or top in allowed_stdlib
            or top == "__future__"
        ), f"{path.name} imports {module}"


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    block = text.split("```", 2)[1].strip().splitlines()
    commands = [line for line in block[1:] if line and not line.startswith("#")]
    assert commands[:2] == ["./dev demo", "./dev test"]
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


def test_every_command_is_documented_in_the_readme() -> None:
    text = (ROOT / "README.md").read_text()
    names = []
    for name, command in cli.commands.items():
        sub = getattr(command, "commands", None)
        names += [f"warmup {name} {s}" for s in sub] if sub else [f"warmup {name}"]
    assert [n for n in names if n not in text] == []
