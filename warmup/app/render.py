"""Per-recipient messages: the campaign's template or the relayed message, VERP
envelope, trace headers.

Every message carries ``Feedback-ID: CAMPAIGN:SENDER`` (Gmail's feedback loop:
Postmaster Tools reports spam rates per identifier), CAMPAIGN the campaign's id
and SENDER the bounce domain; a template or relayed message with its own
Feedback-ID keeps it. It is added before DKIM signing, which signs it."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import datetime, tzinfo
from email.utils import format_datetime

from warmup.app.ports import EngineStore
from warmup.app.sign import Held, MessageSigner
from warmup.core.attempt import Claimed
from warmup.core.bounces.verp import TRACE_HEADER, VERPToken, encode_verp
from warmup.core.recipients.template import Template, parse_template
from warmup.core.recipients.unsubscribe import (
    UnsubscribeLinks,
    UnsubscribeToken,
    list_headers,
)
from warmup.core.relay.message import header_names, with_headers
from warmup.core.settings import UnsubscribeSettings

__all__ = ["TRACE_HEADER", "Renderer", "renders_inline"]

# Relayed messages kept in memory: most campaigns send one message to many.
_MESSAGE_CACHE = 32
# A recipient's values render on the loop while they stay this small and a
# header gets no long non-ASCII value (RFC 2047 costs ~20 µs a character); a
# larger recipient renders in a thread, so the relay and the other lanes go on.
_INLINE_BYTES = 64 * 1024
_INLINE_ENCODED = 64


def renders_inline(template: Template, values: Mapping[str, str]) -> bool:
    """Whether rendering these values costs well under a millisecond."""
    total = 0
    for name, value in values.items():
        total += len(value)
        if (
            len(value) > _INLINE_ENCODED
            and name in template.header_placeholders
            and not value.isascii()
        ):
            return False
    return total <= _INLINE_BYTES


class Renderer:
    """Caches templates and relayed messages; renders one recipient per call."""

    def __init__(
        self,
        store: EngineStore,
        *,
        return_path: str,
        secret: bytes,
        signer: MessageSigner | None = None,
        unsubscribe: UnsubscribeSettings | None = None,
    ) -> None:
        self._store = store
        self._signer = signer or MessageSigner(())
        self._return_path = return_path
        self._secret = secret
        self._domain = return_path.rpartition("@")[2]
        unsubscribe = unsubscribe or UnsubscribeSettings()
        self._links = (
            UnsubscribeLinks(
                base_url=unsubscribe.base_url.rstrip("/"), mail_domain=self._domain
            )
            if unsubscribe.base_url
            else None
        )
        self._unsubscribe_relayed = unsubscribe.add_to_relayed
        self._templates: dict[int, Template] = {}
        # Relayed messages: bytes, header names, and whether it is one of our
        # delivery reports (sent with the null envelope sender).
        self._messages: dict[int, tuple[bytes, frozenset[str], bool]] = {}
        # The Date header has whole seconds: sends in the same second share it.
        self._date_key: tuple[int, tzinfo | None] | None = None
        self._date = ""

    def _date_header(self, now: datetime) -> str:
        # The second and the zone: cheaper to compare than a datetime (per send).
        key = (int(now.timestamp() // 1), now.tzinfo)
        if key != self._date_key:
            self._date_key, self._date = key, format_datetime(now)
        return self._date

    async def template(self, campaign_id: int) -> Template:
        found = self._templates.get(campaign_id)
        if found is None:
            data = await self._store.template_for(campaign_id)
            found = parse_template(data, source=f"campaign {campaign_id}")
            self._templates[campaign_id] = found
        return found

    async def relayed(self, message_id: int) -> tuple[bytes, frozenset[str], bool]:
        """A relayed message, its header names and whether it is a report of
        ours, from a small cache."""
        found = self._messages.pop(message_id, None)
        if found is None:
            content, report = await self._store.relayed_message(message_id)
            found = (content, header_names(content), report)
        self._messages[message_id] = found  # most recently used last
        while len(self._messages) > _MESSAGE_CACHE:
            del self._messages[next(iter(self._messages))]
        return found

    async def render(self, claimed: Claimed, now: datetime) -> tuple[str, bytes]:
        """(envelope sender, message bytes) for the recipient's next attempt."""
        token = VERPToken(recipient_id=claimed.id, attempt=claimed.attempts + 1)
        mail_from = encode_verp(
            token, return_path=self._return_path, secret=self._secret
        )
        trace = mail_from.partition("+")[2].partition("@")[0]
        if claimed.message_id is not None:
            content, names, report = await self.relayed(claimed.message_id)
            if report:  # a delivery report: null sender, nothing added
                return "", with_headers(content, [(TRACE_HEADER, trace)])
            return mail_from, self._render_relayed(claimed, trace, now, content, names)
        template = await self.template(claimed.campaign_id)
        headers = [
            ("Message-ID", f"<{trace}@{self._domain}>"),
            ("Date", self._date_header(now)),
            (TRACE_HEADER, trace),
        ]
        if "to" not in template.headers:
            headers.append(("To", claimed.address))
        if "feedback-id" not in template.headers:
            headers.append(("Feedback-ID", self._feedback_id(claimed)))
        headers.extend(self._unsubscribe_headers(claimed, template.headers))
        values = dict(claimed.fields)
        values.setdefault("email", claimed.address)
        if renders_inline(template, values):
            return mail_from, template.render(values, headers)
        return mail_from, await asyncio.to_thread(template.render, values, headers)

    async def render_signed(
        self, claimed: Claimed, now: datetime
    ) -> tuple[str, bytes] | Held:
        """:meth:`render`, then DKIM as the last step (every header is in place)."""
        mail_from, message = await self.render(claimed, now)
        signed = await self._signer.sign_off_loop(message, now)
        return signed if isinstance(signed, Held) else (mail_from, signed)

    def _render_relayed(
        self,
        claimed: Claimed,
        trace: str,
        now: datetime,
        content: bytes,
        names: frozenset[str],
    ) -> bytes:
        """The client's message as accepted, under our trace header; Message-ID and
        Date only when the client gave none."""
        headers = [(TRACE_HEADER, trace)]
        if "message-id" not in names:
            headers.append(("Message-ID", f"<{trace}@{self._domain}>"))
        if "date" not in names:
            headers.append(("Date", self._date_header(now)))
        if "feedback-id" not in names:
            headers.append(("Feedback-ID", self._feedback_id(claimed)))
        if self._unsubscribe_relayed:
            headers.extend(self._unsubscribe_headers(claimed, names))
        return with_headers(content, headers)

    def _feedback_id(self, claimed: Claimed) -> str:
        """Gmail's Feedback-ID: identifiers then the sender id, colon-separated."""
        return f"{claimed.campaign_id}:{self._domain}"

    def _unsubscribe_headers(
        self, claimed: Claimed, present: Collection[str]
    ) -> list[tuple[str, str]]:
        """The step that adds List-Unsubscribe and List-Unsubscribe-Post (RFC 2369,
        RFC 8058): none when the links are not configured or the message has its
        own ``List-Unsubscribe`` (the campaign tool's header stays untouched)."""
        if self._links is None or "list-unsubscribe" in present:
            return []
        token = UnsubscribeToken(
            recipient_id=claimed.id, campaign_id=claimed.campaign_id
        )
        return list_headers(token, self._links, secret=self._secret)
