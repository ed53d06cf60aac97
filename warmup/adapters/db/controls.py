"""The store's side of operator controls: the ``controls`` log, campaigns held
by a cancel, deadlines, and the story of one address (``warmup trace``).

Every act is one transaction: the ``controls`` row (whose id is the version the
running dispatchers poll) together with what it changes in the queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from warmup.adapters.db.counts import counted
from warmup.adapters.db.database import Database
from warmup.adapters.db.outbox import insert_recipient_events
from warmup.adapters.db.rows import CANCELLED, DEADLINE_PASSED, QUEUED, state_is
from warmup.adapters.db.schema import (
    campaigns,
    controls,
    recipient_counts,
    recipients,
)
from warmup.app.store_rows import CampaignRow
from warmup.core.errors import InputError
from warmup.core.event import EventType
from warmup.core.lanes.control import Control, ControlAction
from warmup.core.model import RecipientState

__all__ = ["SQLControls"]


def _control(row: Any) -> Control:
    return Control(
        id=int(row.id),
        action=ControlAction(row.action),
        at=row.at,
        actor=row.actor,
        reason=row.reason or "",
        ip=row.ip,
        isp=row.isp,
        until=row.until,
        campaign=row.campaign,
    )


class SQLControls:
    """Operator controls (pause, resume, cancel) and campaign rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_control(
        self,
        *,
        action: ControlAction,
        actor: str,
        now: datetime,
        reason: str = "",
        ip: str | None = None,
        isp: str | None = None,
        until: datetime | None = None,
    ) -> Control:
        """Log a lane pause or resume; running dispatchers apply it."""
        values = {
            "action": action.value,
            "ip": ip,
            "isp": isp,
            "until": until,
            "reason": reason or None,
            "actor": actor,
            "at": now,
        }
        async with self.db.begin() as conn:
            new_id = await self._log(conn, values)
        return Control(
            id=new_id,
            action=action,
            at=now,
            actor=actor,
            reason=reason,
            ip=ip,
            isp=isp,
            until=until,
        )

    async def _log(self, conn: AsyncConnection, values: dict[str, Any]) -> int:
        statement = insert(controls).values(**values).returning(controls.c.id)
        return int((await conn.execute(statement)).scalar_one())

    async def control_version(self) -> int:
        """The newest control's id (0: none yet): one cheap indexed read."""
        async with self.db.connect() as conn:
            found = await conn.execute(select(func.max(controls.c.id)))
            return int(found.scalar_one() or 0)

    async def controls_after(self, seen: int) -> list[Control]:
        query = select(controls).where(controls.c.id > seen).order_by(controls.c.id)
        async with self.db.connect() as conn:
            return [_control(row) for row in (await conn.execute(query)).all()]

    async def cancelled_campaign_ids(self) -> set[int]:
        query = select(campaigns.c.id).where(campaigns.c.cancelled_at.is_not(None))
        async with self.db.connect() as conn:
            return {int(i) for i in (await conn.execute(query)).scalars()}

    async def set_campaign_cancelled(
        self, name: str, *, cancel: bool, actor: str, reason: str, now: datetime
    ) -> int:
        """Cancel (queued -> cancelled) or resume (cancelled -> queued) a campaign;
        returns how many recipients changed. Claimed ones are the sending node's
        to drop (it sees the control within seconds)."""
        action = ControlAction.cancel if cancel else ControlAction.resume_campaign
        old, new = (QUEUED, CANCELLED) if cancel else (CANCELLED, QUEUED)
        async with self.db.begin() as conn:
            campaign_id = await self._campaign_id(conn, name)
            if cancel:
                await conn.execute(
                    insert_recipient_events(
                        EventType.cancelled,
                        now,
                        f"campaign cancelled by {actor}",
                        reason or None,
                        recipients.c.campaign_id == campaign_id,
                        state_is(old),
                    )
                )
            await conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(cancelled_at=now if cancel else None)
            )
            moved = await conn.execute(
                update(recipients)
                .where(
                    recipients.c.campaign_id == campaign_id,
                    state_is(old),  # queued or cancelled: their partial index
                )
                .values(state=new, next_attempt_at=now, updated_at=now)
            )
            values = {"action": action.value, "campaign": name, "actor": actor}
            await self._log(conn, values | {"reason": reason or None, "at": now})
            return int(moved.rowcount)

    async def _campaign_id(self, conn: AsyncConnection, name: str) -> int:
        query = select(campaigns.c.id).where(campaigns.c.name == name)
        found = (await conn.execute(query)).scalar_one_or_none()
        if found is None:
            raise InputError("campaign", f"no campaign called {name!r}")
        return int(found)

    async def expire_deadlines(self, now: datetime) -> int:
        """Queued recipients whose deadline has passed expire (unsent)."""
        # Through the deadline index, not the state one: SQLite, without
        # statistics, would pick ``state = queued`` and read the whole queue at
        # every maintenance beat. ``state || ''`` keeps the check off any index.
        past = select(recipients.c.id).where(
            recipients.c.deadline_at.is_not(None), recipients.c.deadline_at <= now
        )
        late = (
            recipients.c.id.in_(past.scalar_subquery()),
            recipients.c.state.concat("") == QUEUED,
        )
        events = insert_recipient_events(
            EventType.expired, now, "deadline", DEADLINE_PASSED, *late
        )
        expire = (
            update(recipients)
            .where(*late)
            .values(
                state=RecipientState.expired.value,
                last_reply=DEADLINE_PASSED,
                updated_at=now,
            )
        )
        async with self.db.begin() as conn:
            await conn.execute(events)
            return int((await conn.execute(expire)).rowcount)

    # -- reading -----------------------------------------------------------------

    async def campaign_rows(self, name: str | None = None) -> list[CampaignRow]:
        """Campaigns (or one) with their recipient counts per state, from the
        counts the triggers keep (warmup.adapters.db.counts): not a scan of the
        queue."""
        counts = counted(
            recipient_counts.c.campaign_id, recipient_counts.c.state
        ).subquery()
        query = (
            select(campaigns, counts)
            .outerjoin(counts, counts.c.campaign_id == campaigns.c.id)
            .order_by(campaigns.c.id)
        )
        if name is not None:
            query = query.where(campaigns.c.name == name)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[int, CampaignRow] = {}
        for row in rows:
            entry = found.setdefault(
                row.id,
                CampaignRow(
                    name=row.name,
                    created_at=row.created_at,
                    cancelled_at=row.cancelled_at,
                    relayed=row.template_id is None,
                    counts={},
                ),
            )
            if row.state is not None:
                entry["counts"][row.state] = int(row.n)
        return list(found.values())
