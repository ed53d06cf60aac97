"""Generic reply text that says something specific: sender, greylisting, dead or
disabled recipients, dead domains, full mailboxes.

These rules are strong: they come after the provider rules and the sender-blaming
generic rules of :mod:`warmup.core.replies.rules_generic`, but *before* the enhanced
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

from warmup.core.replies.rules import (
    EXIM,
    GENERIC,
    POSTFIX,
    QMAIL,
    SENDMAIL,
    ReplyRule,
)

__all__ = ["SPECIFIC_RULES"]

_RFC3463 = "https://www.rfc-editor.org/rfc/rfc3463#section-3.3"

SPECIFIC_RULES: tuple[ReplyRule, ...] = (
    # Sender side first: "Sender address rejected: Domain not found" is no dead rcpt.
    POSTFIX.rule(
        "postfix-sender-rejected",
        r"sender address rejected",
        "rejected",
        source="https://www.postfix.org/postconf.5.html#reject_unknown_sender_domain",
    ),
    SENDMAIL.rule("sendmail-sender-domain", r"domain of sender address", "rejected"),
    EXIM.rule("exim-sender-verify", r"sender verify failed", "rejected"),
    GENERIC.rule(
        "sender-rejected",
        r"sender (?:was |is |has been )?(?:rejected|denied|refused|invalid|blocked)",
        "rejected",
    ),
    GENERIC.rule("sender-invalid", r"invalid sender", "rejected"),
    GENERIC.rule(
        "sender-null-mx",
        r"sender (?:address |domain )?(?:has|publishes) (?:a )?null mx",
        "rejected",
        source="https://www.rfc-editor.org/rfc/rfc7505#section-4.2",
    ),
    GENERIC.rule("sender-envelope", r"envelope (?:sender|from)", "rejected"),
    GENERIC.rule(
        "sender-unroutable",
        r"unroutable sender",
        "rejected",
        source="https://www.rfc-editor.org/rfc/rfc3463#section-3.2",
    ),
    POSTFIX.rule(
        "sender-domain-dns",
        r"sender(?:'s)? domain (?:\S+ )?(?:has (?:invalid|no valid|bad|malformed)"
        r"|must resolve|does not resolve|is invalid)",
        "rejected",
        source="https://www.postfix.org/postconf.5.html#reject_unknown_sender_domain",
    ),
    QMAIL.rule("qmail-rcpthosts", r"list of allowed rcpthosts", "norelaying"),
    GENERIC.rule("greylisted", r"greylist", "greylisted"),
    GENERIC.rule("graylisted", r"graylist", "greylisted"),
    GENERIC.rule("greylisted-postgrey", r"postgrey", "greylisted"),
    # The recipient's state: it exists, but takes no mail now (RFC 3463 X.2.1).
    GENERIC.rule(
        "account-disabled",
        r"account (?:\S+ )?(?:has been |is )?(?:disabled|inactive|suspended|"
        r"locked|blocked|discontinued|deactivated|frozen|on hold)",
        "suspend",
        source=_RFC3463,
    ),
    GENERIC.rule(
        "mailbox-disabled",
        r"mailbox (?:\S+ )?(?:has been |is )?(?:disabled|inactive|suspended|"
        r"locked|frozen|discontinued|deactivated|on hold)",
        "suspend",
        source=_RFC3463,
    ),
    GENERIC.rule(
        "user-locked",
        r"user (?:account )?(?:is )?(?:locked|suspended|disabled|inactive|"
        r"deactivated|not active)",
        "suspend",
        source=_RFC3463,
    ),
    GENERIC.rule(
        "recipient-preferences",
        r"recipient'?s? preferences?",
        "filtered",
        source=_RFC3463,
    ),
    # Full mailboxes.
    GENERIC.rule("mailbox-full", r"mailbox (?:is )?full", "mailboxfull"),
    GENERIC.rule("full-mailbox", r"full mailbox", "mailboxfull"),
    GENERIC.rule("over-quota", r"over ?quota", "mailboxfull"),
    GENERIC.rule("quota-exceeded", r"quota (?:exceeded|violation|full)", "mailboxfull"),
    GENERIC.rule("exceeded-quota", r"exceed(?:s|ed)? (?:\S+ )?quota", "mailboxfull"),
    GENERIC.rule(
        "storage-exceeded",
        r"storage (?:allocation|space|limit)",
        "mailboxfull",
    ),
    GENERIC.rule("mailbox-size", r"mailbox (?:size|would exceed)", "mailboxfull"),
    GENERIC.rule("boite-pleine", r"boite du destinataire pleine", "mailboxfull"),
    # Dead recipients; "user unknown" under a policy status is a recipient-side filter.
    GENERIC.rule(
        "policy-user-unknown",
        r"user ?unknown",
        "filtered",
        enhanced="x.7.1",
    ),
    GENERIC.rule("user-unknown", r"user ?unknown", "userunknown"),
    GENERIC.rule(
        "unknown-user",
        r"unknown (?:user|recipient|mailbox|local ?part|e-?mail address)",
        "userunknown",
    ),
    GENERIC.rule(
        "no-such-user",
        r"no such (?:user|mailbox|recipient|address|person|account)",
        "userunknown",
    ),
    GENERIC.rule(
        "user-not-found",
        r"user (?:\S+ )?(?:not found|does not exist|doesn't exist|"
        r"not exist|not known|is not known)",
        "userunknown",
    ),
    GENERIC.rule(
        "recipient-not-found",
        r"recipient (?:address )?(?:\S+ )?(?:not found|does not "
        r"exist|doesn't exist|not exist|unknown|is not local|is invalid)",
        "userunknown",
    ),
    GENERIC.rule("recipient-notfound-token", r"recip(?:ient)?notfound", "userunknown"),
    GENERIC.rule(
        "invalid-recipient",
        r"invalid (?:recipient|mailbox|address|user)",
        "userunknown",
    ),
    GENERIC.rule(
        "mailbox-not-found",
        r"mailbox (?:\S+ )?(?:not found|does not exist|doesn't exist|"
        r"not present|invalid)",
        "userunknown",
    ),
    GENERIC.rule(
        "mailbox-unavailable",
        r"mailbox (?:is )?unavailable",
        "userunknown",
        codes=("55",),
        weak=True,
    ),
    GENERIC.rule(
        "address-unknown",
        r"address (?:\S+ )?(?:does not exist|unknown|not present|invalid)",
        "userunknown",
    ),
    # Postfix prefixes every recipient restriction with "Recipient address rejected:";
    # only a bare "Address rejected." says the address is dead.
    GENERIC.rule("address-rejected", r"address rejected\.?$", "userunknown", weak=True),
    GENERIC.rule(
        "account-not-exist",
        r"account (?:\S+ )?(?:does not exist|doesn't exist|not found)",
        "userunknown",
    ),
    GENERIC.rule("no-mailbox-here", r"no mailbox", "userunknown"),
    GENERIC.rule("does-not-exist", r"does not exist", "userunknown", weak=True),
    GENERIC.rule(
        "not-a-valid-mailbox",
        r"not a valid (?:mailbox|recipient|user)",
        "userunknown",
    ),
    GENERIC.rule("not-our-user", r"not our (?:user|customer)", "hasmoved"),
    GENERIC.rule(
        "no-longer-accepts",
        r"no longer (?:accepts mail|on server|available)",
        "hasmoved",
    ),
    GENERIC.rule("utilisateur-inconnu", r"utilisateur inconnu", "userunknown"),
    GENERIC.rule(
        "destinataire-invalide",
        r"destinataire (?:invalide|inconnu)",
        "userunknown",
    ),
    GENERIC.rule("nessun-utente", r"nessun utente", "userunknown"),
    GENERIC.rule("no-existe", r"no existe", "userunknown"),
    GENERIC.rule("adresse-nicht-gefunden", r"adresse nicht gefunden", "userunknown"),
    # A lookup that failed for now is no dead domain ("Host not found, try again").
    POSTFIX.rule(
        "dns-try-again",
        r"not found, try again",
        "networkerror",
        source="https://github.com/vdukhovni/postfix/blob/master/postfix/src/dns/"
        "dns_strerror.c",
    ),
    GENERIC.rule(
        "dns-lookup-incomplete",
        r"lookup (?:did not complete|failed temporarily|timed out|timeout)",
        "networkerror",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-the_dnslookup_router.html",
    ),
    GENERIC.rule(
        "dns-temporary",
        r"temporary (?:dns|lookup|name ?server|resolver) (?:failure|error|problem)",
        "networkerror",
    ),
    GENERIC.rule("dns-server-timeout", r"name ?server timeout", "networkerror"),
    GENERIC.rule("dns-servfail", r"servfail", "networkerror"),
    # Dead domains.
    GENERIC.rule("host-unknown", r"host (?:\S+ )?(?:unknown|not found)", "hostunknown"),
    GENERIC.rule(
        "domain-not-found",
        r"domain (?:\S+ )?(?:not found|does not exist|is not "
        r"reachable|unknown|name not found)",
        "hostunknown",
    ),
    EXIM.rule("exim-unrouteable", r"unrouteable (?:address|domain)", "hostunknown"),
    EXIM.rule(
        "exim-mx-nonexistent",
        r"all relevant mx records point to non-existent hosts",
        "hostunknown",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-the_dnslookup_router.html",
    ),
    EXIM.rule(
        "exim-lookups-failed",
        r"all host address lookups failed permanently",
        "hostunknown",
        source="https://www.exim.org/exim-html-current/doc/html/spec_html/"
        "ch-the_dnslookup_router.html",
    ),
    QMAIL.rule(
        "qmail-no-host",
        r"couldn't find any host",
        "hostunknown",
        source="https://cr.yp.to/proto/qsbmf.txt",
    ),
    GENERIC.rule("not-accept-mail", r"not accept mail", "notaccept"),
    GENERIC.rule("null-mx", r"null mx", "notaccept"),
)
