"""Streaming readers for recipient lists (CSV, JSONL) and plain address lists.

Rows are read one at a time with constant memory; a bad row becomes a
:class:`~warmup.app.enqueue.SourceRow` carrying its error, never an exception.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from warmup.app.rows import SourceRow
from warmup.core.errors import InputError

__all__ = ["RowReader", "detect_format"]

FORMATS = ("csv", "jsonl")
# Far above any value a row may hold (core.recipients.recipient.MAX_FIELD_BYTES), so a
# long
# value is refused by name; a field longer still is refused without its column.
MAX_LINE_BYTES = 16 << 20
csv.field_size_limit(MAX_LINE_BYTES)
MAX_COLUMNS = 1000
MAX_COLUMN_NAME = 128


def _shown(names: list[str], count: int = 10) -> str:
    """A few column names for a message: never the whole of a hostile header."""
    listed = ", ".join(name[:40] for name in names[:count])
    more = f" and {len(names) - count:,} more" if len(names) > count else ""
    return (listed or "nothing") + more


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
        try:
            header = next(self._reader, None)
        except csv.Error as exc:
            raise InputError(self.path, f"line 1: {exc}") from None
        if header is None:
            raise InputError(self.path, "the file is empty; expected a header row")
        self._first: list[list[str]] = []
        if len(header) == 1 and "@" in header[0]:
            # A bare list of addresses, one per line, without a header row.
            self._first, header = [header], [self.required]
        if len(header) > MAX_COLUMNS:
            raise InputError(
                self.path,
                f"line 1: {len(header):,} columns in the header; at most {MAX_COLUMNS}",
            )
        long = next((name for name in header if len(name) > MAX_COLUMN_NAME), None)
        if long is not None:
            raise InputError(
                self.path,
                f"line 1: a column name longer than {MAX_COLUMN_NAME} characters "
                f"({long[:40]!r}…)",
            )
        self.columns = [self._column(name) for name in header]
        if self.required not in self.columns:
            raise InputError(
                self.path,
                (
                    f"line 1: no {self.required!r} column in the header "
                    f"(found: {_shown(header)})"
                ),
            )

    def _column(self, name: str) -> str:
        cleaned = name.strip()
        return self.required if cleaned.lower() in self._aliases else cleaned

    def _records(self) -> Iterator[list[str] | str]:
        """The CSV records, or the csv module's complaint about one (a field
        over MAX_LINE_BYTES): the reader goes on at the next line."""
        yield from self._first
        while True:
            try:
                record = next(self._reader, None)
            except csv.Error as exc:
                yield str(exc)
                continue
            if record is None:
                return
            yield record

    def _csv(self) -> Iterator[SourceRow]:
        width = len(self.columns)
        for record in self._records():
            line = self._reader.line_num
            if isinstance(record, str):
                yield SourceRow(line=line, error=record)
                continue
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

    def _lines(self) -> Iterator[bytes | None]:
        """The file's lines; None for one over MAX_LINE_BYTES (skipped unread)."""
        while raw := self._binary.readline(MAX_LINE_BYTES + 1):
            if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
                yield raw
                continue
            while (rest := self._binary.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield None

    def _jsonl(self) -> Iterator[SourceRow]:
        for line_no, raw in enumerate(self._lines(), start=1):
            if raw is None:
                error = f"line longer than {MAX_LINE_BYTES:,} bytes"
                yield SourceRow(line=line_no, error=error)
                continue
            if not raw.strip():
                continue
            yield _parse_json_line(line_no, raw)


def _parse_json_line(line: int, raw: bytes) -> SourceRow:
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        return SourceRow(line=line, error="not valid UTF-8")
    except json.JSONDecodeError as exc:
        return SourceRow(line=line, error=f"bad JSON: {exc.msg} at column {exc.colno}")
    except ValueError as exc:  # an integer of over 4,300 digits
        return SourceRow(line=line, error=f"bad JSON: {exc}")
    except RecursionError:
        return SourceRow(line=line, error="bad JSON: nested too deeply")
    return _json_row(line, data)


def _json_row(line: int, data: Any) -> SourceRow:
    if not isinstance(data, dict):
        return SourceRow(
            line=line, error=f"expected a JSON object, got {type(data).__name__}"
        )
    if len(data) > MAX_COLUMNS:
        return SourceRow(line=line, error=f"{len(data):,} keys; at most {MAX_COLUMNS}")
    values = {}
    for key, value in data.items():
        if len(key) > MAX_COLUMN_NAME:
            return SourceRow(
                line=line,
                error=f"a key longer than {MAX_COLUMN_NAME} characters ({key[:40]!r}…)",
            )
        if value is None:
            values[str(key)] = ""
        elif isinstance(value, str) and _has_surrogates(value):
            return SourceRow(line=line, error=f"{key}: not valid Unicode")
        elif isinstance(value, str | int | float | bool):
            values[str(key)] = str(value)
        else:
            return SourceRow(line=line, error=f"{key}: nested values are not supported")
    return SourceRow(line=line, values=values)
