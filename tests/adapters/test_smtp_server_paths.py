"""ServerSession's MAIL/RCPT path parser gives aiosmtpd's own results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup.adapters.smtp_server import ServerSession, SMTPListener

# Characters that matter to a path: atext, specials, quoting, comments, blanks.
_CHARS = "ab.Z09-_+=!#$%&'*/?^`{|}~@<>()[]\\\":;, \t\xe9"
_PLAIN = st.from_regex(r"[a-z0-9_+.-]{1,12}@[a-z0-9.-]{1,12}", fullmatch=True)


def _no_connection() -> ServerSession:
    raise AssertionError("no connection is made here")


def _session() -> ServerSession:
    loop = asyncio.new_event_loop()
    try:
        return ServerSession(SMTPListener(_no_connection), object(), loop=loop)
    finally:
        loop.close()


SESSION = _session()


def _outcome(parse: Callable[[str], object], arg: str) -> object:
    try:
        return parse(arg)
    except Exception as exc:  # aiosmtpd's parser raises on some input: the same
        return type(exc)


def _same(arg: str) -> None:
    theirs = _outcome(lambda a: SMTP._getaddr(SESSION, a), arg)
    assert _outcome(SESSION._getaddr, arg) == theirs, arg


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=_CHARS, max_size=30),
        st.builds(
            lambda lead, addr, rest: f"{lead}<{addr}>{rest}",
            st.sampled_from(["", " ", "\t", " ("]),
            st.one_of(_PLAIN, st.text(alphabet=_CHARS, max_size=20)),
            st.one_of(
                st.sampled_from(["", " SIZE=10", "  BODY=8BITMIME ", "x", "(c) A"]),
                st.text(alphabet=_CHARS, max_size=12),
            ),
        ),
    )
)
def test_any_path_is_parsed_as_aiosmtpd_parses_it(arg: str) -> None:
    _same(arg)


@pytest.mark.parametrize(
    "arg",
    [
        "<ann@gmail.com>",
        "<ann@gmail.com> SIZE=2115 BODY=8BITMIME",
        "<a..b@x.example>",
        "<.a@x>",
        "<a@x.>",
        "<ann@[127.0.0.1]>",
        '<"a b"@x.example>',
        "<ann@gmail.com> (comment) SIZE=1",
        "<@route.example:ann@gmail.com>",
        "ann@gmail.com",
        "<>",
        "<" + "l" * 65 + "@x.example>",  # over local_part_limit (if set)
        "<first.last+tag@mail.example.co.jp>  BODY=8BITMIME SIZE=9",
        "<ann@example.com>\tSIZE=1",
        "<ann@example.com>(a comment)",
        "<A_B-C@Ex-Ample.COM>x",
        "<ann@example.com>>",
        " <ann@example.com>",
        "<ann@example.com",
        "<ann@-example.com>",
        "<ann@host>",
        "<a b@c.d>",
        "<broken",
        "<анна@example.com>",
        "",
    ],
)
def test_known_paths_are_parsed_as_aiosmtpd_parses_them(arg: str) -> None:
    _same(arg)


def test_a_local_part_over_the_limit_is_refused_as_aiosmtpd_refuses_it() -> None:
    session = _session()
    session.local_part_limit = 64
    arg = "<" + "l" * 65 + "@x.example>"
    assert session._getaddr(arg) == (None, None)
    assert SMTP._getaddr(session, arg) == (None, None)
    assert session._getaddr("<ann@x.example>") == ("ann@x.example", "")
