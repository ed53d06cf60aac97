"""``warmup bounces parse|ingest``: bounce mails -> one JSON line per recipient.

Containers are opened by :mod:`warmup.adapters.mailboxes`; each mail's bytes go to
the pure :func:`warmup.core.bounces.parse.parse_bounce` (``parse``) or through the
bounce
intake into the store (``ingest``).
"""

from __future__ import annotations

import mailbox
import os
import sys
from collections import Counter
from collections.abc import Callable

import click

from warmup.adapters.db.store import SQLStore
from warmup.adapters.mailboxes import mails_in
from warmup.app.clock import SystemClock
from warmup.app.ingest import BounceIntake, IngestResult
from warmup.cli.common import EXIT_RUNTIME, config_from, echo_json, run_async
from warmup.cli.engine import mail_handlers, verp_secret
from warmup.config import Config
from warmup.core.bounces.parse import BounceKind, BounceReport, parse_bounce

__all__ = ["bounces", "ingest_lines", "report_lines"]


def report_lines(source: str, report: BounceReport) -> list[dict[str, object]]:
    """The JSON objects printed for one parsed mail."""
    if not report.recipients:
        # A complaint that names no one is still a complaint (matched by VERP or
        # Message-ID when ingested); anything else without recipients says nothing.
        complaint = "feedback" if report.kind is BounceKind.feedback else None
        return [
            {
                "source": source,
                "recipient": None,
                "status": None,
                "action": None,
                "verdict": complaint,
                "reason": complaint,
                "reply": None,
                "kind": report.kind.value,
            }
        ]
    return [
        {
            "source": source,
            "recipient": item.recipient,
            "status": item.status,
            "action": item.action,
            "verdict": item.verdict.value,
            "reason": item.reason,
            "reply": item.reply,
            "kind": report.kind.value,
        }
        for item in report.recipients
    ]


@click.group()
def bounces() -> None:
    """Read bounce mails (DSNs, NDRs, ARF reports, auto-replies)."""


def _each_mail(paths: tuple[str, ...], handle: Callable[[str, bytes], None]) -> bool:
    """Call ``handle`` for every mail under ``paths``; False if one was unreadable."""
    ok = True
    for path in paths:
        try:
            for source, data in mails_in(path):
                try:
                    handle(source, data)
                except BrokenPipeError:
                    # `| head` closed the pipe: stop quietly (recipe from the
                    # Python docs on SIGPIPE), not once per remaining file.
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
                    sys.exit(EXIT_RUNTIME)
        except (OSError, mailbox.Error) as exc:
            click.echo(f"{path}: cannot read: {exc}", err=True)
            ok = False
    return ok


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
def parse(paths: tuple[str, ...]) -> None:
    """Parse .eml files, mbox files, maildirs (cur/new) or '-' for stdin.

    Prints one JSON object per recipient: source, recipient, status, action,
    verdict, reason, reply and kind. A mail that is not a bounce gives one line
    with "kind": "not-bounce".
    """

    def show(source: str, data: bytes) -> None:
        for line in report_lines(source, parse_bounce(data)):
            echo_json(line)

    if not _each_mail(paths, show):
        sys.exit(EXIT_RUNTIME)


def ingest_lines(result: IngestResult) -> list[dict[str, object]]:
    """The JSON objects printed by ``ingest`` for one mail: ``parse``'s fields plus
    ``outcome`` (suppressed, complaint, retry, ignored, unmatched, duplicate,
    forged) and ``found_by`` (verp, header, recipient, or null)."""
    if result.handled_as is not None:  # an unsubscribe by mail, a DMARC report
        label = result.handled_as
        return [
            {"source": result.source, "kind": label, "outcome": label, "found_by": None}
        ]
    lines = report_lines(result.source, result.report)
    if result.forged:
        return [line | {"outcome": "forged", "found_by": None} for line in lines]
    if not result.events:
        return [line | {"outcome": "ignored", "found_by": None} for line in lines]
    out = []
    for line, (event, fresh) in zip(lines, result.events, strict=False):
        outcome = event.effect.value if fresh else "duplicate"
        found = event.found_by.value if event.found_by else None
        out.append(line | {"outcome": outcome, "found_by": found})
    return out


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Parse bounce mails and apply them: suppress, retry, count on the lane.

    Reads the same inputs as `parse` and prints the same lines, plus `outcome`
    and `found_by`. The original send is found by the signed VERP address, else
    warmup's trace header in the returned mail. A report without either changes
    nothing, unless bounces.recipient_lookback is set: then one address of it may
    be matched by its latest send (rate-limited per reporting host). A bounce
    whose token does not verify changes nothing. The same
    mail ingested twice acts once. Lane reactions (hard-bounce and complaint
    counts, throttle backoff, pauses) are applied by `warmup run` on the node that
    sends on that lane, within a minute. Needs the VERP secret like `warmup run`.

    Mail to unsubscribe+TOKEN@ the bounce domain unsubscribes (outcome
    unsubscribe, or forged), and a mail carrying a DMARC aggregate report is
    stored as one (outcome dmarc, or dmarc_refused for an XML or zip bomb).
    """
    config = config_from(ctx)
    secret = verp_secret(config, "warmup bounces ingest")
    counts, held, ok = run_async(_ingest(config, secret, paths))
    summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    click.echo(f"ingested: {summary or 'nothing'}", err=True)
    for reason, n in sorted(held.items()):
        click.echo(f"{n} unsigned report(s) changed nothing: {reason}", err=True)
    if not ok:
        sys.exit(EXIT_RUNTIME)


async def _ingest(
    config: Config, secret: bytes, paths: tuple[str, ...]
) -> tuple[Counter[str], Counter[str], bool]:
    """Outcome counts, why unsigned reports were held back (counts), success."""
    store = await SQLStore.open(config.settings.database)
    counts: Counter[str] = Counter()
    held: Counter[str] = Counter()
    ok = True
    try:
        clock = SystemClock()
        intake = BounceIntake.configured(
            store,
            clock=clock,
            settings=config.settings.bounces,
            retry=config.settings.delivery.retry,
            secret=secret,
            handlers=mail_handlers(config, store=store, clock=clock, secret=secret),
        )
        # Reading is synchronous; the mails are read a batch at a time (one
        # transaction each), so memory stays flat on a large mbox.
        for path in paths:
            batch: list[tuple[str, bytes]] = []
            try:
                for mail in mails_in(path):
                    batch.append(mail)
                    if len(batch) >= intake.batch_size:
                        ok &= await _ingest_batch(intake, batch, counts, held)
                        batch.clear()
            except (OSError, mailbox.Error) as exc:
                click.echo(f"{path}: cannot read: {exc}", err=True)
                ok = False
            ok &= await _ingest_batch(intake, batch, counts, held)
    finally:
        await store.close()
    return counts, held, ok


async def _ingest_batch(
    intake: BounceIntake,
    batch: list[tuple[str, bytes]],
    counts: Counter[str],
    held: Counter[str],
) -> bool:
    """Ingest and print one batch; False if a mail could not be handled."""
    ok = True
    for (source, _), result in zip(
        batch, await intake.ingest_batch(batch), strict=True
    ):
        if isinstance(result, Exception):
            click.echo(f"{source}: cannot handle this mail: {result}", err=True)
            ok = False
            continue
        if result.held:
            held[result.held] += 1
        for line in ingest_lines(result):
            counts[str(line["outcome"])] += 1
            echo_json(line)
    return ok


bounces.add_command(parse)
bounces.add_command(ingest)
