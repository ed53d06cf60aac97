"""Durations as people write them in YAML: ``90s``, ``15m``, ``1h``, ``72h``, ``2d``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_duration(text: object) -> timedelta:
    """Parse ``15m``-style text (or a bare number of seconds) into a timedelta.

    Raises ValueError with the offending value on anything else.
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like '15m', got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    elif isinstance(text, str) and (match := _DURATION.match(text)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like '15m', '1h' or '72h', got {text!r}")
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest exact ``15m``-style spelling of a duration."""
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
