"""`pip install warmup[fast]`: commands run on uvloop when it is importable, on
asyncio's own loop when it is not (the default)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from warmup.cli.common import loop_factory, run_async
from warmup.core.errors import InputError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_without_uvloop_commands_run_on_asyncios_own_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop fails
    assert loop_factory() is None
    assert run_async(_loop_module()).startswith("asyncio")


def test_with_uvloop_commands_run_on_it() -> None:
    pytest.importorskip("uvloop")
    assert run_async(_loop_module()).startswith("uvloop")


def test_errors_still_become_clean_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)

    async def bad() -> None:
        raise InputError("list.csv line 3", "no address")

    with pytest.raises(SystemExit) as exited:
        run_async(bad())
    assert exited.value.code == 2  # EXIT_CONFIG, no traceback
