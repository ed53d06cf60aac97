"""Webhooks: outcome events POSTed to the campaign tool with aiohttp's client
(aiohttp is the project's one HTTP library: it also serves the unsubscribe
endpoint and fetches the reputation feeds).

``format: json`` sends batches, ``{"events": [event, …]}``, signed with
HMAC-SHA256 when the entry names a key (``secret_env``)::

    X-Warmup-Timestamp: 1767225600                  (Unix seconds, when sent)
    X-Warmup-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">

``format: listmonk`` posts each ``bounced`` and ``complained`` event alone in
the shape of listmonk's ``POST /webhooks/bounce`` (``email``, ``source``,
``type`` hard or complaint, ``meta`` an escaped JSON string); its API user and
token go in the URL (``http://user:token@host/webhooks/bounce``). Any other
event types are skipped for that format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from warmup.adapters.event_log import event_line
from warmup.app.shipping import DeliveryError
from warmup.core.settings import WebhookSettings

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Webhook", "sign"]

SIGNATURE_HEADER = "X-Warmup-Signature"
TIMESTAMP_HEADER = "X-Warmup-Timestamp"
_LISTMONK_TYPES = {"bounced": "hard", "complained": "complaint"}


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _plain(event: Mapping[str, Any]) -> dict[str, Any]:
    return dict(json.loads(event_line(event)))


def _listmonk(event: Mapping[str, Any]) -> dict[str, Any]:
    meta = {
        key: event[key]
        for key in ("id", "campaign", "message_id", "status", "reason", "reply")
    }
    return {
        "email": event["recipient"],
        "source": "warmup",
        "type": _LISTMONK_TYPES[event["type"]],
        "meta": json.dumps(meta, ensure_ascii=False),
    }


class Webhook:
    """An EventSink POSTing to one URL."""

    def __init__(self, settings: WebhookSettings, secret: bytes | None) -> None:
        self.settings = settings
        self.secret = secret
        self.name = self.name_for(settings.url)
        wanted = set(settings.events)
        if settings.format == "listmonk":
            wanted = (wanted or set(_LISTMONK_TYPES)) & set(_LISTMONK_TYPES)
        self.types = frozenset(wanted)
        self.retry_for = settings.retry_for
        self.batch = settings.batch
        # listmonk: one POST per event; json: one per batch.
        posts = settings.batch if settings.format == "listmonk" else 1
        self.lease = settings.timeout * posts
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout.total_seconds())
        self._session: aiohttp.ClientSession | None = None  # made on first use

    @staticmethod
    def name_for(url: str) -> str:
        """The consumer's name (its cursor), without credentials in the URL."""
        return f"webhook:{_without_credentials(url)}"

    async def deliver(self, events: Sequence[Mapping[str, Any]], now: datetime) -> None:
        if self.settings.format == "listmonk":
            for event in events:
                await self._post(json.dumps(_listmonk(event)).encode(), now)
            return
        body = json.dumps({"events": [_plain(e) for e in events]}).encode()
        await self._post(body, now)

    async def _post(self, body: bytes, now: datetime) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "warmup"}
        if self.secret is not None:
            timestamp = str(int(now.timestamp()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        if self._session is None:  # inside the event loop, as aiohttp wants
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self.settings.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()  # drained: the connection is reused
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = str(exc) or "timed out"
            raise DeliveryError(self.name, f"{type(exc).__name__}: {detail}") from exc
        if not 200 <= status < 300:
            raise DeliveryError(self.name, f"HTTP {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
