"""One-click unsubscribe: a signed token in (HTTP POST or mail to the mailto
address), the recipient's address suppressed.

The token (see :mod:`warmup.core.recipients.unsubscribe`) names a recipient row and its
campaign. A token that is not signed with our secret, or names a row that does
not exist or belongs to another campaign, changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from warmup.app.ports import Clock
from warmup.core.recipients.address import AddressError, mask_address
from warmup.core.recipients.suppression import Suppression, make_suppression
from warmup.core.recipients.unsubscribe import (
    UnsubscribeScope,
    UnsubscribeToken,
    decode_unsubscribe,
    mailto_token,
)

__all__ = ["UnsubscribeStore", "Unsubscribed", "Unsubscriber"]

logger = logging.getLogger(__name__)

REASON = "unsubscribe"


class UnsubscribeStore(Protocol):
    async def unsubscribe_target(self, recipient_id: int) -> tuple[str, int] | None:
        """(address, campaign id) of a recipient row, or None."""
        ...

    async def unsubscribe(
        self, recipient_id: int, entry: Suppression, *, campaign_id: int | None
    ) -> bool:
        """Suppress and write the ``unsubscribed`` event at once; False if it
        was already so."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribed:
    address: str
    campaign_id: int
    scope: UnsubscribeScope
    new: bool  # False: it was already suppressed (a repeated click)


class Unsubscriber:
    def __init__(
        self,
        store: UnsubscribeStore,
        *,
        clock: Clock,
        secret: bytes,
        mail_domain: str,
        scope: UnsubscribeScope = UnsubscribeScope.global_,
    ) -> None:
        self._store = store
        self._clock = clock
        self._secret = secret
        self._mail_domain = mail_domain
        self._scope = scope

    def check(self, text: str) -> UnsubscribeToken | None:
        """The token if its signature holds (no database look-up)."""
        return decode_unsubscribe(text, secret=self._secret)

    async def by_token(self, text: str, *, source: str) -> Unsubscribed | None:
        """Suppress the address a token names; None: forged, malformed or unknown."""
        token = self.check(text)
        if token is None:
            return None
        return await self._apply(token, source)

    async def take(
        self, data: bytes, *, source: str, envelope_to: Sequence[str]
    ) -> str | None:
        """Mail to ``unsubscribe+TOKEN@bounce domain``: handled ("unsubscribe",
        or "forged" for a token that is not ours or names no recipient); None when the
        mail is not addressed there (it is some other handler's)."""
        text = mailto_token(envelope_to, mail_domain=self._mail_domain)
        if text is None:
            return None
        done = await self.by_token(text, source="mailto")
        if done is None:
            logger.warning("%s: unsubscribe mail names no recipient of ours", source)
            return "forged"
        return "unsubscribe"

    async def _apply(self, token: UnsubscribeToken, source: str) -> Unsubscribed | None:
        target = await self._store.unsubscribe_target(token.recipient_id)
        if target is None or target[1] != token.campaign_id:
            return None
        address, campaign_id = target
        try:
            entry = make_suppression(
                address, reason=REASON, source=source, now=self._clock.now()
            )
        except AddressError:  # pragma: no cover - queued addresses are valid
            return None
        scoped = self._scope is UnsubscribeScope.campaign
        new = await self._store.unsubscribe(
            token.recipient_id, entry, campaign_id=campaign_id if scoped else None
        )
        logger.info(
            "unsubscribed %s (%s, campaign %d, %s)%s",
            mask_address(address),
            source,
            campaign_id,
            self._scope.value,
            "" if new else ": already suppressed",
        )
        return Unsubscribed(
            address=address, campaign_id=campaign_id, scope=self._scope, new=new
        )
