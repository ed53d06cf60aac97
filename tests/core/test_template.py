from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmup.core.errors import TemplateError
from warmup.core.recipients.template import parse_template

MULTIPART = b"""\
From: News <news@example.com>
To: {{ email }}
Subject: Hello {{ first_name }}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="XX"

--XX
Content-Type: text/plain; charset=utf-8

Hi {{ first_name }}, your code is {{code}}.
--XX
Content-Type: text/html; charset=utf-8

<p>Hi {{ first_name }}</p>
--XX--
"""


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_placeholders_are_found_once() -> None:
    template = parse_template(MULTIPART)
    assert template.placeholders == {"email", "first_name", "code"}
    assert template.subject == "Hello {{ first_name }}"


def test_rendering_fills_headers_and_every_text_part() -> None:
    template = parse_template(MULTIPART)
    values = {"email": "ann@example.com", "first_name": "Ann", "code": "42"}
    data = template.render(values, [("Message-ID", "<1@warmup>")])
    assert b"\r\n" in data and b"\n\n" not in data.replace(b"\r\n", b"")
    message = _parse(data)
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Hello Ann"
    assert message["Message-ID"] == "<1@warmup>"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert "Hi Ann, your code is 42." in plain.get_content()
    assert "<p>Hi Ann</p>" in html.get_content()


def test_non_ascii_values_are_encoded_properly() -> None:
    template = parse_template(MULTIPART)
    data = template.render(
        {"email": "a@example.com", "first_name": "Jörg <&>", "code": "é"}
    )
    assert data.isascii() is False  # 8bit body
    header_block = data.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()
    message = _parse(data)
    assert message["Subject"] == "Hello Jörg <&>"
    html = message.get_body(("html",))
    assert html is not None
    assert "Jörg &lt;&amp;&gt;" in html.get_content()  # escaped in HTML only
    plain = message.get_body(("plain",))
    assert plain is not None and "Jörg <&>" in plain.get_content()


def test_address_headers_keep_the_address_when_the_name_is_not_ascii() -> None:
    template = parse_template(
        b"To: {{ name }} <{{ email }}>\r\nSubject: s\r\n\r\nbody\r\n"
    )
    message = _parse(template.render({"name": "Zoë", "email": "z@example.com"}))
    assert message["To"].addresses[0].addr_spec == "z@example.com"
    assert message["To"].addresses[0].display_name == "Zoë"


def test_parts_too_wide_for_8bit_are_quoted_printable() -> None:
    long_line = b"x" * 1500 + b" {{ name }}"
    template = parse_template(b"Subject: s\r\n\r\n" + long_line + b"\r\n")
    data = template.render({"name": "Ann"})
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert b"quoted-printable" in data
    assert _parse(data).get_content().rstrip() == "x" * 1500 + " Ann"


def test_parts_without_placeholders_are_kept_byte_for_byte() -> None:
    raw = b"Subject: {{ s }}\r\nContent-Type: text/plain\r\n\r\nplain body\r\n"
    data = parse_template(raw).render({"s": "hi"})
    assert data.endswith(b"\r\n\r\nplain body\r\n")


def test_a_missing_value_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        parse_template(MULTIPART).render({"email": "a@example.com"})


@pytest.mark.parametrize("bad", [b"", b"just some text without headers\n"])
def test_unusable_templates_are_refused(bad: bytes) -> None:
    with pytest.raises(TemplateError):
        parse_template(bad, source="t.eml")


@given(
    value=st.text(
        alphabet=st.characters(
            exclude_characters="\r\n\x00", exclude_categories=["Cs"]
        ),
        max_size=80,
    )
)
def test_any_single_line_value_round_trips_through_the_body(value: str) -> None:
    template = parse_template(
        b"Subject: s\r\nContent-Type: text/plain\r\n\r\n[{{ v }}]\r\n"
    )
    message = _parse(template.render({"v": value}))
    assert f"[{value}]" in message.get_content()
