"""Log output of the command line: readable text (default) or JSON lines.

Only the CLI configures logging (``--log-level``, ``--log-format``). Whatever a
module logs, the handler masks on its way out:

- recipient addresses (``j***@example.com``) in records at INFO and above;
- AUTH secrets (``AUTH PLAIN ********``) at every level.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from warmup.core.recipients.address import mask_addresses

__all__ = [
    "FORMATS",
    "JSONFormatter",
    "TextFormatter",
    "configure_logging",
    "redact",
]

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# "AUTH PLAIN <base64>" and the like: the mechanism stays, the secret goes. A
# mechanism is a known name in any case, or an upper-case word (RFC 4422), so
# prose such as "AUTH failed from 192.0.2.1" is left alone.
_MECHANISMS = (
    r"(?i:PLAIN|LOGIN|CRAM-MD5|DIGEST-MD5|XOAUTH2?|OAUTHBEARER|NTLM|GSSAPI"
    r"|EXTERNAL|ANONYMOUS|SCRAM-[A-Z0-9-]+)"
)
_AUTH = re.compile(
    rf"\b((?i:AUTH)\s+(?:{_MECHANISMS}|[A-Z][A-Z0-9_-]*)(?![\w-]))[ \t]+\S+"
)
# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def redact(text: str, *, addresses: bool = True) -> str:
    """``text`` without AUTH secrets and (if ``addresses``) recipient local parts."""
    text = _AUTH.sub(r"\1 ********", text)
    return mask_addresses(text) if addresses else text


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def _redacted(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` with its message, string extras and traceback
    redacted (the original is shared with other handlers: left alone)."""
    addresses = record.levelno >= logging.INFO
    clean = copy.copy(record)
    clean.msg, clean.args = redact(record.getMessage(), addresses=addresses), None
    for key, value in _extras(record).items():
        if isinstance(value, str):
            setattr(clean, key, redact(value, addresses=addresses))
    if record.exc_info:
        text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        clean.exc_text = redact(text, addresses=addresses)
    if record.stack_info:
        clean.stack_info = redact(record.stack_info, addresses=addresses)
    return clean


class TextFormatter(logging.Formatter):
    """``time level logger: message``, redacted."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(_redacted(record))


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then any extras
    (and ``exception``, ``stack``), redacted."""

    def format(self, record: logging.LogRecord) -> str:
        record = _redacted(record)
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class _QuietScheduler(logging.Filter):
    """APScheduler's per-job chatter ("Running job …", "… executed
    successfully") is DEBUG, not INFO: at INFO the log says what the operator
    needs. Its warnings and errors pass as they are."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("apscheduler") and record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.level <= logging.DEBUG
        return True


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (click's test runner
    swaps it), like logging's last-resort handler."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(level: str, log_format: str) -> logging.Handler | None:
    """Send the root logger's records to stderr as ``text`` or ``json``.

    Replaces the handler an earlier call installed. Like ``logging.basicConfig``,
    it changes nothing when logging was set up by someone else (an application
    that embeds this CLI), and then returns None.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _StderrHandler)]
    if len(ours) != len(root.handlers):
        return None
    for handler in ours:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_QuietScheduler(logging.getLevelName(level.upper())))
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
