"""Headless Chromium for the end-to-end tests: the rendered DOM and a screenshot.

Chromium is driven directly (``--dump-dom``, ``--screenshot``) with a virtual time
budget, so the page's scripts have run before the DOM is read. A missing Chromium
skips the test, unless WARMUP_REQUIRE_BROWSER is set (CI), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Chart", "charts", "chromium", "dump_dom", "png_size", "screenshot"]

_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",
)


def chromium() -> str:
    """The Chromium binary, or skip (fail when WARMUP_REQUIRE_BROWSER is set)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("WARMUP_REQUIRE_BROWSER"):
        pytest.fail("Chromium required (WARMUP_REQUIRE_BROWSER) but not on PATH")
    pytest.skip("Chromium not installed (apt-get install chromium)")


def _run(page: Path, profile: Path, *args: str) -> str:
    command = [
        chromium(),
        *_FLAGS,
        f"--user-data-dir={profile}",
        *args,
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the page's scripts ran (serialised by Chromium)."""
    return _run(page, profile, "--dump-dom")


def screenshot(page: Path, out: Path, profile: Path, size: str = "1400,3000") -> None:
    _run(page, profile, f"--window-size={size}", f"--screenshot={out}")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@dataclass(frozen=True, slots=True)
class Chart:
    """What plotly drew inside one chart div."""

    id: str
    svgs: int
    legend: tuple[str, ...]
    traces: dict[str, int]  # "bars" / "scatter" -> groups drawn
    points: int  # drawn bars and markers


_CHART = re.compile(r'<div id="(chart-[^"]+)"')
_LEGEND = re.compile(r'<text class="legendtext"[^>]*>([^<]*)</text>')
_TRACE = re.compile(r'<g class="trace (bars|scatter)')


def charts(dom: str) -> dict[str, Chart]:
    """Every plotly chart in the DOM, by its div id (charts do not nest)."""
    starts = [(m.start(), m.group(1)) for m in _CHART.finditer(dom)]
    found = {}
    for index, (start, chart_id) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(dom)
        part = dom[start:end]
        traces: dict[str, int] = {}
        for kind in _TRACE.findall(part):
            traces[kind] = traces.get(kind, 0) + 1
        found[chart_id] = Chart(
            id=chart_id,
            svgs=part.count('class="main-svg"'),
            legend=tuple(_LEGEND.findall(part)),
            traces=traces,
            points=part.count('class="point"'),
        )
    return found
