"""Ports: the Protocols the use cases depend on; adapters implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from warmup.core.recipient import NewRecipient
from warmup.core.suppression import Suppression

__all__ = ["CampaignRef", "Clock", "Store", "TemplateRecord"]


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateRecord:
    name: str
    sha256: str
    content: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRef:
    id: int
    name: str
    created: bool


class Store(Protocol):
    """The durable queue, suppression list and lane state."""

    async def ensure_campaign(
        self, name: str, template: TemplateRecord, now: datetime
    ) -> CampaignRef:
        """The campaign called ``name``, created with ``template`` if new.

        Raises InputError if it exists with a different template.
        """
        ...

    async def insert_recipients(
        self,
        campaign_id: int,
        recipients: Sequence[NewRecipient],
        isps: Sequence[str | None],
        now: datetime,
    ) -> int:
        """Queue recipients, skipping addresses already in the campaign.

        Returns how many were inserted.
        """
        ...

    async def suppressed_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these suppression keys (addresses or @domains) are present."""
        ...

    async def add_suppressions(self, entries: Sequence[Suppression]) -> int:
        """Insert entries not yet present; returns how many were new."""
        ...

    async def remove_suppressions(self, addresses: Sequence[str]) -> int: ...

    def iter_suppressions(
        self, *, reason: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Suppression]: ...

    async def count_suppressions(self) -> int: ...

    async def close(self) -> None: ...
