"""Message templates: parsed once, rendered per recipient by fast substitution.

Building an ``EmailMessage`` per recipient costs ~0.7 ms; here the template is
parsed and serialised once into literal byte segments and slots, and rendering a
recipient's mail is a join (~10 µs). ``{{ name }}`` placeholders may appear in
headers (encoded per RFC 2047 when not ASCII) and in text parts (sent as UTF-8
8bit, or quoted-printable for parts with lines too long for 8bit, in the template
or once a recipient's values are in; values are HTML-escaped inside text/html
parts).
"""

from __future__ import annotations

import binascii
import dataclasses
import email
import email.policy
import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from io import BytesIO

from warmup.core.errors import TemplateError

__all__ = ["PLACEHOLDER", "Template", "parse_template"]

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
_POLICY = email.policy.SMTP.clone(max_line_length=0, cte_type="8bit")
_FOLD = email.policy.SMTP.clone(max_line_length=78)
_MAX_8BIT_LINE = 900
_MAX_LINE = 999  # 998 characters and the CR of CRLF
_SENTINEL = "\x00{}\x00"
_SPLIT = re.compile(rb"\x00(\d+)\x00")

Encoder = Callable[[str], bytes]


def _plain(value: str) -> bytes:
    return value.encode("utf-8")


def _escaped(value: str) -> bytes:
    return html.escape(value, quote=True).encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Slot:
    name: str
    encode: Encoder


@dataclass(frozen=True, slots=True)
class _HeaderSlot:
    """A header whose value holds placeholders; encoded whole at render time."""

    name: str
    parts: tuple[str | _Slot, ...]


@dataclass(frozen=True, slots=True)
class _QPSlot:
    """A text part too wide for 8bit: substituted, then quoted-printable encoded."""

    parts: tuple[bytes | _Slot, ...]


Segment = bytes | _Slot | _HeaderSlot | _QPSlot


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template; :meth:`render` produces one recipient's message bytes."""

    segments: tuple[Segment, ...]
    placeholders: frozenset[str]
    subject: str
    # Lower-cased names of the template's own headers.
    headers: frozenset[str] = frozenset()

    # The placeholders that go into a header (bounded, RFC 2047-encoded).
    header_placeholders: frozenset[str] = frozenset()
    # The same template with every text part holding placeholders sent
    # quoted-printable: for values that make a line too long for 8bit.
    wide: Template | None = None

    def render(
        self, values: Mapping[str, str], headers: Sequence[tuple[str, str]] = ()
    ) -> bytes:
        """Substitute ``values`` and prepend ``headers``; KeyError if one is missing."""
        out = [_header_line(name, value) for name, value in headers]
        for segment in self.segments:
            if isinstance(segment, bytes):
                out.append(segment)
            elif isinstance(segment, _Slot):
                out.append(segment.encode(values[segment.name]))
            elif isinstance(segment, _HeaderSlot):
                text = "".join(
                    p if isinstance(p, str) else values[p.name] for p in segment.parts
                )
                out.append(_header_line(segment.name, text))
            else:
                raw = b"".join(
                    p if isinstance(p, bytes) else p.encode(values[p.name])
                    for p in segment.parts
                )
                out.append(_quoted_printable(raw))
        message = b"".join(out)
        if self.wide is not None and _too_long(message):
            return self.wide.render(values, headers)
        return message


def _too_long(message: bytes) -> bool:
    """Whether a line passes RFC 5322's 998 characters (plus its CR)."""
    return len(message) > _MAX_LINE and max(map(len, message.split(b"\n"))) > _MAX_LINE


def _quoted_printable(raw: bytes) -> bytes:
    encoded = binascii.b2a_qp(raw.replace(b"\r\n", b"\n"))
    return encoded.replace(b"\n", b"\r\n")


def _header_line(name: str, value: str) -> bytes:
    if value.isascii() and len(value) < 990:
        return f"{name}: {value}\r\n".encode("ascii")
    # Non-ASCII or very long: let the email package fold and RFC 2047-encode it,
    # address-aware for To/From/Cc (display names encoded, addresses kept).
    folded: str = _FOLD.header_factory(name, value).fold(policy=_FOLD)
    return folded.encode("ascii")


def _sentinel_text(text: str, names: list[str]) -> str:
    def swap(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return _SENTINEL.format(len(names) - 1)

    return PLACEHOLDER.sub(swap, text)


def parse_template(data: bytes, source: str = "template") -> Template:
    """Parse an .eml template once; TemplateError says what is wrong.

    When a text part sent 8bit holds placeholders, a quoted-printable twin is
    kept too, for the recipients whose values make a line too long for 8bit.
    """
    template = _parse(data, source, all_qp=False)
    if not any(isinstance(segment, _Slot) for segment in template.segments):
        return template
    return dataclasses.replace(template, wide=_parse(data, source, all_qp=True))


def _parse(data: bytes, source: str, *, all_qp: bool) -> Template:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not message.keys():
        raise TemplateError(source, "no headers found; expected an RFC 5322 message")
    if message.defects:
        raise TemplateError(source, f"malformed message: {message.defects[0]!r}")
    subject = str(message.get("Subject", ""))
    header_names = frozenset(name.lower() for name in message)
    names: list[str] = []
    header_slots = _take_header_slots(message, names)
    wide_parts = _prepare_text_parts(message, names, source, all_qp=all_qp)
    buffer = BytesIO()
    BytesGenerator(buffer, policy=_POLICY).flatten(message)
    body_segments = _split(buffer.getvalue(), names, wide_parts)
    return Template(
        segments=(*header_slots, *body_segments),
        placeholders=frozenset(names),
        subject=subject,
        headers=header_names,
        header_placeholders=frozenset(
            part.name
            for slot in header_slots
            for part in slot.parts
            if isinstance(part, _Slot)
        ),
    )


def _take_header_slots(message: EmailMessage, names: list[str]) -> list[_HeaderSlot]:
    slots = []
    for name, value in list(message.raw_items()):
        text = re.sub(r"\r?\n[ \t]", " ", str(value)).strip()
        if not PLACEHOLDER.search(text):
            continue
        parts: list[str | _Slot] = []
        for index, piece in enumerate(PLACEHOLDER.split(text)):
            if index % 2:
                names.append(piece)
                parts.append(_Slot(piece, _plain))
            elif piece:
                parts.append(piece)
        slots.append(_HeaderSlot(name, tuple(parts)))
        del message[name]
    return slots


def _prepare_text_parts(
    message: EmailMessage, names: list[str], source: str, *, all_qp: bool
) -> dict[int, bool]:
    """Re-encode text parts holding placeholders as 8bit UTF-8 with sentinels.

    Returns, per sentinel index, whether its part is HTML; parts too wide for 8bit
    are wrapped in QP markers (handled by ``_split``).
    """
    html_slots: dict[int, bool] = {}
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        assert isinstance(part, EmailMessage)
        try:
            text = part.get_content()
        except (LookupError, UnicodeError) as exc:
            raise TemplateError(source, f"cannot decode a text part: {exc}") from None
        if not PLACEHOLDER.search(text):
            continue
        first = len(names)
        marked = _sentinel_text(text, names)
        is_html = part.get_content_subtype() == "html"
        for index in range(first, len(names)):
            html_slots[index] = is_html
        wide = all_qp or any(len(line) > _MAX_8BIT_LINE for line in marked.splitlines())
        if wide:
            marked = f"\x00qp\x00{marked}\x00/qp\x00"
        _set_text(part, marked, root=part is message)
        if wide:
            part.replace_header("Content-Transfer-Encoding", "quoted-printable")
    return html_slots


def _set_text(part: Message, text: str, *, root: bool) -> None:
    subtype = part.get_content_subtype()
    params = {k: v for k, v in part.get_params(failobj=[])[1:] if k != "charset"}
    assert isinstance(part, EmailMessage)
    part.set_content(text, subtype=subtype, charset="utf-8", cte="8bit", params=params)
    if not root:
        del part["MIME-Version"]  # set_content adds it; only the top needs it


def _split(data: bytes, names: list[str], html_slots: dict[int, bool]) -> list[Segment]:
    segments: list[Segment] = []
    for chunk_index, chunk in enumerate(re.split(rb"\x00(/?qp)\x00", data)):
        if chunk_index % 4 == 1 or chunk_index % 4 == 3:
            continue  # the markers themselves
        pieces = _pieces(chunk, names, html_slots)
        if chunk_index % 4 == 2:
            segments.append(_QPSlot(tuple(pieces)))
        else:
            segments.extend(pieces)
    return segments


def _pieces(
    chunk: bytes, names: list[str], html_slots: dict[int, bool]
) -> list[bytes | _Slot]:
    pieces: list[bytes | _Slot] = []
    for index, piece in enumerate(_SPLIT.split(chunk)):
        if index % 2:
            slot = int(piece)
            encoder = _escaped if html_slots.get(slot) else _plain
            pieces.append(_Slot(names[slot], encoder))
        elif piece:
            pieces.append(piece)
    return pieces
