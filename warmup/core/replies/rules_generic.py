"""Generic reply rules: DNSBLs, rate limits, Postfix/Exim/Sendmail/qmail, keywords.

``STRONG_RULES`` blame the sender's IP or rate and are checked before the enhanced
status code, so a ``550 5.1.1 … has sent too many recipients this hour`` is a throttle,
never a hard bounce. ``WEAK_RULES`` are keywords for replies whose enhanced code says
nothing specific. Facts come from the cited pages and from Sisimai's reason tables
(https://github.com/sisimai/go-sisimai/tree/main/reason, BSD-2-Clause); the patterns are
ours.
"""

from __future__ import annotations

from warmup.core.model import Verdict
from warmup.core.replies.rules import (
    EXIM,
    GENERIC,
    POSTFIX,
    QMAIL,
    Provider,
    ReplyRule,
)

__all__ = ["STRONG_RULES", "WEAK_RULES"]

_SPAMHAUS = Provider("spamhaus", "https://www.spamhaus.org/faqs/dnsbl-usage/")

STRONG_RULES: tuple[ReplyRule, ...] = (
    # The *recipient* is receiving mail too fast: retry later, never slow the lane down.
    GENERIC.rule(
        "recipient-receiving-too-fast",
        r"receiving (?:e-?)?mail (?:at a rate|too quickly|too fast)",
        "speeding",
        verdict=Verdict.soft,
        source="https://support.google.com/a/answer/3726730",
    ),
    GENERIC.rule(
        "recipient-receive-limit",
        r"recipient(?:'s| has)? (?:per hour message receive|exceeded their) limit",
        "speeding",
        verdict=Verdict.soft,
        source="https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/"
        "non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online",
    ),
    GENERIC.rule(
        "dmarc-policy",
        r"dmarc policy",
        "authfailure",
        source="https://www.rfc-editor.org/rfc/rfc7489#section-6.3",
    ),
    # The sender's own setup or a site policy against it: never about the recipient.
    EXIM.rule(
        "exim-administrative-prohibition",
        r"administrative(?:ly)? prohibit",
        "policyviolation",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-access_control_lists.html",
    ),
    EXIM.rule(
        "spf-not-allowed",
        r"not (?:allowed|permitted|authori[sz]ed) to send (?:e?mail |messages? )?"
        r"(?:from|for|on behalf of) ",
        "authfailure",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-dkim_spf_srs_and_dmarc.html",
    ),
    GENERIC.rule(
        "spf-designate",
        r"designate \S+ as permitted sender",
        "authfailure",
        source="https://www.rfc-editor.org/rfc/rfc7208#section-8.4",
    ),
    GENERIC.rule(
        "spf-fail",
        r"spf (?:fail|check failed|hard ?fail|validation failed)",
        "authfailure",
        source="https://www.rfc-editor.org/rfc/rfc7208#section-8.4",
    ),
    GENERIC.rule("helo-invalid", r"invalid (?:helo|ehlo)", "blocked"),
    GENERIC.rule(
        "helo-rejected",
        r"helo(?:/ehlo)? (?:name|hostname|argument)s? (?:\S+ ){0,2}"
        r"(?:rejected|refused|invalid|not valid)",
        "blocked",
        source="https://www.postfix.org/postconf.5.html#reject_invalid_helo_hostname",
    ),
    GENERIC.rule(
        "ehlo-rejected",
        r"ehlo (?:name|hostname|argument)s? (?:\S+ ){0,2}"
        r"(?:rejected|refused|invalid|not valid)",
        "blocked",
    ),
    _SPAMHAUS.rule("dnsbl-spamhaus", r"spamhaus", "blocked"),
    POSTFIX.rule(
        "dnsbl-blocked-using",
        r"blocked using ",
        "blocked",
        source="https://www.postfix.org/postconf.5.html#reject_rbl_client",
    ),
    GENERIC.rule("dnsbl-keyword", r"dnsbl", "blocked"),
    GENERIC.rule("dnsbl-rbl", r"rbl\b", "blocked"),
    GENERIC.rule("dnsbl-blacklist", r"blacklist", "blocked"),
    GENERIC.rule("dnsbl-blocklist", r"block ?list", "blocked"),
    GENERIC.rule("dnsbl-denylist", r"deny ?list", "blocked"),
    GENERIC.rule("dnsbl-spamcop", r"spamcop", "blocked"),
    GENERIC.rule("dnsbl-cbl", r"abuseat\.org", "blocked"),
    GENERIC.rule("dnsbl-barracuda", r"barracuda ?(?:central|reputation)", "blocked"),
    GENERIC.rule("dnsbl-cloudmark", r"cloudmark", "blocked"),
    GENERIC.rule("dnsbl-listed-as", r"listed as abusive", "blocked"),
    GENERIC.rule(
        "ip-blocked",
        r"your ip(?: address)?(?: \S+)? (?:has been|is) (?:temporarily )?"
        r"(?:blocked|banned|listed|blacklisted)",
        "blocked",
    ),
    GENERIC.rule("ip-dynamic", r"dynamic(?: ips?\b|/| address| ip space)", "blocked"),
    GENERIC.rule("ip-open-proxy", r"open (?:proxy|relay)", "blocked"),
    GENERIC.rule("ip-reputation", r"reputation", "badreputation"),
    GENERIC.rule(
        "ip-deferred-complaints",
        r"messages from \S+ (?:temporarily|permanently) deferred",
        "badreputation",
        source="https://github.com/KumoCorp/kumomta/blob/main/assets/policy-extras/shaping.toml",
    ),
    POSTFIX.rule(
        "postfix-verification-pending",
        r"verification in progress",
        "onhold",
        source="https://www.postfix.org/ADDRESS_VERIFICATION_README.html",
    ),
    GENERIC.rule("ptr-reverse-dns", r"reverse (?:dns|lookup|hostname)", "requireptr"),
    GENERIC.rule("ptr-record", r"ptr (?:resource )?record", "requireptr"),
    GENERIC.rule("ptr-rdns", r"rdns\b", "requireptr"),
    POSTFIX.rule(
        "postfix-unknown-client",
        r"cannot find your (?:reverse )?hostname",
        "requireptr",
        source="https://www.postfix.org/postconf.5.html#reject_unknown_client_hostname",
    ),
    GENERIC.rule(
        "relay-denied",
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)",
        "norelaying",
    ),
    GENERIC.rule("relay-unable", r"unable to relay", "norelaying"),
    GENERIC.rule(
        "relay-not-permitted",
        r"not (?:permitted|allowed|configured) to relay",
        "norelaying",
    ),
    GENERIC.rule("relay-insecure", r"insecure mail relay", "norelaying"),
    POSTFIX.rule("postfix-helo-rejected", r"helo command rejected", "blocked"),
    POSTFIX.rule("postfix-client-rejected", r"client host rejected", "blocked"),
    GENERIC.rule(
        "conn-too-many",
        r"too many (?:concurrent )?(?:smtp )?(?:connections|sessions)",
        "toomanyconn",
    ),
    GENERIC.rule("conn-rate-limit", r"connection (?:rate )?limit", "toomanyconn"),
    GENERIC.rule("conn-frequency", r"frequency limited", "toomanyconn"),
    GENERIC.rule(
        "conn-max", r"maximum number of (?:connections|sessions)", "toomanyconn"
    ),
    GENERIC.rule("rate-limit", r"rate[ -]?limit", "speeding"),
    GENERIC.rule("rate-throttled", r"throttl", "speeding"),
    POSTFIX.rule(
        "postfix-message-rate",
        r"too much mail from",
        "speeding",
        source="https://www.postfix.org/postconf.5.html#smtpd_client_message_rate_limit",
    ),
    GENERIC.rule(
        "rate-too-many-messages", r"too many (?:messages|mails|e-?mails)", "speeding"
    ),
    GENERIC.rule("rate-this-hour", r"sent (?:to )?too many \S+ this hour", "speeding"),
    GENERIC.rule(
        "rate-too-fast", r"sending (?:too fast|too quickly|rate|speed)", "speeding"
    ),
    GENERIC.rule("rate-slow-down", r"slow down", "speeding"),
    GENERIC.rule("rate-excessive-volume", r"excessive (?:volume|traffic)", "speeding"),
    GENERIC.rule(
        "rate-per-hour",
        r"max(?:imum)? (?:number of )?(?:e-?mails?|messages?|defers and failures) "
        r"per hour",
        "speeding",
        source="https://docs.cpanel.net/whm/server-configuration/tweak-settings/",
    ),
    GENERIC.rule(
        "rate-hourly-limit",
        r"hourly (?:sending |message |e-?mail )?(?:limit|quota|rate)",
        "speeding",
    ),
    GENERIC.rule(
        "rate-daily-limit",
        r"daily (?:sending |message |e-?mail )?(?:limit|quota) ",
        "speeding",
    ),
    GENERIC.rule(
        "rate-sending-quota",
        r"sending (?:quota|limit|volume)",
        "speeding",
    ),
)

WEAK_RULES: tuple[ReplyRule, ...] = (
    # Message and content.
    GENERIC.rule(
        "message-too-big",
        r"message (?:is )?too (?:big|large|long)",
        "mesgtoobig",
        weak=True,
    ),
    GENERIC.rule("size-exceeds", r"size (?:\S+ )?exceeds", "mesgtoobig", weak=True),
    GENERIC.rule("size-limit", r"size limit", "mesgtoobig", weak=True),
    GENERIC.rule(
        "too-many-recipients", r"too many recipients", "toomanyconn", weak=True
    ),
    GENERIC.rule("virus", r"virus", "virusdetected", weak=True),
    GENERIC.rule("malware", r"malware", "virusdetected", weak=True),
    GENERIC.rule("dmarc", r"dmarc", "authfailure", weak=True),
    GENERIC.rule("spf", r"spf\b", "authfailure", weak=True),
    GENERIC.rule("dkim", r"dkim", "authfailure", weak=True),
    GENERIC.rule("unauthenticated", r"unauthenticated", "authfailure", weak=True),
    GENERIC.rule(
        "authentication-required",
        r"authentication (?:is )?required",
        "securityerror",
        weak=True,
    ),
    GENERIC.rule(
        "tls-not-available", r"tls not available", "failedstarttls", weak=True
    ),
    GENERIC.rule("tls-required", r"tls (?:is )?required", "failedstarttls", weak=True),
    GENERIC.rule("spam", r"spam", "spamdetected", weak=True),
    GENERIC.rule("unsolicited", r"unsolicited", "spamdetected", weak=True),
    GENERIC.rule(
        "content-rejected",
        r"content (?:rejected|filter|denied)",
        "spamdetected",
        weak=True,
    ),
    GENERIC.rule("rfc-compliant", r"rfc ?5322", "notcompliantrfc", weak=True),
    GENERIC.rule("syntax-error", r"syntax error", "syntaxerror", weak=True),
    GENERIC.rule("bad-sequence", r"bad sequence of commands", "syntaxerror", weak=True),
    GENERIC.rule(
        "command-unrecognized",
        r"command (?:not )?(?:unrecognized|recognized|"
        r"implemented|parameter not implemented)",
        "syntaxerror",
        weak=True,
    ),
    GENERIC.rule(
        "unrecognized-command", r"unrecognized command", "syntaxerror", weak=True
    ),
    GENERIC.rule(
        "too-many-errors",
        r"too many (?:errors|bad commands|invalid commands)",
        "syntaxerror",
        weak=True,
    ),
    GENERIC.rule("policy", r"polic(?:y|ies)", "policyviolation", weak=True),
    # Transient trouble on the far side.
    QMAIL.rule("qmail-queue-too-long", r"in the queue too long", "expired", weak=True),
    GENERIC.rule("timeout", r"time(?:d )?[ -]?out", "expired", weak=True),
    GENERIC.rule(
        "connection-failed",
        r"connection (?:refused|reset|dropped|closed|lost)",
        "networkerror",
        weak=True,
    ),
    GENERIC.rule(
        "dns-failure",
        r"dns (?:query failed|lookup failed|failure|error)",
        "networkerror",
        weak=True,
    ),
    GENERIC.rule(
        "lost-connection",
        r"lost connection with",
        "networkerror",
        weak=True,
        source="https://www.postfix.org/postconf.5.html#smtp_data_done_timeout",
    ),
    GENERIC.rule("mail-loop", r"mail loop", "networkerror", weak=True),
    GENERIC.rule("routing-loop", r"routing loop", "networkerror", weak=True),
    GENERIC.rule("too-many-hops", r"too many hops", "networkerror", weak=True),
    GENERIC.rule(
        "disk-full",
        r"insufficient (?:disk|system) (?:space|storage)",
        "systemfull",
        weak=True,
    ),
    GENERIC.rule(
        "closing-channel",
        r"service not available, closing transmission channel",
        "blocked",
        weak=True,
    ),
    GENERIC.rule("access-denied", r"access denied", "blocked", weak=True),
    GENERIC.rule(
        "not-allowed-to-send",
        r"not (?:allowed|authorized|permitted) to send",
        "blocked",
        weak=True,
    ),
    GENERIC.rule("rejected-bare", r"rejected", "blocked", codes=("5",), weak=True),
    GENERIC.rule("refused-bare", r"refused", "blocked", codes=("5",), weak=True),
    GENERIC.rule(
        "service-unavailable",
        r"service (?:is )?(?:currently |temporarily )?"
        r"(?:unavailable|not available)",
        "systemerror",
        weak=True,
    ),
    GENERIC.rule("try-again-later", r"try (?:again )?later", "systemerror", weak=True),
    GENERIC.rule("temporary-failure", r"temporar(?:y|ily)", "systemerror", weak=True),
    GENERIC.rule(
        "server-busy", r"server (?:is )?(?:busy|too busy)", "systemerror", weak=True
    ),
    GENERIC.rule("local-error", r"local error", "systemerror", weak=True),
)
