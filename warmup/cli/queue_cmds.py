"""``warmup enqueue``: load a recipient list as one campaign."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import click

from warmup.adapters.db.store import SQLStore
from warmup.adapters.recipient_file import FORMATS, RowReader, detect_format
from warmup.app.clock import SystemClock
from warmup.app.enqueue import EnqueueReport, enqueue_rows
from warmup.app.ports import TemplateRecord
from warmup.cli.common import (
    EXIT_CONFIG,
    config_from,
    echo_json,
    fail,
    file_progress,
    out_console,
    print_problems,
    run_async,
)
from warmup.cli.dkim_cmds import warn_if_unsigned
from warmup.config import Config
from warmup.core.errors import InputError
from warmup.core.lanes.control import parse_when
from warmup.core.recipients.routing import domain_index
from warmup.core.recipients.template import Template, parse_template

__all__ = ["enqueue"]


def _load_template(path: str) -> tuple[Template, TemplateRecord]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the template: {exc.strerror}") from None
    template = parse_template(data, source=path)
    record = TemplateRecord(
        name=Path(path).name, sha256=hashlib.sha256(data).hexdigest(), content=data
    )
    return template, record


@click.command()
@click.argument("file", metavar="FILE")
@click.option(
    "--template",
    "template_path",
    required=True,
    metavar="MSG.eml",
    help="Message template; {{ column }} placeholders in subject and body.",
)
@click.option("--campaign", required=True, help="Campaign name (created if new).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Input format (default: from the file name; '-' reads CSV).",
)
@click.option(
    "--deadline",
    "deadline_text",
    metavar="WHEN",
    help=(
        "Not sent by then: expired, never sent late. 48h, or "
        "2030-01-02T08:00 (config timezone)."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def enqueue(
    ctx: click.Context,
    file: str,
    template_path: str,
    campaign: str,
    fmt: str | None,
    deadline_text: str | None,
    as_json: bool,
) -> None:
    """Queue FILE's recipients (CSV or JSONL with an `email` column) as CAMPAIGN.

    Other columns fill {{ name }} placeholders; last_open_at, last_click_at or
    score order sending engaged-first. Suppressed addresses are never queued.
    """
    config = config_from(ctx)
    deadline = None
    if deadline_text is not None:
        try:
            deadline = parse_when(deadline_text, now=SystemClock().now(), tz=config.tz)
        except ValueError as exc:
            fail(f"--deadline: {exc}", EXIT_CONFIG)
    report = run_async(_enqueue(config, file, fmt, template_path, campaign, deadline))
    if report.problems:
        print_problems(file, report.problems, report.invalid)
    summary = {
        "campaign": campaign,
        "rows": report.rows,
        "queued": report.queued,
        "duplicate": report.duplicate,
        "suppressed": report.suppressed,
        "invalid": report.invalid,
    }
    if as_json:
        echo_json(summary)
        return
    out_console().print(
        f"campaign [bold]{campaign}[/]: {report.rows:,} rows → queued "
        f"[green]{report.queued:,}[/], duplicate {report.duplicate:,}, suppressed "
        f"{report.suppressed:,}, invalid [red]{report.invalid:,}[/]"
    )


async def _enqueue(
    config: Config,
    file: str,
    fmt: str | None,
    template_path: str,
    campaign: str,
    deadline: datetime | None,
) -> EnqueueReport:
    template, record = _load_template(template_path)
    warn_if_unsigned(config, record.content)
    reader = RowReader(file, detect_format(file, fmt))
    try:
        _check_columns(file, template, reader.columns)
        return await _load(config, reader, template, record, campaign, deadline)
    finally:
        reader.close()


def _queued(report: EnqueueReport) -> str:
    return f"{report.queued:,} queued"


def _check_columns(file: str, template: Template, columns: list[str]) -> None:
    """CSV files name their columns up front: every placeholder must be one."""
    missing = sorted(
        n
        for n in template.placeholders
        if n != "email" and columns and n not in columns
    )
    if missing:
        raise InputError(
            file,
            (
                f"the template uses {{{{ {missing[0]} }}}} but the file has no such "
                f"column (columns: {', '.join(columns)})"
            ),
        )


async def _load(
    config: Config,
    reader: RowReader,
    template: Template,
    record: TemplateRecord,
    campaign: str,
    deadline: datetime | None,
) -> EnqueueReport:
    clock = SystemClock()
    index = domain_index(config.schedules.values())
    store = await SQLStore.open(config.settings.database)
    try:
        ref = await store.ensure_campaign(campaign, record, clock.now())
        with file_progress(reader, "enqueue", _queued) as show:
            return await enqueue_rows(
                store,
                ref.id,
                reader,
                placeholders=template.placeholders,
                header_placeholders=template.header_placeholders,
                isp_of=index.get,
                now=clock.now(),
                deadline=deadline,
                on_batch=show,
            )
    finally:
        await store.close()
