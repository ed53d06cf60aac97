"""Reply rules of the big mailbox providers: Gmail, Microsoft, Yahoo/AOL, Apple, ….

Also Comcast, Cox, AT&T and GoDaddy. Each rule cites the provider page its text comes
from; Sisimai's ``rhost`` modules (https://github.com/sisimai/go-sisimai/tree/main/rhost,
BSD-2-Clause) helped find them. Provider rules are strong: they are checked before the
enhanced status code.
"""

from __future__ import annotations

from warmup.core.model import Verdict
from warmup.core.replies.rules import Provider, ReplyRule

__all__ = ["MAILBOX_RULES"]

_GMAIL = Provider("gmail", "https://support.google.com/a/answer/3726730")
_MS = Provider(
    "microsoft",
    "https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/"
    "non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online",
)
_OUTLOOK = Provider(
    "outlook",
    "https://sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx",
)
_YAHOO = Provider("yahoo", "https://senders.yahooinc.com/smtp-error-codes/")
_AOL = Provider("aol", "https://postmaster.aol.com/error-codes")
_APPLE = Provider("apple", "https://support.apple.com/en-us/102322")
_COMCAST = Provider(
    "comcast", "https://spa.xfinity.com/postmaster?faq=comcast-mail-errors"
)
_COX = Provider(
    "cox",
    "https://www.cox.com/residential/support/cox-postmaster-email-administration.html",
)
_ATT = Provider("att", "https://www.att.com/support/article/email-support/KM1043293/")
_GODADDY = Provider(
    "godaddy",
    "https://ca.godaddy.com/help/fix-rejected-email-with-a-bounce-error-40685",
)

_GMAIL_RULES: tuple[ReplyRule, ...] = (
    _GMAIL.rule("gmail-4.2.1-relay-peak", r"peak smtp relay limit", "speeding"),
    _GMAIL.rule("gmail-4.2.2-storage", r"inbox is out of storage", "mailboxfull"),
    _GMAIL.rule(
        "gmail-4.3.0-rejected", r"server (?:has )?temporarily rejected", "systemerror"
    ),
    _GMAIL.rule("gmail-4.3.0-domains", r"multiple destination domains", "systemerror"),
    _GMAIL.rule("gmail-4.3.0-system", r"temporary system problem", "systemerror"),
    _GMAIL.rule("gmail-4.4.2-timeout", r"timeout - closing connection", "expired"),
    _GMAIL.rule("gmail-4.4.5-busy", r"server busy, try again later", "systemerror"),
    _GMAIL.rule("gmail-5.7.11-syntax", r"syntax error \(no parameters", "syntaxerror"),
    _GMAIL.rule("gmail-4.5.0-protocol", r"smtp protocol violation", "syntaxerror"),
    _GMAIL.rule("gmail-4.5.3-policy-size", r"domain policy size", "systemerror"),
    _GMAIL.rule(
        "gmail-4.5.3-recipients",
        r"too many recipients",
        "toomanyconn",
        enhanced="x.5.3",
    ),
    _GMAIL.rule("gmail-4.7.0-expired", r"connection expired", "expired"),
    _GMAIL.rule("gmail-4.7.0-whitelist", r"ip not in whitelist", "blocked"),
    _GMAIL.rule(
        "gmail-4.7.0-closing", r"try again later, closing connection", "blocked"
    ),
    _GMAIL.rule("gmail-4.7.0-login", r"too many login attempts", "securityerror"),
    _GMAIL.rule("gmail-4.7.0-tls", r"tls required for rcpt domain", "failedstarttls"),
    _GMAIL.rule("gmail-4.7.0-content", r"nature of the content", "spamdetected"),
    _GMAIL.rule("gmail-4.7.23-ptr", r"have a ptr record", "requireptr"),
    _GMAIL.rule(
        "gmail-5.7.25-ptr-match",
        r"does not match the ip address of the hostname",
        "requireptr",
    ),
    _GMAIL.rule("gmail-5.7.1-ipv6", r"ipv6 sending guidelines", "requireptr"),
    _GMAIL.rule("gmail-4.7.24-spf", r"spf record of the sending domain", "authfailure"),
    _GMAIL.rule(
        "gmail-4.7.26-auth", r"requires all senders to authenticate", "authfailure"
    ),
    _GMAIL.rule(
        "gmail-4.7.27-spf", r"authenticate their e?mail with spf", "authfailure"
    ),
    _GMAIL.rule(
        "gmail-4.7.30-dkim", r"authenticate their e?mail with dkim", "authfailure"
    ),
    _GMAIL.rule("gmail-5.7.30-dkim", r"didn't pass dkim", "authfailure"),
    _GMAIL.rule(
        "gmail-4.7.32-alignment",
        r"aligned with either the authenticated",
        "authfailure",
    ),
    _GMAIL.rule("gmail-4.7.40-dmarc", r"have a dmarc record", "authfailure"),
    _GMAIL.rule("gmail-5.7.26-hard-fail", r"hard fail policy", "authfailure"),
    _GMAIL.rule(
        "gmail-5.7.26-no-auth", r"authentication information or fails", "authfailure"
    ),
    _GMAIL.rule("gmail-4.7.29-tls", r"senders to use tls", "failedstarttls"),
    _GMAIL.rule("gmail-4.7.29-no-tls", r"not using a tls connection", "failedstarttls"),
    _GMAIL.rule("gmail-5.7.29-no-tls", r"sent over a tls connection", "failedstarttls"),
    _GMAIL.rule("gmail-4.7.28-message-id", r"same message-id", "policyviolation"),
    _GMAIL.rule(
        "gmail-5.7.28-blocked", r"unusual (?:rate|amount) of", "blocked", codes=("5",)
    ),
    _GMAIL.rule("gmail-4.7.28-rate", r"unusual (?:rate|amount) of", "speeding"),
    _GMAIL.rule(
        "gmail-5.1.1-no-account",
        r"account that you tried to reach does not exist",
        "userunknown",
    ),
    _GMAIL.rule(
        "gmail-5.2.1-inactive", r"account that you tried to reach is", "suspend"
    ),
    _GMAIL.rule(
        "gmail-5.1.2-domain", r"able to find the recipient domain", "hostunknown"
    ),
    _GMAIL.rule(
        "gmail-5.1.3-recipient",
        r"recipient address \S+ is not a valid rfc",
        "userunknown",
    ),
    _GMAIL.rule(
        "gmail-5.1.7-sender", r"sender address \S+ is not a valid rfc", "rejected"
    ),
    _GMAIL.rule("gmail-5.3.4-size", r"exceed(?:s|ed) google's", "mesgtoobig"),
    _GMAIL.rule("gmail-5.4.5-daily", r"daily (?:user sending|smtp relay)", "speeding"),
    _GMAIL.rule("gmail-5.4.6-hops", r"exceeded 50 hops", "networkerror"),
    _GMAIL.rule("gmail-5.5.1-helo-first", r"helo first", "syntaxerror"),
    _GMAIL.rule("gmail-5.5.1-rcpt-first", r"rcpt first", "syntaxerror"),
    _GMAIL.rule("gmail-5.5.1-bdat", r"no data after bdat", "syntaxerror"),
    _GMAIL.rule("gmail-5.5.4-helo", r"helo/ehlo argument", "blocked"),
    _GMAIL.rule("gmail-5.6.0-malformed", r"message is malformed", "notcompliantrfc"),
    _GMAIL.rule(
        "gmail-5.7.0-security",
        r"presents a potential security issue",
        "policyviolation",
    ),
    _GMAIL.rule("gmail-5.7.0-attachment", r"illegal attachment", "policyviolation"),
    _GMAIL.rule(
        "gmail-5.7.0-identity", r"no identity changes permitted", "securityerror"
    ),
    _GMAIL.rule("gmail-5.7.0-relay", r"relay denied", "norelaying"),
    _GMAIL.rule("gmail-5.7.0-sending-denied", r"sending denied", "rejected"),
    _GMAIL.rule(
        "gmail-5.7.0-unauth-commands",
        r"too many unauthenticated commands",
        "syntaxerror",
    ),
    _GMAIL.rule("gmail-5.7.0-starttls", r"must issue a starttls", "failedstarttls"),
    _GMAIL.rule("gmail-5.7.1-policy", r"has a policy that prohibit", "policyviolation"),
    _GMAIL.rule(
        "gmail-5.7.1-relay-credentials", r"invalid credentials for relay", "norelaying"
    ),
    _GMAIL.rule("gmail-5.7.1-unsolicited", r"likely unsolicited", "spamdetected"),
    _GMAIL.rule(
        "gmail-5.7.1-from",
        r"missing a valid (?:address in the from|message-id)",
        "notcompliantrfc",
    ),
    _GMAIL.rule(
        "gmail-5.7.1-multiple-from",
        r"multiple addresses in (?:the )?from",
        "notcompliantrfc",
    ),
    _GMAIL.rule(
        "gmail-5.7.1-unicode",
        r"unicode character in a disallowed header",
        "notcompliantrfc",
    ),
    _GMAIL.rule("gmail-5.7.1-rfc5322", r"not rfc 5322 compliant", "notcompliantrfc"),
    _GMAIL.rule("gmail-5.7.1-encoded-word", r"encoded-word syntax", "notcompliantrfc"),
    _GMAIL.rule(
        "gmail-5.7.1-not-authorized",
        r"not authorized to send e?mail directly",
        "blocked",
    ),
    _GMAIL.rule(
        "gmail-5.7.14-browser",
        r"log in (?:through|with) your web browser",
        "securityerror",
    ),
    _GMAIL.rule(
        "gmail-5.7.9-app-password", r"application-specific password", "securityerror"
    ),
    _GMAIL.rule(
        "gmail-5.7.8-credentials",
        r"username and password not accepted",
        "securityerror",
    ),
    _GMAIL.rule(
        "gmail-5.7.40-auth-type", r"unrecognized authentication type", "securityerror"
    ),
    _GMAIL.rule(
        "gmail-5.7.40-xoauth", r"xoauth is no longer supported", "securityerror"
    ),
)

_MICROSOFT_RULES: tuple[ReplyRule, ...] = (
    _OUTLOOK.rule(
        "outlook-s3150-network",
        r"part of their network is on our block list",
        "blocked",
    ),
    _OUTLOOK.rule(
        "outlook-4.7.650-reputation",
        r"temporarily rate limited due to ip",
        "badreputation",
    ),
    _MS.rule(
        "microsoft-4.7.652-connections",
        r"exceeded the maximum number of connections",
        "toomanyconn",
    ),
    _OUTLOOK.rule(
        "outlook-4.7.500-busy",
        r"server busy\. please try again later from",
        "badreputation",
    ),
    _MS.rule(
        "microsoft-4.7.5xx-try-later",
        r"access denied, please try again later",
        "blocked",
    ),
    _MS.rule("microsoft-5.7.511-banned-sender", r"banned sender", "blocked"),
    _MS.rule("microsoft-5.7.606-banned-ip", r"banned sending ip", "blocked"),
    _MS.rule("microsoft-5.7.508-limits", r"exceeded permitted limits", "speeding"),
    _MS.rule("microsoft-5.7.509-dmarc", r"does not pass dmarc", "authfailure"),
    _MS.rule(
        "microsoft-5.7.515-auth-level",
        r"meet the required authentication level",
        "authfailure",
    ),
    _MS.rule(
        "microsoft-5.7.23-spf", r"sender policy framework violation", "authfailure"
    ),
    _MS.rule("microsoft-4.7.26-ipv6", r"must pass either spf or dkim", "authfailure"),
    _MS.rule("microsoft-5.7.25-ptr", r"must have a reverse dns record", "requireptr"),
    _MS.rule("microsoft-5.7.506-helo", r"bad helo", "blocked"),
    _MS.rule("microsoft-4.7.66-tls", r"tls 1\.0 and 1\.1 are not", "failedstarttls"),
    _MS.rule(
        "microsoft-5.7.507-recipient-org",
        r"access denied, rejected by recipient",
        "blocked",
    ),
    _MS.rule("microsoft-5.7.510-ipv6", r"not accept email over ipv6", "blocked"),
    _MS.rule("microsoft-5.7.513-customer-block", r"customer block list", "blocked"),
    _MS.rule(
        "microsoft-5.7.512-rfc5322", r"rfc 5322 section 3\.6\.2", "notcompliantrfc"
    ),
    _MS.rule("microsoft-5.7.501-spam-abuse", r"spam abuse detected", "rejected"),
    _MS.rule("microsoft-5.7.700-tenant", r"tenant has exceeded threshold", "speeding"),
    _MS.rule(
        "microsoft-5.7.705-traffic", r"traffic not accepted from this ip", "blocked"
    ),
    _MS.rule("microsoft-5.7.750-unregistered", r"unregistered domains", "rejected"),
    _MS.rule(
        "microsoft-5.2.122-receive-limit",
        r"recipient thread limit",
        "speeding",
        verdict=Verdict.soft,
    ),
    _MS.rule("microsoft-5.2.2-submission", r"submission quota exceeded", "speeding"),
    _MS.rule(
        "microsoft-5.1.90-daily", r"daily limit for message recipients", "speeding"
    ),
    _MS.rule(
        "microsoft-5.4.1-dbeb",
        r"recipient address rejected: access denied",
        "userunknown",
        enhanced="x.4.1",
    ),
    _MS.rule("microsoft-5.7.505-banned-recipient", r"banned recipient", "suspend"),
    _MS.rule("microsoft-5.2.1-cannot-access", r"mailbox cannot be accessed", "suspend"),
    _MS.rule(
        "microsoft-5.5.0-mailbox",
        r"requested action not taken: mailbox unavailable",
        "userunknown",
        codes=("55",),
    ),
    _MS.rule("microsoft-5.4.4-nonexistent", r"nonexistent ?domain", "hostunknown"),
    _MS.rule("microsoft-5.1.351-unknown", r"returned unknown recipient", "userunknown"),
    _MS.rule("microsoft-5.6.11-bare-lf", r"bare ?line ?feed", "contenterror"),
    _MS.rule("microsoft-5.1.8-outbound", r"bad outbound sender", "rejected"),
    _MS.rule("microsoft-5.1.0-sender-denied", r"sender denied", "rejected"),
    _MS.rule("microsoft-5.7.1-not-authorized", r"delivery not authorized", "rejected"),
    _MS.rule(
        "microsoft-5.7.12-organization",
        r"not authenticated by organization",
        "rejected",
    ),
    _MS.rule("microsoft-5.7.124-allowed", r"not in allowed-senders list", "rejected"),
    _MS.rule("microsoft-5.7.133-group", r"sender ?not ?authenticated ?for", "rejected"),
    _MS.rule(
        "microsoft-5.7.57-anonymous",
        r"client (?:was )?not authenticated",
        "securityerror",
    ),
    _MS.rule(
        "microsoft-5.7.3-exchange-auth",
        r"cannot achieve exchange server",
        "securityerror",
    ),
    _MS.rule("microsoft-4.4.7-delayed", r"message delayed", "expired"),
    _MS.rule("microsoft-5.4.300-expired", r"message expired", "expired"),
    _MS.rule(
        "microsoft-5.1.10-not-found",
        r"recipient ?not ?found by smtp address lookup",
        "userunknown",
    ),
    _MS.rule(
        "microsoft-4.4.316-refused",
        r"connection refused",
        "networkerror",
        enhanced="x.4.316",
    ),
    _MS.rule("microsoft-4.4.312-dns", r"dns query failed", "networkerror"),
    _MS.rule("microsoft-4.4.22-replicated", r"failed to be replicated", "systemerror"),
    _MS.rule("microsoft-4.7.700-pfa", r"pfa agent busy", "systemerror"),
    _MS.rule(
        "microsoft-4.3.1-resources", r"insufficient system resources", "systemfull"
    ),
    _OUTLOOK.rule("outlook-rp-001", r"rp-00[12]", "badreputation"),
    _OUTLOOK.rule("outlook-rp-003", r"rp-003", "toomanyconn"),
    _OUTLOOK.rule("outlook-sc-001", r"sc-001", "badreputation"),
    _OUTLOOK.rule("outlook-sc-002", r"sc-002", "policyviolation"),
    _OUTLOOK.rule("outlook-sc-004", r"sc-00[34]", "blocked"),
    _OUTLOOK.rule("outlook-dy-001", r"dy-00[12]", "blocked"),
    _OUTLOOK.rule("outlook-ou-001", r"ou-001", "blocked"),
    _OUTLOOK.rule("outlook-ou-002", r"ou-002", "badreputation"),
)

_YAHOO_RULES: tuple[ReplyRule, ...] = (
    _YAHOO.rule("yahoo-tss04", r"tss04", "badreputation"),
    _YAHOO.rule("yahoo-ts0x", r"ts0[1-6]\b", "badreputation"),
    _YAHOO.rule("yahoo-tss09", r"tss(?:09|1[01])", "blocked"),
    _YAHOO.rule("yahoo-ph01", r"ph0[1-9]", "policyviolation"),
    _YAHOO.rule(
        "yahoo-policy-reasons", r"not accepted for policy reasons", "policyviolation"
    ),
    _YAHOO.rule(
        "yahoo-dd-no-account", r"this user doesn't have an? \S+ account", "userunknown"
    ),
    _YAHOO.rule("yahoo-dd-disabled", r"this mailbox is disabled", "suspend"),
    _YAHOO.rule("yahoo-dd-no-longer-valid", r"is no longer valid", "suspend"),
    _YAHOO.rule("yahoo-unresolvable-from", r"unresolvable rfc", "rejected"),
    _YAHOO.rule(
        "yahoo-max-per-connection", r"max message per connection", "toomanyconn"
    ),
    _YAHOO.rule("yahoo-resources", r"resources temporarily unavailable", "systemerror"),
    _YAHOO.rule(
        "yahoo-headers-rfc", r"headers are not rfc compliant", "notcompliantrfc"
    ),
    _AOL.rule("aol-rly-b", r"rly:b[1-3]", "blocked"),
    _AOL.rule("aol-rly-bl", r"rly:bl", "blocked"),
    _AOL.rule("aol-dyn", r"dyn:t[12]", "blocked"),
    _AOL.rule("aol-will-not-accept", r"aol will not accept delivery", "blocked"),
)

_APPLE_RULES: tuple[ReplyRule, ...] = (
    _APPLE.rule("apple-cs01", r"cs0[1-9]", "policyviolation"),
    _APPLE.rule("apple-hm", r"hm0[0-9]", "policyviolation"),
    _APPLE.rule("apple-hme1", r"hme1", "authfailure"),
    _APPLE.rule("apple-spf-dkim", r"failing both spf and dkim", "authfailure"),
    _APPLE.rule("apple-local-policy", r"due to local policy", "policyviolation"),
    _APPLE.rule(
        "apple-excessive-volume", r"deferred due to excessive volume", "speeding"
    ),
    _APPLE.rule(
        "apple-service-unavailable", r"service unavailable - try again later", "blocked"
    ),
    _APPLE.rule("apple-not-accepting", r"not accepting connections", "blocked"),
    _APPLE.rule("apple-inactive", r"inactive email address", "userunknown"),
    _APPLE.rule("apple-over-quota", r"user is over quota", "mailboxfull"),
    _APPLE.rule(
        "apple-no-longer-on-server", r"recipient no longer on server", "hasmoved"
    ),
)

_OTHER_US_RULES: tuple[ReplyRule, ...] = (
    _COMCAST.rule("comcast-rl", r"rl0000\d\d", "speeding"),
    _COMCAST.rule("comcast-bl", r"bl000[01]\d\d", "blocked"),
    _COMCAST.rule("comcast-es", r"es0000[01]\d", "blocked"),
    _COX.rule("cox-aup-blocked", r"aup#(?:cxbl|cdrbl|ipbl)", "blocked"),
    _COX.rule("cox-aup-dns", r"aup#cxdns", "requireptr"),
    _COX.rule("cox-aup-sender", r"aup#cxsndr", "authfailure"),
    _COX.rule("cox-aup-connections", r"aup#cxcnct", "toomanyconn"),
    _COX.rule("cox-aup-rate", r"aup#cxmxrt", "speeding"),
    _COX.rule("cox-aup-url", r"aup#urlbl", "spamdetected"),
    _COX.rule("cox-invalid-recipients", r"too many invalid recipients", "blocked"),
    _ATT.rule("att-dnsbl", r"_is_blocked", "blocked"),
    _GODADDY.rule("godaddy-ib-blocked", r"ib1(?:0[3-6]|1[0-3])\b", "blocked"),
    _GODADDY.rule("godaddy-ib-rate", r"ib(?:101|504|510|607)\b", "speeding"),
    _GODADDY.rule("godaddy-ib-sessions", r"ib(?:007|605)\b", "toomanyconn"),
    _GODADDY.rule("godaddy-ib-from", r"ib50[126]\b", "rejected"),
    _GODADDY.rule("godaddy-ib-ptr", r"ib108\b", "requireptr"),
)

MAILBOX_RULES: tuple[ReplyRule, ...] = (
    _GMAIL_RULES + _MICROSOFT_RULES + _YAHOO_RULES + _APPLE_RULES + _OTHER_US_RULES
)
