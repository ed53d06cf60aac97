"""Log output: text or JSON lines, recipients and AUTH secrets masked."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from warmup.cli.logs import JSONFormatter, TextFormatter, configure_logging, redact


def _record(
    message: str, *args: object, level: int = logging.INFO, **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord(
        "warmup.app.outcome", level, "f.py", 1, message, args, None
    )
    record.__dict__.update(extra)
    return record


def test_json_lines_have_time_level_logger_message_and_extras() -> None:
    record = _record("lane %s/%s: %s", "127.0.0.2", "gmail", "throttle", port=9108)
    entry = json.loads(JSONFormatter().format(record))
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "level": "info",
        "logger": "warmup.app.outcome",
        "message": "lane 127.0.0.2/gmail: throttle",
        "port": 9108,
    }


def test_recipients_are_masked_at_info_and_above_but_not_at_debug() -> None:
    reply = "550 5.1.1 <john.doe@gmail.com>: no such user"
    for level in (logging.INFO, logging.WARNING, logging.ERROR):
        record = _record("reply %r", reply, level=level, recipient="ann@example.com")
        entry = json.loads(JSONFormatter().format(record))
        assert "john.doe" not in entry["message"]
        assert "<j***@gmail.com>" in entry["message"]
        assert entry["recipient"] == "a***@example.com"
        text = TextFormatter().format(_record("reply %r", reply, level=level))
        assert "<j***@gmail.com>" in text and "john.doe" not in text
    debug = _record("reply %r", reply, level=logging.DEBUG)
    assert "john.doe@gmail.com" in TextFormatter().format(debug)


def test_auth_secrets_are_masked_at_every_level() -> None:
    for level in (logging.DEBUG, logging.INFO):
        line = TextFormatter().format(
            _record("client said %s", "AUTH PLAIN AGpvaG4Ac2VjcmV0", level=level)
        )
        assert "AUTH PLAIN ********" in line and "AGpvaG4Ac2VjcmV0" not in line
    assert redact("auth login dXNlcg==") == "auth login ********"
    assert redact("AUTH XOAUTH2 dXNlcj1h") == "AUTH XOAUTH2 ********"
    assert redact("250-AUTH PLAIN LOGIN") == "250-AUTH PLAIN ********"


@pytest.mark.parametrize(
    "line",
    [
        "relay: AUTH failed from 192.0.2.5",
        "relay: AUTH refused from 192.0.2.5: locked out",
        "relay: cannot check AUTH: users: cannot read",
    ],
)
def test_prose_about_auth_is_not_masked(line: str) -> None:
    """The bug: "AUTH failed from IP" came out as "AUTH failed ******** IP"."""
    assert redact(line) == line
    assert line in TextFormatter().format(_record(line, level=logging.WARNING))


def test_exceptions_are_included_and_masked() -> None:
    try:
        raise ValueError("bad recipient bob@example.org")
    except ValueError:
        record = logging.LogRecord(
            "warmup", logging.ERROR, "f.py", 1, "failed", None, sys.exc_info()
        )
    entry = json.loads(JSONFormatter().format(record))
    assert "ValueError: bad recipient b***@example.org" in entry["exception"]
    text = TextFormatter().format(record)
    assert "b***@example.org" in text and "bob@" not in text
    # The record itself is left alone for other handlers.
    assert record.exc_text is None and record.getMessage() == "failed"


def test_stack_info_is_included_and_masked() -> None:
    record = _record("look", stack_info="File 'x.py', to eve@example.com")
    entry = json.loads(JSONFormatter().format(record))
    assert entry["stack"] == "File 'x.py', to e***@example.com"


@contextmanager
def _bare_root() -> Iterator[logging.Logger]:
    """The root logger without the test runner's handlers, restored afterwards
    (entered inside the test: the runner adds its handlers after fixtures)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = []
    try:
        yield root
    finally:
        root.handlers = saved
        root.setLevel(level)


def test_configure_logging_writes_json_to_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = io.StringIO()
    with _bare_root() as root:
        first = configure_logging("info", "text")
        handler = configure_logging("debug", "json")  # replaces the first
        assert handler is not None and root.handlers == [handler] != [first]
        assert root.level == logging.DEBUG
        monkeypatch.setattr(sys, "stderr", stderr)  # followed, not captured once
        logging.getLogger("warmup.test").info("to %s", "zoe@example.net")
    (line,) = stderr.getvalue().splitlines()
    assert json.loads(line)["message"] == "to z***@example.net"


def test_configure_logging_leaves_logging_set_up_by_others_alone() -> None:
    other = logging.NullHandler()
    with _bare_root() as root:
        root.addHandler(other)
        assert configure_logging("debug", "json") is None
        assert root.handlers == [other]


@pytest.mark.parametrize(("level", "shown"), [("info", False), ("debug", True)])
def test_the_schedulers_job_chatter_is_debug(
    level: str, shown: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = io.StringIO()
    with _bare_root():
        assert configure_logging(level, "text") is not None
        monkeypatch.setattr(sys, "stderr", stderr)
        logging.getLogger("apscheduler.executors.default").info(
            'Running job "beat" (scheduled at 2030-01-01)'
        )
        logging.getLogger("apscheduler.scheduler").warning("job missed by 5 s")
        logging.getLogger("warmup.app.dispatcher").info("returned 3 recipients")
    err = stderr.getvalue()
    assert ("Running job" in err) is shown
    if shown:
        assert "DEBUG apscheduler.executors.default" in err
    assert "job missed by 5 s" in err and "returned 3 recipients" in err
