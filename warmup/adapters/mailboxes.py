"""Mail containers on disk (stdlib ``mailbox``): .eml files, mbox files, maildirs.

:func:`mails_in` reads any of them for ``warmup bounces parse|ingest``;
:class:`MaildirInbox` is the bounce mailbox ``warmup run`` polls: it hands out the
mails not yet marked seen and marks one seen only after it was handled, so a
crash or a database outage in between means the mail is read again, never lost.
"""

from __future__ import annotations

import mailbox
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MaildirInbox", "mails_in"]

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


class MaildirInbox:
    """The unseen mails of one maildir (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        mailbox.Maildir(self.path, factory=None, create=True)  # tmp/, new/, cur/
        # Where unseen() found each key, so mark_seen() only renames it.
        self._files: dict[str, Path] = {}

    def unseen(self, limit: int = 500) -> list[tuple[str, bytes]]:
        """Up to ``limit`` (key, bytes) of mails not yet marked seen, oldest first.

        Decided from the file names alone (``new/``, or ``cur/`` without the S
        flag in the ``:2,`` info), so a poll costs a directory listing, not a read
        of every mail handled before."""
        files: dict[str, Path] = {}
        for subdir in ("new", "cur"):
            try:
                names = os.listdir(self.path / subdir)
            except FileNotFoundError:
                continue
            for name in names:
                key, _, info = name.partition(":")
                if name.startswith(".") or (subdir == "cur" and "S" in info):
                    continue
                files[key] = self.path / subdir / name
        found: list[tuple[str, bytes]] = []
        self._files = {}
        for key in sorted(files, key=_arrival)[:limit]:
            try:
                found.append((key, files[key].read_bytes()))
            except FileNotFoundError:
                continue  # moved or removed by someone else meanwhile
            self._files[key] = files[key]
        return found

    def mark_seen(self, key: str) -> None:
        """Move a handled mail to ``cur`` with the Seen flag (a rename, as maildir
        readers do: the mail itself is not rewritten)."""
        path = self._files.pop(key, None)
        if path is None:
            return
        _, _, info = path.name.partition(":")
        flags = "".join(sorted(set(info.removeprefix("2,")) | {"S"}))
        try:
            path.rename(self.path / "cur" / f"{key}:2,{flags}")
        except FileNotFoundError:
            return  # moved or removed by someone else meanwhile


# A maildir file name: "<seconds>.<unique part>.<host>", where the unique part
# usually carries the microseconds (M123456) and a per-process counter (Q7), not
# zero-padded: "M99" sorts after "M123456" as text.
_NAME = re.compile(r"(\d+)\.(?:[^.]*?M(\d+))?(?:[^.]*?Q(\d+))?")


def _arrival(key: str) -> tuple[int, int, int, str]:
    """A key's place in delivery order: seconds, microseconds, counter, name."""
    found = _NAME.match(key)
    if found is None:
        return (0, 0, 0, key)
    seconds, micros, counter = found.groups()
    return (int(seconds), int(micros or 0), int(counter or 0), key)
