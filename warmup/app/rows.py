"""Input rows and the problems found in them, shared by every bulk loader."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

__all__ = ["MAX_PROBLEMS", "ProblemLog", "RowProblem", "SourceRow", "batches"]

MAX_PROBLEMS = 1000  # problems kept for the report; all are counted


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceRow:
    """One row of an input file: its values, or why it could not even be read."""

    line: int
    values: dict[str, str] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RowProblem:
    line: int
    message: str


@dataclass(slots=True, kw_only=True)
class ProblemLog:
    """Counts rows and invalid rows; keeps the first MAX_PROBLEMS problems."""

    rows: int = 0
    invalid: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def add_problem(self, line: int, message: str) -> None:
        self.invalid += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(RowProblem(line=line, message=message))


def batches(rows: Iterable[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch
