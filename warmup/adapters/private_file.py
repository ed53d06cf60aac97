"""Files that hold recipient addresses (the SQLite database, exports, reports)
are created readable by their owner only, whatever the umask."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

__all__ = ["PRIVATE_MODE", "create_private", "open_private", "write_private"]

PRIVATE_MODE = 0o600


def _descriptor(path: str | Path, flags: int) -> int:
    return os.open(path, flags | os.O_CREAT, PRIVATE_MODE)


def create_private(path: str | Path) -> None:
    """Create ``path`` empty and private if it does not exist; leave it if it does
    (its mode is then the operator's choice)."""
    with contextlib.suppress(FileExistsError):
        os.close(_descriptor(path, os.O_WRONLY | os.O_EXCL))


def open_private(path: str | Path) -> IO[str]:
    """Open ``path`` for writing text (truncated), created private if new."""
    fd = _descriptor(path, os.O_WRONLY | os.O_TRUNC)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def write_private(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (truncated), created private if new."""
    with os.fdopen(_descriptor(path, os.O_WRONLY | os.O_TRUNC), "wb") as file:
        file.write(data)
