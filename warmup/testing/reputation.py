"""A fake Google Postmaster Tools API and Microsoft SNDS feed on loopback.

They answer in the published formats (Postmaster Tools API v1
``domains.trafficStats.list``: ``{"trafficStats": [...], "nextPageToken"}``, a
Bearer token; the SNDS automated data feed: CSV lines, ``?key=``), so the real
HTTP client (warmup.adapters.reputation_feeds) is what a test exercises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiohttp import web

__all__ = ["FakeReputationServer", "serving_reputation", "snds_line", "traffic_stats"]


def traffic_stats(
    domain: str,
    day: date,
    *,
    spam_rate: float | None,
    ip_reputation: dict[str, str] | None = None,
    domain_reputation: str = "HIGH",
) -> dict[str, Any]:
    """One ``TrafficStats`` resource as Postmaster Tools API v1 returns it."""
    groups: dict[str, list[str]] = {}
    for ip, category in (ip_reputation or {}).items():
        groups.setdefault(category, []).append(ip)
    resource: dict[str, Any] = {
        "name": f"domains/{domain}/trafficStats/{day:%Y%m%d}",
        "domainReputation": domain_reputation,
        "ipReputations": [
            {"reputation": category, "ipCount": str(len(ips)), "sampleIps": ips}
            for category, ips in sorted(groups.items())
        ],
        "spfSuccessRatio": 1.0,
        "dkimSuccessRatio": 1.0,
        "dmarcSuccessRatio": 1.0,
    }
    if spam_rate is not None:
        resource["userReportedSpamRatio"] = spam_rate
    return resource


def snds_line(
    ip: str,
    day: date,
    result: str,
    *,
    complaint_rate: str = "< 0.1%",
    trap_hits: int = 0,
) -> str:
    """One line of the SNDS data feed (IP, activity start/end, RCPT, DATA,
    recipients, filter result, complaint rate, trap start/end, trap hits, sample
    HELO, sample MAIL FROM, comments)."""
    start = f"{day.month}/{day.day}/{day.year} 12:00 AM"
    end = f"{day.month}/{day.day}/{day.year} 11:59 PM"
    return (
        f"{ip},{start},{end},120,118,118,{result},{complaint_rate},"
        f"{start},{end},{trap_hits},mta.test,bounces@bounce.test,\r\n"
    )


@dataclass
class FakeReputationServer:
    token: str = "token-1"
    snds_key: str = "snds-key-1"
    page_size: int = 2
    # domain -> TrafficStats resources, in the order they are listed
    postmaster: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    snds_csv: str = ""
    # (path, query) of every request, in order
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    async def _traffic_stats(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.query)))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            error = {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
            }
            return web.json_response({"error": error}, status=401)
        items = self.postmaster.get(request.match_info["domain"], [])
        start = int(request.query.get("pageToken", "0"))
        page: dict[str, Any] = {"trafficStats": items[start : start + self.page_size]}
        if start + self.page_size < len(items):
            page["nextPageToken"] = str(start + self.page_size)
        return web.json_response(page)

    async def _snds(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.query)))
        if request.query.get("key") != self.snds_key:
            return web.Response(status=403, text="Access denied")
        return web.Response(text=self.snds_csv, content_type="text/csv")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/domains/{domain}/trafficStats", self._traffic_stats)
        app.router.add_get("/snds/data.aspx", self._snds)
        return app


@asynccontextmanager
async def serving_reputation(
    fake: FakeReputationServer | None = None,
) -> AsyncIterator[FakeReputationServer]:
    """Serve ``fake`` on 127.0.0.1 (a free port); ``fake.url`` is its base URL."""
    fake = fake or FakeReputationServer()
    runner = web.AppRunner(fake.app(), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        fake.url = f"http://{host}:{port}"
        yield fake
    finally:
        await runner.cleanup()
