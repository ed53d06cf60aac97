"""What the relay did, counted for the metrics (``warmup_relay_*``): messages
accepted (in all and per campaign), replies that refused something, by reason,
and failed AUTH attempts. Counts of this process since it started.

Rules:

1. A refusal is known by its reply (code, enhanced code, and a word of the
   text where two share a code): one place maps every refusal the relay or
   aiosmtpd gives to a reason (:data:`REFUSAL_REASONS`); replies that are not
   refusals (2xx, 3xx, syntax errors 50x) count nowhere.
2. ``535`` replies are failed AUTH attempts, counted apart from refusals.
3. Recipients refused because they are suppressed count as reason
   ``suppressed``, one per recipient (the client got a 250 for them).
4. Label cardinality is bounded: at most ``max_campaigns`` campaign names get
   a counter of their own; the counts of any later campaign go to ``_other``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OTHER_CAMPAIGNS", "REFUSAL_REASONS", "RelayCounts", "refusal_reason"]

OTHER_CAMPAIGNS = "_other"

#: (reply prefix, reason), the first match wins.
REFUSAL_REASONS: tuple[tuple[str, str], ...] = (
    ("552 5.3.4", "content"),  # a header too long
    ("552", "size"),  # SIZE= or the data over max_message_bytes / max_bounce_bytes
    ("452 4.5.3", "recipients"),
    ("450 4.7.1", "rate"),
    ("530", "auth-required"),
    ("554 5.7.1", "not-allowed"),  # relay access denied
    ("550 5.1.1", "not-allowed"),  # the bounce domain without a bounce intake
    ("454 4.7.0 Too many failed", "lockout"),
    ("454", "auth-unavailable"),  # the users file could not be read
    ("421 4.7.0 Too many connections", "connections"),
    ("421 4.7.0 Too many errors", "errors"),
    ("421 4.4.2", "session-age"),
    ("451 4.3.2", "busy"),  # max_concurrent_data
    ("451", "temporary"),  # the database away, or an error of ours
    ("550 5.6.0", "content"),  # no header section, a bad header value
    ("553", "address"),
    ("421", "closing"),
)


def refusal_reason(reply: str) -> str | None:
    """The reason a reply refused something, or None if it refused nothing."""
    for prefix, reason in REFUSAL_REASONS:
        if reply.startswith(prefix):
            return reason
    return None


@dataclass(slots=True)
class RelayCounts:
    accepted: int = 0  # messages filed for sending (a 250 after DATA)
    auth_failures: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)
    max_campaigns: int = 100

    def reply(self, reply: str) -> None:
        """Count a reply the relay sent."""
        if reply[:1] in ("2", "3"):  # most replies: nothing refused
            return
        if reply.startswith("535"):
            self.auth_failures += 1
            return
        reason = refusal_reason(reply)
        if reason is not None:
            self.refuse(reason)

    def refuse(self, reason: str, count: int = 1) -> None:
        if count > 0:
            self.refused[reason] = self.refused.get(reason, 0) + count

    def accept(self, campaign: str) -> None:
        self.accepted += 1
        if campaign not in self.campaigns and len(self.campaigns) >= self.max_campaigns:
            campaign = OTHER_CAMPAIGNS
        self.campaigns[campaign] = self.campaigns.get(campaign, 0) + 1
