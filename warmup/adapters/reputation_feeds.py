"""The ISPs' reputation feeds over HTTP (aiohttp client): Google Postmaster
Tools API v1 and Microsoft SNDS automated data access.

- Postmaster Tools: ``GET {endpoint}/v1/domains/{domain}/trafficStats`` with a
  date range (``endDate`` exclusive) and ``Authorization: Bearer TOKEN``, following
  ``nextPageToken`` (at most :data:`MAX_PAGES` pages). The token is read from
  ``credentials_file`` at every fetch: the file holds an OAuth 2.0 access token,
  bare or as JSON ``{"access_token": …}`` (what ``gcloud auth print-access-token``
  or an OAuth helper writes); warmup does not run Google's OAuth flow itself.
- SNDS: ``GET {endpoint}?key=KEY``, a CSV body; the key is never logged.

Every request has the configured timeout and a size bound; every failure is a
:class:`FetchError` (what and why, no traceback).
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp

from warmup.core.errors import FetchError
from warmup.core.lanes.reputation import (
    PostmasterDay,
    SNDSRow,
    parse_snds,
    parse_traffic_stats,
)
from warmup.core.settings import ReputationSettings

__all__ = ["MAX_BYTES", "MAX_PAGES", "HTTPReputationFeeds", "read_token"]

MAX_PAGES = 20
MAX_BYTES = 16 * 1024 * 1024
_GOOGLE = "Google Postmaster Tools"
_SNDS = "Microsoft SNDS"


def read_token(path: str) -> str:
    """The access token in ``path`` (bare, or JSON with ``access_token``)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        detail = f"cannot read credentials_file {path!r}: {exc}"
        raise FetchError(_GOOGLE, detail) from None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise FetchError(_GOOGLE, f"{path!r} is not valid JSON") from None
        if isinstance(data, dict) and data.get("type") == "service_account":
            raise FetchError(
                _GOOGLE,
                f"{path!r} is a service-account key; warmup reads an access token "
                "(e.g. `gcloud auth print-access-token`), see README",
            )
        token = data.get("access_token") if isinstance(data, dict) else None
        text = token.strip() if isinstance(token, str) else ""
    if not text or any(ch.isspace() for ch in text):
        raise FetchError(_GOOGLE, f"no access token in credentials_file {path!r}")
    return text


class HTTPReputationFeeds:
    """The ReputationFeeds port (app.reputation) over aiohttp."""

    def __init__(self, settings: ReputationSettings) -> None:
        self._settings = settings
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout.total_seconds())

    async def postmaster(
        self, domain: str, start: date, end: date
    ) -> list[PostmasterDay]:
        google = self._settings.google_postmaster
        assert google.credentials_file is not None
        token = await asyncio.to_thread(read_token, google.credentials_file)
        url = f"{google.endpoint}/v1/domains/{domain}/trafficStats"
        params = {
            "startDate.year": str(start.year),
            "startDate.month": str(start.month),
            "startDate.day": str(start.day),
            "endDate.year": str(end.year),
            "endDate.month": str(end.month),
            "endDate.day": str(end.day),
        }
        headers = {"Authorization": f"Bearer {token}"}
        days: list[PostmasterDay] = []
        for _ in range(MAX_PAGES):
            body = await self._get(f"{_GOOGLE} ({domain})", url, params, headers)
            page = _json_object(body, f"{_GOOGLE} ({domain})")
            for item in page.get("trafficStats") or ():
                if isinstance(item, dict):
                    found = parse_traffic_stats(domain, item)
                    if found is not None:
                        days.append(found)
            next_page = page.get("nextPageToken")
            if not next_page:
                return days
            params["pageToken"] = str(next_page)
        raise FetchError(f"{_GOOGLE} ({domain})", f"more than {MAX_PAGES} pages")

    async def snds(self) -> list[SNDSRow]:
        snds = self._settings.snds
        assert snds.key_env is not None
        key = os.environ.get(snds.key_env, "").strip()
        if not key:
            raise FetchError(_SNDS, f"${snds.key_env} is not set (snds.key_env)")
        body = await self._get(_SNDS, snds.endpoint, {"key": key}, {}, secret=key)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("latin-1")
        return list(parse_snds(text))

    async def _get(
        self,
        what: str,
        url: str,
        params: dict[str, str],
        headers: dict[str, str],
        *,
        secret: str = "",
    ) -> bytes:
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.get(url, params=params, headers=headers) as response,
            ):
                body = await response.content.read(MAX_BYTES + 1)
                status = response.status
        except TimeoutError:
            detail = f"no answer within {self._timeout.total:g} s"
            raise FetchError(what, detail) from None
        except (aiohttp.ClientError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise FetchError(what, _hide(detail, secret)) from None
        if status != 200:
            excerpt = body[:200].decode("utf-8", "replace").strip()
            raise FetchError(what, _hide(f"HTTP {status}: {excerpt}", secret))
        if len(body) > MAX_BYTES:
            raise FetchError(what, f"answer larger than {MAX_BYTES} bytes")
        return body


def _hide(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise FetchError(what, "the answer is not JSON") from None
    if not isinstance(data, dict):
        raise FetchError(what, "the answer is not a JSON object")
    return data
