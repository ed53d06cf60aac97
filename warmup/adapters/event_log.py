"""The accounting log: outcome events appended as JSON lines, rotated by size
(PATH -> PATH.1 -> PATH.2 …, keeping ``keep`` old files), for SIEM/ELK."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from warmup.app.shipping import DeliveryError
from warmup.core.settings import EventLogSettings

__all__ = ["EventLog", "event_line"]


def event_line(event: Mapping[str, Any]) -> str:
    """One event as one JSON line (instants in ISO 8601)."""
    fields = {
        k: v.isoformat() if isinstance(v, datetime) else v for k, v in event.items()
    }
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"


class EventLog:
    """An EventSink writing every event to the accounting log."""

    types: frozenset[str] = frozenset()
    retry_for = timedelta(days=36500)  # a full disk is retried, never given up
    batch = 1000
    lease = timedelta(minutes=1)  # a batch's append and fsync

    def __init__(self, settings: EventLogSettings) -> None:
        assert settings.log is not None
        self.path = Path(settings.log)
        self.rotate_bytes = settings.rotate_bytes
        self.keep = settings.keep
        self.name = self.name_for(settings.log)

    @staticmethod
    def name_for(path: str) -> str:
        return f"log:{Path(path)}"

    async def deliver(self, events: Sequence[Mapping[str, Any]], now: datetime) -> None:
        lines = [event_line(e).encode() for e in events]
        try:
            await asyncio.to_thread(self._append, lines)
        except OSError as exc:
            raise DeliveryError(self.name, f"{exc.strerror}: {exc.filename}") from exc

    def _append(self, lines: list[bytes]) -> None:
        """Append the lines, starting a new file whenever the next line would
        take this one past ``rotate_bytes``; fsync before returning."""
        out = self.path.open("ab")
        try:
            size = out.tell()
            for line in lines:
                if size and size + len(line) > self.rotate_bytes:
                    out.flush()
                    os.fsync(out.fileno())
                    out.close()
                    self._rotate()
                    out = self.path.open("ab")
                    size = 0
                out.write(line)
                size += len(line)
            out.flush()
            os.fsync(out.fileno())
        finally:
            out.close()

    def _rotate(self) -> None:
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        oldest.unlink(missing_ok=True)
        for number in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{number + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
