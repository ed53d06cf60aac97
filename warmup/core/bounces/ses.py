"""Amazon SES notifications (JSON in the mail body, often via SNS) -> recipients.

Rules:

1. The body holds one JSON object with ``notificationType`` (or ``eventType``):
   ``Bounce``, ``Complaint`` or ``Delivery``; an SNS envelope carries it as a string
   in ``Message``. Line breaks that mail transport inserted are removed first.
2. Bounced recipients keep SES's ``action``, ``status`` and ``diagnosticCode``;
   complaints give the complained recipients; deliveries give ``delivered``.
3. Anything else, or JSON that does not decode, gives ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from warmup.core.bounces.dsn import DSNRecipient

__all__ = ["SESNotification", "parse_ses"]

_KINDS = {"bounce": "bounce", "complaint": "feedback", "delivery": "delivery-report"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SESNotification:
    """A decoded SES notification: ``kind`` is a bounce report kind."""

    kind: str
    permanent: bool
    recipients: tuple[DSNRecipient, ...]


def parse_ses(text: str) -> SESNotification | None:
    """The SES notification in ``text``, or ``None``."""
    if "notificationType" not in text and "eventType" not in text:
        return None
    data = _decode(text)
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        data = _decode(data["Message"])
    if not isinstance(data, dict):
        return None
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    if kind not in _KINDS:
        return None
    section = data.get(kind)
    section = section if isinstance(section, dict) else {}
    permanent = str(section.get("bounceType", "Permanent")).lower() != "transient"
    return SESNotification(
        kind=_KINDS[kind], permanent=permanent, recipients=_recipients(kind, section)
    )


def _decode(text: str) -> Any:
    start = text.find("{")
    if start < 0:
        return None
    body = text[start:]
    unwrapped = body.replace("\r", "")
    for candidate in (body, unwrapped.replace("\n ", ""), unwrapped.replace("\n", "")):
        try:
            return json.JSONDecoder().raw_decode(candidate)[0]
        except ValueError:
            continue
    return None


def _recipients(kind: str, section: dict[str, Any]) -> tuple[DSNRecipient, ...]:
    key = {"bounce": "bouncedRecipients", "complaint": "complainedRecipients"}
    items = section.get(key.get(kind, "recipients"))
    if not isinstance(items, list):
        return ()
    found: list[DSNRecipient] = []
    for item in items:
        entry = item if isinstance(item, dict) else {"emailAddress": item}
        address = entry.get("emailAddress")
        if not isinstance(address, str) or not address:
            continue
        found.append(
            DSNRecipient(
                recipient=address,
                action=str(entry.get("action") or _default_action(kind)),
                status=str(entry.get("status") or ""),
                diagnostic=str(entry.get("diagnosticCode") or ""),
                remote_mta=str(section.get("reportingMTA") or ""),
            )
        )
    return tuple(found)


def _default_action(kind: str) -> str:
    return "delivered" if kind == "delivery" else ""
