"""Generic reply text that says something specific: sender, greylisting, dead or
disabled recipients, dead domains, full mailboxes.

These rules are strong: they come after the provider rules and the sender-blaming
generic rules of :mod:`warmup.core.reply_rules_generic`, but *before* the enhanced
status code, because specific wording beats a generic code (``550 5.1.1 … mailbox over
quota`` is a full mailbox, ``550 5.2.1 … user does not exist`` a dead one). Within
them: the sender side first (a sender rejection often quotes the recipient check it
failed), then words about the recipient's *state* (inactive, disabled, locked, on
hold: soft) before the words about its existence (hard). The few rules left ``weak``
say too little to beat a code. Facts come from the cited pages and from Sisimai's
reason tables (https://github.com/sisimai/go-sisimai/tree/main/reason, BSD-2-Clause);
the patterns are ours.
"""

from __future__ import annotations

from warmup.core.reply_rules import Provider, ReplyRule

__all__ = ["SPECIFIC_RULES"]

_SISIMAI = "https://github.com/sisimai/go-sisimai/tree/main/reason"
_RFC3463 = "https://www.rfc-editor.org/rfc/rfc3463#section-3.3"
_G = Provider("generic", _SISIMAI)
_POSTFIX = Provider("postfix", "https://www.postfix.org/postconf.5.html")
_EXIM = Provider("exim", "https://www.exim.org/exim-html-current/doc/html/spec_html/")
_SENDMAIL = Provider(
    "sendmail", "https://www.sendmail.org/~ca/email/doc8.12/op-sh-5.html"
)
_QMAIL = Provider("qmail", "https://cr.yp.to/qmail/qmail-smtpd.html")

SPECIFIC_RULES: tuple[ReplyRule, ...] = (
    # Sender side first: "Sender address rejected: Domain not found" is no dead rcpt.
    _POSTFIX.rule(
        "postfix-sender-rejected",
        r"sender address rejected",
        "rejected",
        source="https://www.postfix.org/postconf.5.html#reject_unknown_sender_domain",
    ),
    _SENDMAIL.rule("sendmail-sender-domain", r"domain of sender address", "rejected"),
    _EXIM.rule("exim-sender-verify", r"sender verify failed", "rejected"),
    _G.rule(
        "sender-rejected",
        r"sender (?:was |is |has been )?(?:rejected|denied|refused|invalid|blocked)",
        "rejected",
    ),
    _G.rule("sender-invalid", r"invalid sender", "rejected"),
    _G.rule(
        "sender-null-mx",
        r"sender (?:address |domain )?(?:has|publishes) (?:a )?null mx",
        "rejected",
        source="https://www.rfc-editor.org/rfc/rfc7505#section-4.2",
    ),
    _G.rule("sender-envelope", r"envelope (?:sender|from)", "rejected"),
    _G.rule(
        "sender-unroutable",
        r"unroutable sender",
        "rejected",
        source="https://www.rfc-editor.org/rfc/rfc3463#section-3.2",
    ),
    _POSTFIX.rule(
        "sender-domain-dns",
        r"sender(?:'s)? domain (?:\S+ )?(?:has (?:invalid|no valid|bad|malformed)"
        r"|must resolve|does not resolve|is invalid)",
        "rejected",
        source="https://www.postfix.org/postconf.5.html#reject_unknown_sender_domain",
    ),
    _QMAIL.rule("qmail-rcpthosts", r"list of allowed rcpthosts", "norelaying"),
    _G.rule("greylisted", r"greylist", "greylisted"),
    _G.rule("graylisted", r"graylist", "greylisted"),
    _G.rule("greylisted-postgrey", r"postgrey", "greylisted"),
    # The recipient's state: it exists, but takes no mail now (RFC 3463 X.2.1).
    _G.rule(
        "account-disabled",
        r"account (?:\S+ )?(?:has been |is )?(?:disabled|inactive|suspended|"
        r"locked|blocked|discontinued|deactivated|frozen|on hold)",
        "suspend",
        source=_RFC3463,
    ),
    _G.rule(
        "mailbox-disabled",
        r"mailbox (?:\S+ )?(?:has been |is )?(?:disabled|inactive|suspended|"
        r"locked|frozen|discontinued|deactivated|on hold)",
        "suspend",
        source=_RFC3463,
    ),
    _G.rule(
        "user-locked",
        r"user (?:account )?(?:is )?(?:locked|suspended|disabled|inactive|"
        r"deactivated|not active)",
        "suspend",
        source=_RFC3463,
    ),
    _G.rule(
        "recipient-preferences",
        r"recipient'?s? preferences?",
        "filtered",
        source=_RFC3463,
    ),
    # Full mailboxes.
    _G.rule("mailbox-full", r"mailbox (?:is )?full", "mailboxfull"),
    _G.rule("full-mailbox", r"full mailbox", "mailboxfull"),
    _G.rule("over-quota", r"over ?quota", "mailboxfull"),
    _G.rule("quota-exceeded", r"quota (?:exceeded|violation|full)", "mailboxfull"),
    _G.rule("exceeded-quota", r"exceed(?:s|ed)? (?:\S+ )?quota", "mailboxfull"),
    _G.rule(
        "storage-exceeded",
        r"storage (?:allocation|space|limit)",
        "mailboxfull",
    ),
    _G.rule("mailbox-size", r"mailbox (?:size|would exceed)", "mailboxfull"),
    _G.rule("boite-pleine", r"boite du destinataire pleine", "mailboxfull"),
    # Dead recipients; "user unknown" under a policy status is a recipient-side filter.
    _G.rule(
        "policy-user-unknown",
        r"user ?unknown",
        "filtered",
        enhanced="x.7.1",
    ),
    _G.rule("user-unknown", r"user ?unknown", "userunknown"),
    _G.rule(
        "unknown-user",
        r"unknown (?:user|recipient|mailbox|local ?part|e-?mail address)",
        "userunknown",
    ),
    _G.rule(
        "no-such-user",
        r"no such (?:user|mailbox|recipient|address|person|account)",
        "userunknown",
    ),
    _G.rule(
        "user-not-found",
        r"user (?:\S+ )?(?:not found|does not exist|doesn't exist|"
        r"not exist|not known|is not known)",
        "userunknown",
    ),
    _G.rule(
        "recipient-not-found",
        r"recipient (?:address )?(?:\S+ )?(?:not found|does not "
        r"exist|doesn't exist|not exist|unknown|is not local|is invalid)",
        "userunknown",
    ),
    _G.rule("recipient-notfound-token", r"recip(?:ient)?notfound", "userunknown"),
    _G.rule(
        "invalid-recipient",
        r"invalid (?:recipient|mailbox|address|user)",
        "userunknown",
    ),
    _G.rule(
        "mailbox-not-found",
        r"mailbox (?:\S+ )?(?:not found|does not exist|doesn't exist|"
        r"not present|invalid)",
        "userunknown",
    ),
    _G.rule(
        "mailbox-unavailable",
        r"mailbox (?:is )?unavailable",
        "userunknown",
        codes=("55",),
        weak=True,
    ),
    _G.rule(
        "address-unknown",
        r"address (?:\S+ )?(?:does not exist|unknown|not present|invalid)",
        "userunknown",
    ),
    # Postfix prefixes every recipient restriction with "Recipient address rejected:";
    # only a bare "Address rejected." says the address is dead.
    _G.rule("address-rejected", r"address rejected\.?$", "userunknown", weak=True),
    _G.rule(
        "account-not-exist",
        r"account (?:\S+ )?(?:does not exist|doesn't exist|not found)",
        "userunknown",
    ),
    _G.rule("no-mailbox-here", r"no mailbox", "userunknown"),
    _G.rule("does-not-exist", r"does not exist", "userunknown", weak=True),
    _G.rule(
        "not-a-valid-mailbox",
        r"not a valid (?:mailbox|recipient|user)",
        "userunknown",
    ),
    _G.rule("not-our-user", r"not our (?:user|customer)", "hasmoved"),
    _G.rule(
        "no-longer-accepts",
        r"no longer (?:accepts mail|on server|available)",
        "hasmoved",
    ),
    _G.rule("utilisateur-inconnu", r"utilisateur inconnu", "userunknown"),
    _G.rule(
        "destinataire-invalide",
        r"destinataire (?:invalide|inconnu)",
        "userunknown",
    ),
    _G.rule("nessun-utente", r"nessun utente", "userunknown"),
    _G.rule("no-existe", r"no existe", "userunknown"),
    _G.rule("adresse-nicht-gefunden", r"adresse nicht gefunden", "userunknown"),
    # A lookup that failed for now is no dead domain ("Host not found, try again").
    _POSTFIX.rule(
        "dns-try-again",
        r"not found, try again",
        "networkerror",
        source="https://github.com/vdukhovni/postfix/blob/master/postfix/src/dns/"
        "dns_strerror.c",
    ),
    _G.rule(
        "dns-lookup-incomplete",
        r"lookup (?:did not complete|failed temporarily|timed out|timeout)",
        "networkerror",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-the_dnslookup_router.html",
    ),
    _G.rule(
        "dns-temporary",
        r"temporary (?:dns|lookup|name ?server|resolver) (?:failure|error|problem)",
        "networkerror",
    ),
    _G.rule("dns-server-timeout", r"name ?server timeout", "networkerror"),
    _G.rule("dns-servfail", r"servfail", "networkerror"),
    # Dead domains.
    _G.rule("host-unknown", r"host (?:\S+ )?(?:unknown|not found)", "hostunknown"),
    _G.rule(
        "domain-not-found",
        r"domain (?:\S+ )?(?:not found|does not exist|is not "
        r"reachable|unknown|name not found)",
        "hostunknown",
    ),
    _EXIM.rule("exim-unrouteable", r"unrouteable (?:address|domain)", "hostunknown"),
    _EXIM.rule(
        "exim-mx-nonexistent",
        r"all relevant mx records point to non-existent hosts",
        "hostunknown",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-the_dnslookup_router.html",
    ),
    _EXIM.rule(
        "exim-lookups-failed",
        r"all host address lookups failed permanently",
        "hostunknown",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-the_dnslookup_router.html",
    ),
    _QMAIL.rule(
        "qmail-no-host",
        r"couldn't find any host",
        "hostunknown",
        source="https://cr.yp.to/proto/qsbmf.txt",
    ),
    _G.rule("not-accept-mail", r"not accept mail", "notaccept"),
    _G.rule("null-mx", r"null mx", "notaccept"),
)
