"""Campaigns and the recipients a list puts in them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from warmup.adapters.db import counts
from warmup.adapters.db.counts import counted
from warmup.adapters.db.database import Database
from warmup.adapters.db.rows import require_aware
from warmup.adapters.db.schema import campaigns, recipient_counts, recipients, templates
from warmup.app.ports import CampaignRef, TemplateRecord
from warmup.core.errors import InputError
from warmup.core.model import RecipientState
from warmup.core.recipients.recipient import NewRecipient
from warmup.core.recipients.routing import engagement_priority

__all__ = ["SQLCampaigns"]


class SQLCampaigns:
    """Creating campaigns and queueing a list's recipients."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_campaign(
        self, name: str, template: TemplateRecord, now: datetime
    ) -> CampaignRef:
        async with self.db.begin() as conn:
            await conn.execute(
                self.db.insert(templates)
                .values(
                    name=template.name,
                    sha256=template.sha256,
                    content=template.content,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["sha256"])
            )
            template_id = (
                await conn.execute(
                    select(templates.c.id).where(templates.c.sha256 == template.sha256)
                )
            ).scalar_one()
            existing = (
                await conn.execute(
                    select(campaigns.c.id, campaigns.c.template_id).where(
                        campaigns.c.name == name
                    )
                )
            ).first()
            if existing is not None:
                if existing.template_id != template_id:
                    raise InputError(
                        template.name,
                        (
                            f"campaign {name!r} already exists with a different "
                            "template; use a new campaign name"
                        ),
                    )
                return CampaignRef(id=existing.id, name=name, created=False)
            campaign_id = (
                await conn.execute(
                    insert(campaigns)
                    .values(name=name, template_id=template_id, created_at=now)
                    .returning(campaigns.c.id)
                )
            ).scalar_one()
        return CampaignRef(id=campaign_id, name=name, created=True)

    # -- recipients ----------------------------------------------------------------

    async def insert_recipients(
        self,
        campaign_id: int,
        recipients_: Sequence[NewRecipient],
        isps: Sequence[str | None],
        now: datetime,
        *,
        deadline: datetime | None = None,
    ) -> int:
        if not recipients_:
            return 0
        require_aware(now)
        if deadline is not None:
            require_aware(deadline)
        rows = [
            {
                "campaign_id": campaign_id,
                "address": r.address,
                "domain": r.domain,
                "isp": isp,
                "engagement_score": r.engagement_score,
                "engaged_at": r.engaged_at,
                "priority": engagement_priority(
                    r.engagement_score,
                    r.engaged_at.timestamp() if r.engaged_at else None,
                ),
                "fields": json.dumps(
                    r.fields, ensure_ascii=False, separators=(",", ":")
                ),
                "state": RecipientState.queued.value,
                "attempts": 0,
                "next_attempt_at": now,
                "queued_at": now,
                "updated_at": now,
                "deadline_at": deadline,
            }
            for r, isp in zip(recipients_, isps, strict=True)
        ]
        statement = self.db.insert(recipients).on_conflict_do_nothing(
            index_elements=["campaign_id", "address"],
            index_where=recipients.c.message_id.is_(None),
        )
        if self.db.dialect != "sqlite":
            return await self.db.insert_counted(statement, rows)
        return await self._sqlite_insert(campaign_id, statement, rows)

    async def _sqlite_insert(
        self, campaign_id: int, statement: Any, rows: list[dict[str, Any]]
    ) -> int:
        """SQLite counts new rows here, not per row in a trigger (migration
        0013): the batch goes in one executemany per ISP, whose rowcount (rows
        actually inserted, duplicates left out) is that key's one upsert, all
        in one transaction."""
        by_isp: dict[str | None, list[dict[str, Any]]] = {}
        for row in rows:
            by_isp.setdefault(row["isp"], []).append(row)
        inserted = 0
        async with self.db.begin() as conn:
            for isp, group in by_isp.items():
                n = await self.db.sqlite_insert_counted(conn, statement, group)
                await counts.add(conn, campaign_id, isp, RecipientState.queued.value, n)
                inserted += n
        return inserted

    async def count_recipients(self, campaign_id: int | None = None) -> dict[str, int]:
        """Recipients per state (of one campaign, or all), from the counts."""
        query = counted(recipient_counts.c.state)
        if campaign_id is not None:
            query = query.where(recipient_counts.c.campaign_id == campaign_id)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
            return {str(state): int(count) for state, count in rows}
