"""Per-recipient messages: the campaign's template, VERP envelope, trace headers."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

from warmup.app.ports import EngineStore
from warmup.core.attempt import Claimed
from warmup.core.template import Template, parse_template
from warmup.core.verp import TRACE_HEADER, VERPToken, encode_verp

__all__ = ["TRACE_HEADER", "Renderer"]


class Renderer:
    """Caches each campaign's parsed template; renders one recipient per call."""

    def __init__(self, store: EngineStore, *, return_path: str, secret: bytes) -> None:
        self._store = store
        self._return_path = return_path
        self._secret = secret
        self._domain = return_path.rpartition("@")[2]
        self._templates: dict[int, Template] = {}

    async def template(self, campaign_id: int) -> Template:
        found = self._templates.get(campaign_id)
        if found is None:
            data = await self._store.template_for(campaign_id)
            found = parse_template(data, source=f"campaign {campaign_id}")
            self._templates[campaign_id] = found
        return found

    async def render(self, claimed: Claimed, now: datetime) -> tuple[str, bytes]:
        """(envelope sender, message bytes) for the recipient's next attempt."""
        template = await self.template(claimed.campaign_id)
        token = VERPToken(recipient_id=claimed.id, attempt=claimed.attempts + 1)
        mail_from = encode_verp(
            token, return_path=self._return_path, secret=self._secret
        )
        trace = mail_from.partition("+")[2].partition("@")[0]
        headers = [
            ("Message-ID", f"<{trace}@{self._domain}>"),
            ("Date", format_datetime(now)),
            (TRACE_HEADER, trace),
        ]
        if "to" not in template.headers:
            headers.append(("To", claimed.address))
        values = dict(claimed.fields)
        values.setdefault("email", claimed.address)
        return mail_from, template.render(values, headers)
