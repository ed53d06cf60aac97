"""``warmup classify``: SMTP replies on stdin -> one JSON verdict per input."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import click

from warmup.cli.common import EXIT_CONFIG, config_from, echo_json, fail
from warmup.core.lanes.schedule import ReplyPattern
from warmup.core.replies.classify import classify_reply, parse_reply

__all__ = ["classify"]


def _inputs(stream: TextIO, jsonl: bool) -> Iterator[tuple[int, str | None, str]]:
    """(line number, reply text or None, error) per non-empty input line."""
    for number, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        if not jsonl:
            yield number, text, ""
            continue
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, None, f"bad JSON: {exc.msg} at column {exc.colno}"
            continue
        reply = data.get("reply") if isinstance(data, dict) else None
        if not isinstance(reply, str):
            yield number, None, "expected an object with a string 'reply' field"
            continue
        yield number, reply, ""


def classify_text(
    text: str, overrides: Sequence[ReplyPattern] = ()
) -> dict[str, object]:
    result = classify_reply(parse_reply(text), overrides=overrides)
    return {
        "verdict": result.verdict.value,
        "reason": result.reason,
        "code": result.code,
        "enhanced": result.enhanced,
        "permanent": result.permanent,
        "rule": result.rule,
    }


@click.command()
@click.option(
    "--jsonl",
    is_flag=True,
    help="Each line is a JSON object with a 'reply' field (CRLF allowed inside).",
)
@click.option(
    "--isp", help="Apply this schedule's reply patterns first (needs the config)."
)
@click.pass_context
def classify(ctx: click.Context, jsonl: bool, isp: str | None) -> None:
    """Classify SMTP replies from stdin: one JSON object per input, in order.

    Each object has verdict (delivered, soft, hard, throttle, block), reason,
    code, enhanced, permanent and the matched rule.
    """
    overrides: tuple[ReplyPattern, ...] = ()
    if isp:
        schedules = config_from(ctx).schedules
        if isp not in schedules:
            fail(
                f"no schedule for {isp!r}; known: {', '.join(sorted(schedules))}",
                EXIT_CONFIG,
            )
        overrides = schedules[isp].patterns
    for number, text, error in _inputs(sys.stdin, jsonl):
        if text is None:
            click.echo(f"stdin:{number}: {error}", err=True)
            echo_json({"line": number, "error": error})
            continue
        echo_json(classify_text(text, overrides))
