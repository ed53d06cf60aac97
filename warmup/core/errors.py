"""The warmup exception tree.

Every error warmup raises on purpose derives from :class:`WarmupError` and mixes in
the builtin it behaves like, so callers can catch either::

    WarmupError
    ├── ConfigError(ValueError)        config or schedule files are wrong (all issues)
    ├── InputError(ValueError)         a user-supplied file cannot be used at all
    │   ├── TemplateError              a message template cannot be parsed or rendered
    │   └── UnsafeInputError           refused as an attack: XML/zip bomb, entities
    ├── StoreError(RuntimeError)       the database could not do what was asked
    └── FetchError(ConnectionError)    an ISP's reputation feed could not be read

An SMTP 4xx/5xx reply is never an exception: it is a value.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "FetchError",
    "InputError",
    "StoreError",
    "TemplateError",
    "UnsafeInputError",
    "WarmupError",
]


class WarmupError(Exception):
    """Root of every error warmup raises on purpose."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigIssue:
    """One problem in one file, at one dotted path."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class ConfigError(WarmupError, ValueError):
    """Configuration or schedules are invalid; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        count = len(self.issues)
        if count == 1:  # one problem, one line
            super().__init__(f"configuration problem: {self.issues[0]}")
            return
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"{count} configuration {noun}:\n{lines}")


class InputError(WarmupError, ValueError):
    """A user-supplied file or value cannot be used at all."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.detail = message
        super().__init__(f"{source}: {message}")


class TemplateError(InputError):
    """A message template cannot be parsed or rendered."""


class UnsafeInputError(InputError):
    """Input refused as an attack or a resource bomb (XML entities, DTDs, a
    decompression past its bound): nothing of it is used."""


class StoreError(WarmupError, RuntimeError):
    """The database failed to do what was asked."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"database error during {operation}: {detail}")


class FetchError(WarmupError, ConnectionError):
    """An ISP's reputation feed (Postmaster Tools, SNDS) could not be read."""

    def __init__(self, source: str, detail: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"could not read {source}: {detail}")
