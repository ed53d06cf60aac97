"""Values that would make a line too long for 8bit (issue 12, item 3): the part
goes quoted-printable for that recipient, so a 900 KB field can be sent at all
(a next hop answers a line over 998 characters with 500 Line too long)."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest

from warmup.core.recipients.template import parse_template

TEMPLATE = (
    b"From: a@shop.example\r\nSubject: Hi\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello {{ story }}\r\n"
    b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{{ story }}</p>\r\n"
    b"--b--\r\n"
)


def _parts(message: bytes) -> list[Any]:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    return [part for part in parsed.walk() if not part.is_multipart()]


@pytest.mark.parametrize("story", ["ü" * 450_000, "x<" * 600])
def test_a_long_value_is_sent_quoted_printable(story: str) -> None:
    message = parse_template(TEMPLATE).render({"story": story})
    assert max(len(line) for line in message.split(b"\r\n")) <= 998
    plain, html = _parts(message)
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain.get_content().replace("\r\n", "\n") == f"Hello {story}\n"
    assert html.get_content().replace("\r\n", "\n") == (
        f"<p>{story.replace('<', '&lt;')}</p>\n"
    )


def test_short_values_stay_8bit() -> None:
    message = parse_template(TEMPLATE).render({"story": "Zoë"})
    plain, _ = _parts(message)
    assert plain["Content-Transfer-Encoding"] == "8bit"
    assert "Hello Zoë\r\n".encode() in message
