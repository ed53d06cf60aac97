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
from warmup.core.reply_rules import Provider, ReplyRule

__all__ = ["STRONG_RULES", "WEAK_RULES"]

_SISIMAI = "https://github.com/sisimai/go-sisimai/tree/main/reason"
_G = Provider("generic", _SISIMAI)
_POSTFIX = Provider("postfix", "https://www.postfix.org/postconf.5.html")
_EXIM = Provider("exim", "https://www.exim.org/exim-html-current/doc/html/spec_html/")
_SENDMAIL = Provider(
    "sendmail", "https://www.sendmail.org/~ca/email/doc8.12/op-sh-5.html"
)
_QMAIL = Provider("qmail", "https://cr.yp.to/qmail/qmail-smtpd.html")
_SPAMHAUS = Provider("spamhaus", "https://www.spamhaus.org/faqs/dnsbl-usage/")

STRONG_RULES: tuple[ReplyRule, ...] = (
    # The *recipient* is receiving mail too fast: retry later, never slow the lane down.
    _G.rule(
        "recipient-receiving-too-fast",
        r"receiving (?:e-?)?mail (?:at a rate|too quickly|too fast)",
        "speeding",
        verdict=Verdict.soft,
        source="https://support.google.com/a/answer/3726730",
    ),
    _G.rule(
        "recipient-receive-limit",
        r"recipient(?:'s| has)? (?:per hour message receive|exceeded their) limit",
        "speeding",
        verdict=Verdict.soft,
        source="https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/"
        "non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online",
    ),
    _G.rule(
        "dmarc-policy",
        r"dmarc policy",
        "authfailure",
        source="https://www.rfc-editor.org/rfc/rfc7489#section-6.3",
    ),
    # The sender's own setup or a site policy against it: never about the recipient.
    _EXIM.rule(
        "exim-administrative-prohibition",
        r"administrative(?:ly)? prohibit",
        "policyviolation",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-access_control_lists.html",
    ),
    _EXIM.rule(
        "spf-not-allowed",
        r"not (?:allowed|permitted|authori[sz]ed) to send (?:e?mail |messages? )?"
        r"(?:from|for|on behalf of) ",
        "authfailure",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-dkim_spf_srs_and_dmarc.html",
    ),
    _G.rule(
        "spf-designate",
        r"designate \S+ as permitted sender",
        "authfailure",
        source="https://www.rfc-editor.org/rfc/rfc7208#section-8.4",
    ),
    _G.rule(
        "spf-fail",
        r"spf (?:fail|check failed|hard ?fail|validation failed)",
        "authfailure",
        source="https://www.rfc-editor.org/rfc/rfc7208#section-8.4",
    ),
    _G.rule("helo-invalid", r"invalid (?:helo|ehlo)", "blocked"),
    _G.rule(
        "helo-rejected",
        r"helo(?:/ehlo)? (?:name|hostname|argument)s? (?:\S+ ){0,2}"
        r"(?:rejected|refused|invalid|not valid)",
        "blocked",
        source="https://www.postfix.org/postconf.5.html#reject_invalid_helo_hostname",
    ),
    _G.rule(
        "ehlo-rejected",
        r"ehlo (?:name|hostname|argument)s? (?:\S+ ){0,2}"
        r"(?:rejected|refused|invalid|not valid)",
        "blocked",
    ),
    _SPAMHAUS.rule("dnsbl-spamhaus", r"spamhaus", "blocked"),
    _POSTFIX.rule(
        "dnsbl-blocked-using",
        r"blocked using ",
        "blocked",
        source="https://www.postfix.org/postconf.5.html#reject_rbl_client",
    ),
    _G.rule("dnsbl-keyword", r"dnsbl", "blocked"),
    _G.rule("dnsbl-rbl", r"rbl\b", "blocked"),
    _G.rule("dnsbl-blacklist", r"blacklist", "blocked"),
    _G.rule("dnsbl-blocklist", r"block ?list", "blocked"),
    _G.rule("dnsbl-denylist", r"deny ?list", "blocked"),
    _G.rule("dnsbl-spamcop", r"spamcop", "blocked"),
    _G.rule("dnsbl-cbl", r"abuseat\.org", "blocked"),
    _G.rule("dnsbl-barracuda", r"barracuda ?(?:central|reputation)", "blocked"),
    _G.rule("dnsbl-cloudmark", r"cloudmark", "blocked"),
    _G.rule("dnsbl-listed-as", r"listed as abusive", "blocked"),
    _G.rule(
        "ip-blocked",
        r"your ip(?: address)?(?: \S+)? (?:has been|is) (?:temporarily )?"
        r"(?:blocked|banned|listed|blacklisted)",
        "blocked",
    ),
    _G.rule("ip-dynamic", r"dynamic(?: ips?\b|/| address| ip space)", "blocked"),
    _G.rule("ip-open-proxy", r"open (?:proxy|relay)", "blocked"),
    _G.rule("ip-reputation", r"reputation", "badreputation"),
    _G.rule(
        "ip-deferred-complaints",
        r"messages from \S+ (?:temporarily|permanently) deferred",
        "badreputation",
        source="https://github.com/KumoCorp/kumomta/blob/main/assets/policy-extras/shaping.toml",
    ),
    _POSTFIX.rule(
        "postfix-verification-pending",
        r"verification in progress",
        "onhold",
        source="https://www.postfix.org/ADDRESS_VERIFICATION_README.html",
    ),
    _G.rule("ptr-reverse-dns", r"reverse (?:dns|lookup|hostname)", "requireptr"),
    _G.rule("ptr-record", r"ptr (?:resource )?record", "requireptr"),
    _G.rule("ptr-rdns", r"rdns\b", "requireptr"),
    _POSTFIX.rule(
        "postfix-unknown-client",
        r"cannot find your (?:reverse )?hostname",
        "requireptr",
        source="https://www.postfix.org/postconf.5.html#reject_unknown_client_hostname",
    ),
    _G.rule(
        "relay-denied",
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)",
        "norelaying",
    ),
    _G.rule("relay-unable", r"unable to relay", "norelaying"),
    _G.rule(
        "relay-not-permitted",
        r"not (?:permitted|allowed|configured) to relay",
        "norelaying",
    ),
    _G.rule("relay-insecure", r"insecure mail relay", "norelaying"),
    _POSTFIX.rule("postfix-helo-rejected", r"helo command rejected", "blocked"),
    _POSTFIX.rule("postfix-client-rejected", r"client host rejected", "blocked"),
    _G.rule(
        "conn-too-many",
        r"too many (?:concurrent )?(?:smtp )?(?:connections|sessions)",
        "toomanyconn",
    ),
    _G.rule("conn-rate-limit", r"connection (?:rate )?limit", "toomanyconn"),
    _G.rule("conn-frequency", r"frequency limited", "toomanyconn"),
    _G.rule("conn-max", r"maximum number of (?:connections|sessions)", "toomanyconn"),
    _G.rule("rate-limit", r"rate[ -]?limit", "speeding"),
    _G.rule("rate-throttled", r"throttl", "speeding"),
    _POSTFIX.rule(
        "postfix-message-rate",
        r"too much mail from",
        "speeding",
        source="https://www.postfix.org/postconf.5.html#smtpd_client_message_rate_limit",
    ),
    _G.rule(
        "rate-too-many-messages", r"too many (?:messages|mails|e-?mails)", "speeding"
    ),
    _G.rule("rate-this-hour", r"sent (?:to )?too many \S+ this hour", "speeding"),
    _G.rule(
        "rate-too-fast", r"sending (?:too fast|too quickly|rate|speed)", "speeding"
    ),
    _G.rule("rate-slow-down", r"slow down", "speeding"),
    _G.rule("rate-excessive-volume", r"excessive (?:volume|traffic)", "speeding"),
    _G.rule(
        "rate-per-hour",
        r"max(?:imum)? (?:number of )?(?:e-?mails?|messages?|defers and failures) "
        r"per hour",
        "speeding",
        source="https://docs.cpanel.net/whm/server-configuration/tweak-settings/",
    ),
    _G.rule(
        "rate-hourly-limit",
        r"hourly (?:sending |message |e-?mail )?(?:limit|quota|rate)",
        "speeding",
    ),
    _G.rule(
        "rate-daily-limit",
        r"daily (?:sending |message |e-?mail )?(?:limit|quota) ",
        "speeding",
    ),
    _G.rule(
        "rate-sending-quota",
        r"sending (?:quota|limit|volume)",
        "speeding",
    ),
)

WEAK_RULES: tuple[ReplyRule, ...] = (
    # Message and content.
    _G.rule(
        "message-too-big",
        r"message (?:is )?too (?:big|large|long)",
        "mesgtoobig",
        weak=True,
    ),
    _G.rule("size-exceeds", r"size (?:\S+ )?exceeds", "mesgtoobig", weak=True),
    _G.rule("size-limit", r"size limit", "mesgtoobig", weak=True),
    _G.rule("too-many-recipients", r"too many recipients", "toomanyconn", weak=True),
    _G.rule("virus", r"virus", "virusdetected", weak=True),
    _G.rule("malware", r"malware", "virusdetected", weak=True),
    _G.rule("dmarc", r"dmarc", "authfailure", weak=True),
    _G.rule("spf", r"spf\b", "authfailure", weak=True),
    _G.rule("dkim", r"dkim", "authfailure", weak=True),
    _G.rule("unauthenticated", r"unauthenticated", "authfailure", weak=True),
    _G.rule(
        "authentication-required",
        r"authentication (?:is )?required",
        "securityerror",
        weak=True,
    ),
    _G.rule("tls-not-available", r"tls not available", "failedstarttls", weak=True),
    _G.rule("tls-required", r"tls (?:is )?required", "failedstarttls", weak=True),
    _G.rule("spam", r"spam", "spamdetected", weak=True),
    _G.rule("unsolicited", r"unsolicited", "spamdetected", weak=True),
    _G.rule(
        "content-rejected",
        r"content (?:rejected|filter|denied)",
        "spamdetected",
        weak=True,
    ),
    _G.rule("rfc-compliant", r"rfc ?5322", "notcompliantrfc", weak=True),
    _G.rule("syntax-error", r"syntax error", "syntaxerror", weak=True),
    _G.rule("bad-sequence", r"bad sequence of commands", "syntaxerror", weak=True),
    _G.rule(
        "command-unrecognized",
        r"command (?:not )?(?:unrecognized|recognized|"
        r"implemented|parameter not implemented)",
        "syntaxerror",
        weak=True,
    ),
    _G.rule("unrecognized-command", r"unrecognized command", "syntaxerror", weak=True),
    _G.rule(
        "too-many-errors",
        r"too many (?:errors|bad commands|invalid commands)",
        "syntaxerror",
        weak=True,
    ),
    _G.rule("policy", r"polic(?:y|ies)", "policyviolation", weak=True),
    # Transient trouble on the far side.
    _QMAIL.rule("qmail-queue-too-long", r"in the queue too long", "expired", weak=True),
    _G.rule("timeout", r"time(?:d )?[ -]?out", "expired", weak=True),
    _G.rule(
        "connection-failed",
        r"connection (?:refused|reset|dropped|closed|lost)",
        "networkerror",
        weak=True,
    ),
    _G.rule(
        "dns-failure",
        r"dns (?:query failed|lookup failed|failure|error)",
        "networkerror",
        weak=True,
    ),
    _G.rule(
        "lost-connection",
        r"lost connection with",
        "networkerror",
        weak=True,
        source="https://www.postfix.org/postconf.5.html#smtp_data_done_timeout",
    ),
    _G.rule("mail-loop", r"mail loop", "networkerror", weak=True),
    _G.rule("routing-loop", r"routing loop", "networkerror", weak=True),
    _G.rule("too-many-hops", r"too many hops", "networkerror", weak=True),
    _G.rule(
        "disk-full",
        r"insufficient (?:disk|system) (?:space|storage)",
        "systemfull",
        weak=True,
    ),
    _G.rule(
        "closing-channel",
        r"service not available, closing transmission channel",
        "blocked",
        weak=True,
    ),
    _G.rule("access-denied", r"access denied", "blocked", weak=True),
    _G.rule(
        "not-allowed-to-send",
        r"not (?:allowed|authorized|permitted) to send",
        "blocked",
        weak=True,
    ),
    _G.rule("rejected-bare", r"rejected", "blocked", codes=("5",), weak=True),
    _G.rule("refused-bare", r"refused", "blocked", codes=("5",), weak=True),
    _G.rule(
        "service-unavailable",
        r"service (?:is )?(?:currently |temporarily )?"
        r"(?:unavailable|not available)",
        "systemerror",
        weak=True,
    ),
    _G.rule("try-again-later", r"try (?:again )?later", "systemerror", weak=True),
    _G.rule("temporary-failure", r"temporar(?:y|ily)", "systemerror", weak=True),
    _G.rule(
        "server-busy", r"server (?:is )?(?:busy|too busy)", "systemerror", weak=True
    ),
    _G.rule("local-error", r"local error", "systemerror", weak=True),
)
