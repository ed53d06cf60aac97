"""Tables that fit the console: at 80 columns and in a pipe no row wraps and no
cell is cut. Optional columns are left out, lowest ``keep`` first, until the table
fits; what they held is printed below the table, one wrapped line per row
("127.0.0.2 gmail: last event throttle · 421 4.7.28 …"). When even the columns
that always show do not fit, every row becomes such lines.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "fit_table", "shorten", "wrapped"]

INDENT = "  "


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    header: str
    cells: Sequence[str]  # one per row
    justify: Literal["left", "right"] = "left"
    # None: always in the table; else left out when the table does not fit,
    # the lowest first (and its cells go below the table, after ``label``).
    keep: int | None = None
    label: str = ""
    in_key: bool = False  # part of the row's name: not repeated on its lines


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rows:
    title: str
    keys: Sequence[str]  # names each row in the lines below the table
    styles: Sequence[str | None] = field(default_factory=list)


def shorten(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters, cut at a space ("…" marks it)."""
    line = " ".join((text or "").split())
    if len(line) <= width:
        return line
    cut = line[: width - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > width // 2 else cut).rstrip(" ,;:·") + "…"


def wrapped(text: str, width: int, indent: str = "") -> list[Text]:
    """``text`` as lines of at most ``width``, broken between words."""
    lines = textwrap.wrap(
        text,
        width=max(width, 20),
        initial_indent=indent,
        subsequent_indent=indent + INDENT,
        break_on_hyphens=False,
    )
    return [Text(line) for line in lines]


def _table(rows: _Rows, columns: Sequence[Column]) -> Table:
    table = Table(
        title=rows.title,
        box=box.SIMPLE_HEAD,  # one space between columns, a rule under the head
        padding=(0, 0),
        show_edge=False,
    )
    for column in columns:
        table.add_column(column.header, justify=column.justify, no_wrap=True)
    for index in range(len(rows.keys)):
        style = rows.styles[index] if index < len(rows.styles) else None
        table.add_row(*(column.cells[index] for column in columns), style=style)
    return table


def _fits(console: Console, table: Table) -> bool:
    """Whether every cell fits unwrapped (measured as if the console were wide:
    at its own width rich would report the squeezed widths)."""
    measured = Measurement.get(console, console.options.update_width(10_000), table)
    return measured.maximum <= console.width


def _details(
    rows: _Rows, columns: Sequence[Column], width: int, *, every: bool = False
) -> list[Text]:
    lines: list[Text] = []
    for index, key in enumerate(rows.keys):
        parts = [
            f"{column.label or column.header} {column.cells[index]}".strip()
            if every or column.label
            else column.cells[index]
            for column in columns
            if column.cells[index] and not column.in_key
        ]
        if parts:
            lines.extend(wrapped(f"{key}: " + "; ".join(parts), width, INDENT))
    return lines


def fit_table(
    console: Console,
    *,
    title: str,
    keys: Sequence[str],
    columns: Sequence[Column],
    styles: Sequence[str | None] = (),
) -> list[RenderableType]:
    """The table with as many optional columns as fit, then the lines of what
    was left out; or, when nothing fits, a title and one block of lines per row."""
    rows = _Rows(title=title, keys=keys, styles=styles)
    # An optional column with nothing in it is no column at all.
    columns = [c for c in columns if c.keep is None or any(c.cells)]
    optional = sorted(
        (c for c in columns if c.keep is not None), key=lambda c: -(c.keep or 0)
    )
    for count in range(len(optional), -1, -1):
        kept = {id(c) for c in optional[:count]}
        shown = [c for c in columns if c.keep is None or id(c) in kept]
        table = _table(rows, shown)
        if _fits(console, table):
            left = [c for c in columns if c.keep is not None and id(c) not in kept]
            return [table, *_details(rows, left, console.width)]
    head = Text(title, style="italic")
    return [head, *_details(rows, columns, console.width, every=True)]
