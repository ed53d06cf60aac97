"""The ISPs' own reputation data in the store (``reputation_days``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from warmup.adapters.db.database import Database
from warmup.adapters.db.schema import reputation_days
from warmup.core.lanes.reputation import PostmasterDay, SNDSRow

__all__ = ["SQLReputation"]

_POSTMASTER, _SNDS = "postmaster", "snds"
_FIGURES = (
    "spam_rate",
    "domain_reputation",
    "ip_reputation",
    "spf_rate",
    "dkim_rate",
    "dmarc_rate",
    "filter_result",
    "complaint_rate",
    "trap_hits",
    "fetched_at",
)


def _postmaster_row(day: PostmasterDay, now: datetime) -> dict[str, Any]:
    ips = dict(sorted((day.ip_reputation or {}).items()))
    return {
        "source": _POSTMASTER,
        "domain": day.domain,
        "ip": "",
        "day": day.day,
        "spam_rate": day.spam_rate,
        "domain_reputation": day.domain_reputation,
        "ip_reputation": json.dumps(ips) if ips else None,
        "spf_rate": day.spf_rate,
        "dkim_rate": day.dkim_rate,
        "dmarc_rate": day.dmarc_rate,
        "filter_result": None,
        "complaint_rate": None,
        "trap_hits": None,
        "fetched_at": now,
    }


def _snds_row(row: SNDSRow, now: datetime) -> dict[str, Any]:
    return {
        "source": _SNDS,
        "domain": "",
        "ip": row.ip,
        "day": row.day,
        "spam_rate": None,
        "domain_reputation": None,
        "ip_reputation": None,
        "spf_rate": None,
        "dkim_rate": None,
        "dmarc_rate": None,
        "filter_result": row.filter_result,
        "complaint_rate": row.complaint_rate,
        "trap_hits": row.trap_hits,
        "fetched_at": now,
    }


def _ip_categories(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    data = json.loads(text)
    return {str(ip): str(category) for ip, category in data.items()}


class SQLReputation:
    """Postmaster and SNDS reputation rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def save_reputation(
        self,
        postmaster: Sequence[PostmasterDay],
        snds: Sequence[SNDSRow],
        now: datetime,
    ) -> int:
        """Store (or revise) the figures; returns how many rows were written.
        An SNDS row without a day is not stored (nothing to file it under)."""
        rows = [_postmaster_row(day, now) for day in postmaster]
        rows += [_snds_row(row, now) for row in snds if row.day is not None]
        if not rows:
            return 0
        base = self.db.insert(reputation_days)
        async with self.db.begin() as conn:
            for row in rows:
                statement = base.values(**row).on_conflict_do_update(
                    index_elements=["source", "domain", "ip", "day"],
                    set_={name: row[name] for name in _FIGURES},
                )
                await conn.execute(statement)
        return len(rows)

    async def reputation_days(
        self, since: date | None = None
    ) -> tuple[list[PostmasterDay], list[SNDSRow]]:
        """Every stored figure from ``since`` on, oldest day first."""
        c = reputation_days.c
        query = select(reputation_days).order_by(c.day, c.source, c.domain, c.ip)
        if since is not None:
            query = query.where(c.day >= since)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        postmaster = [
            PostmasterDay(
                domain=row.domain,
                day=row.day,
                spam_rate=row.spam_rate,
                domain_reputation=row.domain_reputation,
                ip_reputation=_ip_categories(row.ip_reputation),
                spf_rate=row.spf_rate,
                dkim_rate=row.dkim_rate,
                dmarc_rate=row.dmarc_rate,
            )
            for row in rows
            if row.source == _POSTMASTER
        ]
        snds = [
            SNDSRow(
                ip=row.ip,
                day=row.day,
                filter_result=row.filter_result,
                complaint_rate=row.complaint_rate,
                trap_hits=row.trap_hits,
            )
            for row in rows
            if row.source == _SNDS
        ]
        return postmaster, snds
