"""The store's side of DMARC aggregate reports (``dmarc_rows``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select

from warmup.adapters.db.database import Database
from warmup.adapters.db.schema import dmarc_rows
from warmup.core.auth.dmarc import AuthDay, DMARCReport, report_key

__all__ = ["SQLDMARC"]


class SQLDMARC:
    """DMARC aggregate reports and the authentication figures read from them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def save_dmarc(self, report: DMARCReport, now: datetime) -> int:
        """Store a report's rows; returns how many were new (0: seen before)."""
        if not report.rows:
            return 0
        key = report_key(report.org, report.report_id)
        rows = [
            {
                "report_key": key,
                "org": report.org,
                "source_ip": row.source_ip,
                "day": row.day,
                "header_from": row.header_from,
                "messages": row.messages,
                "spf_pass": row.spf_pass,
                "spf_aligned": row.spf_aligned,
                "dkim_pass": row.dkim_pass,
                "dkim_aligned": row.dkim_aligned,
                "dmarc_pass": row.dmarc_pass,
                "quarantined": row.quarantined,
                "rejected": row.rejected,
                "received_at": now,
            }
            for row in report.rows
        ]
        statement = (
            self.db.insert(dmarc_rows)
            .on_conflict_do_nothing(
                index_elements=["report_key", "source_ip", "day", "header_from"]
            )
            .returning(dmarc_rows.c.id)
        )
        added = 0
        async with self.db.begin() as conn:
            for row in rows:
                result = await conn.execute(statement.values(**row))
                added += len(result.all())
        return added

    async def auth_days(
        self, ips: Sequence[str] | None = None, since: date | None = None
    ) -> list[AuthDay]:
        """Per source IP x day, what every report says (all From domains)."""
        c = dmarc_rows.c
        query = (
            select(
                c.source_ip,
                c.day,
                func.sum(c.messages),
                func.sum(c.dmarc_pass),
                func.sum(c.spf_aligned),
                func.sum(c.dkim_aligned),
            )
            .group_by(c.source_ip, c.day)
            .order_by(c.source_ip, c.day)
        )
        if ips is not None:
            query = query.where(c.source_ip.in_(list(ips)))
        if since is not None:
            query = query.where(c.day >= since)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuthDay(
                ip=str(ip),
                day=day,
                messages=int(messages),
                dmarc_pass=int(passed),
                spf_aligned=int(spf),
                dkim_aligned=int(dkim),
            )
            for ip, day, messages, passed, spf, dkim in rows
        ]
