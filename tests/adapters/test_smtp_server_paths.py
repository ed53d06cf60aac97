"""ServerSession reads a plain MAIL/RCPT path itself (aiosmtpd's parser defines a
class on every call); every path must read exactly as aiosmtpd's parser reads it."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP

from warmup.adapters.smtp_server import ServerSession, SMTPListener


def _session(local_part_limit: int = 0) -> ServerSession:
    listener = SMTPListener(lambda: _session())
    session = ServerSession(listener, object())
    session.local_part_limit = local_part_limit
    return session


PATHS = [
    "<ann@example.com>",
    "<ann@example.com> SIZE=1200",
    "<first.last+tag@mail.example.co.jp>  BODY=8BITMIME SIZE=9",
    "<ann@example.com>\tSIZE=1",
    "<ann@example.com> (a comment) SIZE=1",
    "<ann@example.com>(a comment)",
    "<A_B-C@Ex-Ample.COM>x",
    "<ann@example.com>>",
    "<>",
    " <ann@example.com>",
    "ann@example.com",
    "<ann@example.com",
    '<"ann smith"@example.com>',
    "<ann@[127.0.0.1]>",
    "<ann..b@example.com>",
    "<.ann@example.com>",
    "<ann@example.com.>",
    "<ann@-example.com>",
    "<ann@host>",
    "<a b@c.d>",
    "<broken",
    "<анна@example.com>",
    "",
]


@pytest.mark.parametrize("path", PATHS)
def test_a_path_reads_as_aiosmtpds_parser_reads_it(path: str) -> None:
    session = _session()
    assert session._getaddr(path) == SMTP._getaddr(session, path)


@pytest.mark.parametrize("path", ["<abcd@example.com>", "<abc@example.com> SIZE=1"])
def test_the_local_part_limit_still_holds(path: str) -> None:
    session = _session(local_part_limit=3)
    assert session._getaddr(path) == SMTP._getaddr(session, path)
    if path.startswith("<abcd"):
        assert session._getaddr(path) == (None, None)
