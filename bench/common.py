"""Helpers for the benchmark scripts: timed child processes, temp projects."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from warmup.config import EXAMPLE_CONFIG

__all__ = ["Measured", "run_measured", "write_config"]

WARMUP = [sys.executable, "-m", "warmup"]


@dataclass(frozen=True, slots=True)
class Measured:
    seconds: float
    peak_mb: float
    output: str


def run_measured(args: list[str]) -> Measured:
    """Run a child process; wall time and its own peak RSS (wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{output}")
    return Measured(seconds=seconds, peak_mb=usage.ru_maxrss / 1024, output=output)


def write_config(directory: Path, database: str) -> Path:
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace("database: sqlite:///warmup.db", f"database: {database}")
    text = text.replace(
        "schedules: schedules/", f"schedules: {EXAMPLE_CONFIG.parent}/schedules/"
    )
    path = directory / "config.yaml"
    path.write_text(text)
    return path
