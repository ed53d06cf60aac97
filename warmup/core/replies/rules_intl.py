"""Reply rules of providers outside the US.

GMX/WEB.DE, Orange/La Poste, Yandex, Mail.ru, QQ (Tencent), NetEase (163/126), NTT
DOCOMO and au (KDDI). SoftBank answers like a stock Postfix; the generic rules cover it.
Orange's codes come from its postmaster pages as collected by Sisimai's
``rhost/for-franceptt.go`` (https://github.com/sisimai/go-sisimai, BSD-2-Clause); the
patterns are ours.
"""

from __future__ import annotations

from warmup.core.model import Verdict
from warmup.core.replies.rules import Provider, ReplyRule

__all__ = ["INTL_RULES"]

_GMX = Provider("gmx", "https://postmaster.gmx.net/en/error-messages")
_WEBDE = Provider("web.de", "https://postmaster.web.de/en/error-messages")
_ORANGE = Provider("orange", "https://postmaster.orange.fr/")
_YANDEX = Provider("yandex", "https://yandex.com/support/mail/bounces/yandex/")
_MAILRU = Provider("mail.ru", "https://help.mail.ru/mail/error-messages")
_QQ = Provider("qq", "https://service.mail.qq.com/detail/122")
_NETEASE = Provider("netease", "https://biecuoliao.com/pa/MBRrwEM.html")
_DOCOMO = Provider(
    "docomo",
    "https://github.com/sisimai/go-sisimai/blob/main/rhost/for-nttdocomo.go",
)
_KDDI = Provider("au", "https://www.au.com/support/service/internet/trouble/mail/01/")


def _orange(label: str, codes: str, reason: str) -> tuple[ReplyRule, ReplyRule]:
    """Orange (``OFR…_NNN``) and La Poste (``LPN…_NNN``) share their numeric codes."""
    return (
        _ORANGE.rule(f"orange-ofr-{label}", rf"ofr\w*_{codes}\b", reason),
        _ORANGE.rule(f"laposte-lpn-{label}", rf"lpn\w*_{codes}\b", reason),
    )


_ORANGE_RULES: tuple[ReplyRule, ...] = (
    *_orange("blocked", r"(?:10[1-35-9]|201|42[34]|510|999)", "blocked"),
    *_orange("connections", r"104", "toomanyconn"),
    *_orange("auth", r"(?:305|402)", "securityerror"),
    *_orange("spf", r"(?:401|517)", "authfailure"),
    *_orange("sender", r"(?:403|405|415|421)", "rejected"),
    *_orange("recipient", r"41[68]", "userunknown"),
    *_orange("full", r"417", "mailboxfull"),
    *_orange("suspended", r"42[06]", "suspend"),
    *_orange("busy", r"505", "systemerror"),
    *_orange("content", r"(?:506|513)", "spamdetected"),
    *_orange("size", r"514", "mesgtoobig"),
    *_orange("host", r"630", "policyviolation"),
    _ORANGE.rule("orange-service-refused", r"service refus", "blocked"),
    _ORANGE.rule("orange-spam-incident", r"bloquee pour incident de spam", "blocked"),
    _ORANGE.rule("orange-too-many", r"trop de connexions", "toomanyconn"),
    _ORANGE.rule("orange-spf", r"spf/dns de votre nom de domaine", "authfailure"),
    _ORANGE.rule("orange-invalid-sender", r"emetteur invalide", "rejected"),
    _ORANGE.rule("orange-mail-rejected", r"mail rejete", "spamdetected"),
    _ORANGE.rule(
        "orange-account-blocked", r"compte du destinataire est bloque", "suspend"
    ),
    _ORANGE.rule("orange-archived", r"boite du destinataire archivee", "suspend"),
)

_EUROPE_RULES: tuple[ReplyRule, ...] = (
    _GMX.rule("gmx-black-listed", r"ip address is black ?listed", "blocked"),
    _GMX.rule(
        "gmx-policy-restrictions",
        r"reject due to policy restrictions",
        "policyviolation",
    ),
    _WEBDE.rule("webde-unacceptable-content", r"unacceptable content", "spamdetected"),
    _YANDEX.rule(
        "yandex-suspicion-of-spam", r"rejected under suspicion of spam", "spamdetected"
    ),
    _YANDEX.rule("yandex-spam-statistics", r"blocked by spam statistics", "blocked"),
    _YANDEX.rule(
        "yandex-policy-rejection", r"policy rejection on the target address", "filtered"
    ),
    _MAILRU.rule(
        "mailru-mailbox-ratelimit",
        r"ratelimit exceeded for mailbox",
        "speeding",
        verdict=Verdict.soft,
    ),
    _MAILRU.rule(
        "mailru-account-disabled", r"unavailable: account is disabled", "suspend"
    ),
    _MAILRU.rule(
        "mailru-sending-disabled",
        r"message sending for this account is disabled",
        "rejected",
    ),
)

_ASIA_RULES: tuple[ReplyRule, ...] = (
    _QQ.rule("qq-suspected-bounce", r"suspected bounce attacks", "blocked"),
    _QQ.rule("qq-suspected-spam-ip", r"suspected spam ip", "blocked"),
    _QQ.rule("qq-suspected-spam", r"suspected spam", "spamdetected"),
    _QQ.rule("qq-connection-denied", r"connection denied", "blocked"),
    _QQ.rule(
        "qq-rejected-by-recipients", r"mail is rejected by recipients", "rejected"
    ),
    _QQ.rule(
        "qq-receiving-limited",
        r"frequency of receiving messages is limited",
        "speeding",
        verdict=Verdict.soft,
    ),
    _QQ.rule("qq-deactivated", r"is a deactivated mailbox", "suspend"),
    _QQ.rule("qq-bad-address-syntax", r"bad address syntax", "userunknown"),
    _NETEASE.rule("netease-hl-blocked", r"hl:(?:rep|mep)", "blocked"),
    _NETEASE.rule("netease-hl-icc", r"hl:icc", "toomanyconn"),
    _NETEASE.rule("netease-hl-ifc", r"hl:ifc", "speeding"),
    _NETEASE.rule("netease-mi-commands", r"mi:c[ce]l", "syntaxerror"),
    _NETEASE.rule("netease-rp-commands", r"rp:c[ce]l", "syntaxerror"),
    _NETEASE.rule("netease-mi-dmc", r"mi:dmc", "toomanyconn"),
    _NETEASE.rule("netease-rp-drc", r"rp:drc", "toomanyconn"),
    _NETEASE.rule("netease-mi-sfq", r"mi:sfq", "speeding"),
    _NETEASE.rule("netease-dt-rbl", r"dt:rbl", "blocked"),
    _NETEASE.rule("netease-wm-bl", r"wm:bl[iu]", "blocked"),
    _NETEASE.rule("netease-dt-spm", r"dt:spm", "spamdetected"),
    _DOCOMO.rule("docomo-too-much-data", r"too much mail data", "mailboxfull"),
    # "550 : User unknown", the address left out: au's per-recipient reception filter.
    _KDDI.rule(
        "au-filtered",
        r"^: user unknown",
        "filtered",
        codes=("55",),
        source="https://github.com/sisimai/go-sisimai/blob/main/rhost/for-kddi.go",
    ),
)

INTL_RULES: tuple[ReplyRule, ...] = _ORANGE_RULES + _EUROPE_RULES + _ASIA_RULES
