"""One-click unsubscribe (RFC 2369 ``List-Unsubscribe``, RFC 8058 one-click).

Every message of a template campaign (and relayed mail without a
``List-Unsubscribe`` of its own, when ``unsubscribe.relayed: add``) carries::

    List-Unsubscribe: <https://BASE/u/TOKEN>, <mailto:unsubscribe+TOKEN@BOUNCE>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

TOKEN (``u<recipient id>-c<campaign id>-<mac>``) names the recipient row and its
campaign, signed with the VERP secret (:func:`warmup.core.bounces.verp.token_mac`), so a
link scanner or an attacker cannot unsubscribe an address it was not sent to.
The ``u`` and ``c`` tags keep it apart from a VERP token (``r…-a…``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from warmup.core.bounces.verp import mac_matches, token_mac

__all__ = [
    "MAILTO_LOCAL",
    "ONE_CLICK_BODY",
    "UnsubscribeLinks",
    "UnsubscribeScope",
    "UnsubscribeToken",
    "decode_unsubscribe",
    "encode_unsubscribe",
    "list_headers",
    "mailto_token",
]

#: The local part of the mailto address, before ``+TOKEN``.
MAILTO_LOCAL = "unsubscribe"
#: What an RFC 8058 one-click POST carries as its form body.
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"

# 64 bits of MAC: a URL can be probed over HTTP far faster than a bounce can be
# forged by mail, so this token is signed longer than the VERP one.
_MAC_CHARS = 16
_TOKEN = re.compile(r"^u([0-9]{1,18})-c([0-9]{1,18})-([0-9A-Fa-f]{16})$")


class UnsubscribeScope(StrEnum):
    """What an unsubscribe stops: every campaign, or only the one mailed."""

    global_ = "global"
    campaign = "campaign"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeToken:
    recipient_id: int
    campaign_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeLinks:
    """Where the links point: ``base_url`` (no trailing slash) and the bounce
    domain that receives the mailto."""

    base_url: str
    mail_domain: str

    def __post_init__(self) -> None:
        if self.base_url.endswith("/"):
            raise ValueError(f"base_url must not end in '/', got {self.base_url!r}")


def encode_unsubscribe(token: UnsubscribeToken, *, secret: bytes) -> str:
    """``u12-c3-<16 hex>``: safe in a URL path and in a mail local part."""
    body = f"u{token.recipient_id}-c{token.campaign_id}"
    return f"{body}-{token_mac(secret, body, chars=_MAC_CHARS)}"


def decode_unsubscribe(text: str, *, secret: bytes) -> UnsubscribeToken | None:
    """The token, or None when malformed or not signed by ``secret``."""
    match = _TOKEN.match(text.strip())
    if match is None:
        return None
    recipient, campaign, mac = match.groups()
    if not mac_matches(secret, f"u{recipient}-c{campaign}", mac, chars=_MAC_CHARS):
        return None
    return UnsubscribeToken(recipient_id=int(recipient), campaign_id=int(campaign))


def list_headers(
    token: UnsubscribeToken, links: UnsubscribeLinks, *, secret: bytes
) -> list[tuple[str, str]]:
    """The two header fields of RFC 2369 and RFC 8058 for one recipient."""
    text = encode_unsubscribe(token, secret=secret)
    mailto = f"{MAILTO_LOCAL}+{text}@{links.mail_domain}"
    return [
        ("List-Unsubscribe", f"<{links.base_url}/u/{text}>, <mailto:{mailto}>"),
        ("List-Unsubscribe-Post", ONE_CLICK_BODY),
    ]


def mailto_token(addresses: Iterable[str], *, mail_domain: str) -> str | None:
    """The TOKEN text of the first ``unsubscribe+TOKEN@mail_domain`` among
    ``addresses`` (envelope recipients, To/Delivered-To), signed or not; None
    when none is addressed there."""
    domain = mail_domain.lower()
    for raw in addresses:
        local, _, at = raw.strip().strip("<>").rpartition("@")
        tag, plus, token = local.partition("+")
        if plus and tag.lower() == MAILTO_LOCAL and at.lower() == domain:
            return token
    return None
