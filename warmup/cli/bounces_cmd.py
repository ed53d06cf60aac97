"""``warmup bounces parse``: bounce mails -> one JSON line per recipient.

Containers are opened here, in the shell, with the stdlib ``mailbox`` module; each
mail's bytes go to the pure :func:`warmup.core.bounces.parse_bounce`.
"""

from __future__ import annotations

import mailbox
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from warmup.cli.common import EXIT_RUNTIME, echo_json
from warmup.core.bounces import BounceReport, parse_bounce

__all__ = ["bounces", "mails_in", "report_lines"]

_MBOX_MAGIC = b"From "


def mails_in(source: str) -> Iterator[tuple[str, bytes]]:
    """(source label, mail bytes) for every mail in a file, mbox, maildir or ``-``."""
    if source == "-":
        yield "-", sys.stdin.buffer.read()
        return
    path = Path(source)
    if path.is_dir():
        yield from _directory(path)
        return
    with path.open("rb") as handle:
        head = handle.read(len(_MBOX_MAGIC))
    if head == _MBOX_MAGIC:
        yield from _mbox(path)
        return
    yield source, path.read_bytes()


def _directory(path: Path) -> Iterator[tuple[str, bytes]]:
    if (path / "cur").is_dir() or (path / "new").is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.iterkeys()):
            yield f"{path}:{key}", box.get_bytes(key)
        return
    for child in sorted(path.iterdir()):
        if child.is_file():
            yield from mails_in(str(child))


def _mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield f"{path}:{number}", box.get_bytes(key)
    finally:
        box.close()


def report_lines(source: str, report: BounceReport) -> list[dict[str, object]]:
    """The JSON objects printed for one parsed mail."""
    if not report.recipients:
        return [
            {
                "source": source,
                "recipient": None,
                "status": None,
                "action": None,
                "verdict": None,
                "reason": None,
                "reply": None,
                "kind": report.kind.value,
            }
        ]
    return [
        {
            "source": source,
            "recipient": item.recipient,
            "status": item.status,
            "action": item.action,
            "verdict": item.verdict.value,
            "reason": item.reason,
            "reply": item.reply,
            "kind": report.kind.value,
        }
        for item in report.recipients
    ]


@click.group()
def bounces() -> None:
    """Read bounce mails (DSNs, NDRs, ARF reports, auto-replies)."""


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
def parse(paths: tuple[str, ...]) -> None:
    """Parse .eml files, mbox files, maildirs (cur/new) or '-' for stdin.

    Prints one JSON object per recipient: source, recipient, status, action,
    verdict, reason, reply and kind. A mail that is not a bounce gives one line
    with "kind": "not-bounce".
    """
    failed = False
    for path in paths:
        try:
            for source, data in mails_in(path):
                lines = report_lines(source, parse_bounce(data))
                try:
                    for line in lines:
                        echo_json(line)
                except BrokenPipeError:
                    # `| head` closed the pipe: stop quietly (recipe from the
                    # Python docs on SIGPIPE), not once per remaining file.
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
                    sys.exit(EXIT_RUNTIME)
        except (OSError, mailbox.Error) as exc:
            click.echo(f"{path}: cannot read: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(EXIT_RUNTIME)


bounces.add_command(parse)
