"""Streaming readers for recipient lists (CSV, JSONL) and plain address lists.

Rows are read one at a time with constant memory; a bad row becomes a
:class:`~warmup.app.enqueue.SourceRow` carrying its error, never an exception.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from warmup.app.rows import SourceRow
from warmup.core.errors import InputError

__all__ = ["RowReader", "detect_format"]

FORMATS = ("csv", "jsonl")
csv.field_size_limit(1 << 20)


def detect_format(path: str, given: str | None) -> str:
    if given:
        return given
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".txt", ""):
        return "csv"
    raise InputError(path, f"cannot tell the format from {suffix!r}; use --format")


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class RowReader:
    """Iterate SourceRows of a CSV or JSONL file ('-' for stdin)."""

    def __init__(
        self,
        path: str,
        fmt: str,
        *,
        required: str = "email",
        aliases: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.format = fmt
        self.required = required
        # Header names (any case) read as the required column.
        self._aliases = {required, *aliases}
        if path == "-":
            self._binary: IO[bytes] = sys.stdin.buffer
            self.size = 0
        else:
            try:
                self._binary = open(path, "rb")  # noqa: SIM115 - closed in close()
                self.size = Path(path).stat().st_size
            except OSError as exc:
                raise InputError(path, f"cannot open: {exc.strerror}") from None
        self.columns: list[str] = []
        self._rows = self._csv() if fmt == "csv" else self._jsonl()
        if fmt == "csv":
            try:
                self._start_csv()
            except InputError:
                self.close()
                raise

    def position(self) -> int:
        """Bytes consumed so far (for progress)."""
        try:
            return self._binary.tell()
        except OSError:
            return 0

    def __iter__(self) -> Iterator[SourceRow]:
        return self._rows

    def close(self) -> None:
        if self._binary is sys.stdin.buffer:
            return
        text = getattr(self, "_text", None)
        (text or self._binary).close()

    # -- CSV ---------------------------------------------------------------------

    def _start_csv(self) -> None:
        self._text = io.TextIOWrapper(
            self._binary, encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        self._reader = csv.reader(self._text)
        header = next(self._reader, None)
        if header is None:
            raise InputError(self.path, "the file is empty; expected a header row")
        self._first: list[list[str]] = []
        if len(header) == 1 and "@" in header[0]:
            # A bare list of addresses, one per line, without a header row.
            self._first, header = [header], [self.required]
        self.columns = [self._column(name) for name in header]
        if self.required not in self.columns:
            raise InputError(
                self.path,
                (
                    f"line 1: no {self.required!r} column in the header "
                    f"(found: {', '.join(header) or 'nothing'})"
                ),
            )

    def _column(self, name: str) -> str:
        cleaned = name.strip()
        return self.required if cleaned.lower() in self._aliases else cleaned

    def _csv(self) -> Iterator[SourceRow]:
        width = len(self.columns)
        for record in itertools.chain(self._first, self._reader):
            line = self._reader.line_num
            if not record or record == [""]:
                continue
            if len(record) != width:
                yield SourceRow(
                    line=line, error=(f"expected {width} columns, got {len(record)}")
                )
                continue
            if any(_has_surrogates(value) for value in record):
                yield SourceRow(line=line, error="not valid UTF-8")
                continue
            yield SourceRow(
                line=line, values=dict(zip(self.columns, record, strict=True))
            )

    # -- JSONL -------------------------------------------------------------------

    def _jsonl(self) -> Iterator[SourceRow]:
        for line_no, raw in enumerate(self._binary, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except UnicodeDecodeError:
                yield SourceRow(line=line_no, error="not valid UTF-8")
                continue
            except json.JSONDecodeError as exc:
                yield SourceRow(
                    line=line_no, error=f"bad JSON: {exc.msg} at column {exc.colno}"
                )
                continue
            yield _json_row(line_no, data)


def _json_row(line: int, data: Any) -> SourceRow:
    if not isinstance(data, dict):
        return SourceRow(
            line=line, error=f"expected a JSON object, got {type(data).__name__}"
        )
    values = {}
    for key, value in data.items():
        if value is None:
            values[str(key)] = ""
        elif isinstance(value, str | int | float | bool):
            values[str(key)] = str(value)
        else:
            return SourceRow(line=line, error=f"{key}: nested values are not supported")
    return SourceRow(line=line, values=values)
