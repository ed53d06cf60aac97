"""Reply rules of filtering gateways: Proofpoint, Mimecast, Barracuda, Symantec, ….

Also Cisco Secure Email (IronPort) and Trend Micro. A gateway answers for many recipient
domains, so its wording identifies it better than the recipient's domain does. Sisimai's
``rhost`` modules (https://github.com/sisimai/go-sisimai, BSD-2-Clause) helped find the
texts; each rule cites the vendor's page.
"""

from __future__ import annotations

from warmup.core.replies.rules import Provider, ReplyRule

__all__ = ["GATEWAY_RULES"]

_PROOFPOINT = Provider("proofpoint", "https://ipcheck.proofpoint.com/")
_MIMECAST = Provider(
    "mimecast",
    "https://community.mimecast.com/s/article/email-security-cloud-gateway-mimecast-smtp-error-codes",
)
_BARRACUDA = Provider("barracuda", "https://www.barracudacentral.org/rbl")
_SYMANTEC = Provider(
    "symantec",
    "https://knowledge.broadcom.com/external/article/169652/email-error-and-bounce-codes-for-email-s.html",
)
_CISCO = Provider(
    "cisco",
    "https://www.cisco.com/c/en/us/support/docs/security/email-security-appliance/118205-troubleshoot-esa-00.html",
)
_TRENDMICRO = Provider("trendmicro", "https://ers.trendmicro.com/")

GATEWAY_RULES: tuple[ReplyRule, ...] = (
    _PROOFPOINT.rule("proofpoint-ipcheck", r"ipcheck\.proofpoint", "blocked"),
    _MIMECAST.rule(
        "mimecast-auth-invalid", r"sender invalid - envelope rejected", "authfailure"
    ),
    _MIMECAST.rule(
        "mimecast-anti-spoofing", r"anti-spoofing policy", "policyviolation"
    ),
    _MIMECAST.rule(
        "mimecast-host-network", r"host network,? not allowed", "policyviolation"
    ),
    _MIMECAST.rule(
        "mimecast-open-relay", r"open relay (?:is )?not allowed", "norelaying"
    ),
    _MIMECAST.rule("mimecast-envelope-blocked", r"envelope blocked", "rejected"),
    _MIMECAST.rule("mimecast-sender-blocked", r"sender address blocked", "blocked"),
    _MIMECAST.rule(
        "mimecast-internal-resources",
        r"internal resources are temporarily",
        "badreputation",
    ),
    _MIMECAST.rule("mimecast-route-tls", r"this route requires", "failedstarttls"),
    _MIMECAST.rule("mimecast-size", r"maximum email size", "mesgtoobig"),
    _MIMECAST.rule(
        "mimecast-account-service", r"account service is temporarily", "toomanyconn"
    ),
    _MIMECAST.rule("mimecast-thread-limit", r"outbound thread limit", "toomanyconn"),
    _MIMECAST.rule("mimecast-unable-to-process", r"unable to process", "systemerror"),
    _BARRACUDA.rule(
        "barracuda-blocked-recipient",
        r"blocked\)",
        "blocked",
        source="https://campus.barracuda.com/product/emailsecuritygateway/doc/3866626/",
    ),
    _SYMANTEC.rule(
        "symantec-policy", r"connection rejected by policy", "badreputation"
    ),
    _SYMANTEC.rule("symantec-badmailfrom", r"badmailfrom", "rejected"),
    _SYMANTEC.rule(
        "symantec-blocked-sender",
        r"your (?:email address|domain) has been "
        r"(?:blocked|blacklisted)",
        "rejected",
    ),
    _SYMANTEC.rule("symantec-tls", r"tls/sslv3 connection required", "failedstarttls"),
    _SYMANTEC.rule("symantec-relay", r"as a relay", "norelaying"),
    _SYMANTEC.rule("symantec-linefeeds", r"stray linefeeds", "contenterror"),
    _CISCO.rule("cisco-access-rejected", r"your access to submit messages", "blocked"),
    _TRENDMICRO.rule("trendmicro-ers", r"trend micro", "blocked"),
)
