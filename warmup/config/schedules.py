"""``schedules/<isp>.yaml`` -> :class:`~warmup.core.lanes.schedule.Schedule`, all
issues."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import time, timedelta
from typing import Any

from warmup.config.reader import Context, Node, parse_yaml
from warmup.core.duration import parse_duration
from warmup.core.errors import ConfigIssue
from warmup.core.lanes.schedule import (
    Advance,
    BlockReaction,
    RampStep,
    Rates,
    Reactions,
    ReplyPattern,
    Schedule,
    ThrottleReaction,
    Window,
)

__all__ = ["VERDICTS", "check_schedule_set", "parse_schedule", "read_rates"]

VERDICTS = ("delivered", "soft", "hard", "throttle", "block")
_ISP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_DAYS = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z0-9-]{2,63}$")


def parse_schedule(
    text: str,
    *,
    file: str,
    stem: str,
    rates: Rates,
    ctx: Context,
    deferral_cap: float | None = None,
) -> Schedule | None:
    """Parse one schedule file; problems go to ``ctx.issues``, None if unusable.

    ``rates`` are the config's defaults for ``reactions.rates``; ``deferral_cap``
    the config's deprecated ``rates.deferral_rate``, which (like this file's
    deprecated ``reactions.rates.deferral_rate``) caps ``advance.max_deferral_rate``
    for one release, as the two knobs did together before."""
    before = len(ctx.issues)
    data = parse_yaml(text, ctx)
    if data is None and len(ctx.issues) > before:
        return None
    root = Node(ctx, "", data)
    isp = root.string("isp", stem)
    if not _ISP_NAME.match(isp):
        root.issue("isp", f"must be a lowercase name like 'gmail', got {isp!r}")
    elif isp != stem:
        root.issue("isp", f"must match the file name {stem!r}, got {isp!r}")
    match = root.child("match")
    domains = _domains(match)
    mx = tuple(pattern.lower() for pattern in match.strings("mx"))
    match.finish()
    window = _window(root.child("window"))
    steps = _steps(root)
    after = root.child("after_ramp")
    after_ramp = after.value("per_hour", None, _positive_int)
    after.finish()
    if after_ramp is not None and steps and after_ramp < steps[-1].per_hour:
        ctx.issue(
            "after_ramp.per_hour",
            f"must be >= {steps[-1].per_hour} (last step), got {after_ramp}",
        )
    advance = _advance(root.child("advance"))
    reactions, own_cap = _reactions(root.child("reactions"), rates)
    cap = own_cap if own_cap is not None else deferral_cap
    if cap is not None and cap < advance.max_deferral_rate:
        advance = replace(advance, max_deferral_rate=cap)
    idle = root.duration("idle_reset", timedelta(days=30))
    patterns = _patterns(root)
    root.finish()
    if len(ctx.issues) > before or not steps:
        return None
    return Schedule(
        isp=isp,
        domains=domains,
        mx=mx,
        window=window,
        steps=steps,
        after_ramp=after_ramp,
        advance=advance,
        reactions=reactions,
        idle_reset=idle,
        patterns=patterns,
        source=file,
    )


def _domains(match: Node) -> tuple[str, ...]:
    domains = []
    for index, domain in enumerate(match.strings("domains")):
        lowered = domain.lower()
        if not _DOMAIN.match(lowered):
            match.ctx.issue(
                f"{match.path}.domains[{index}]",
                f"not a domain name, got {domain!r}",
            )
        domains.append(lowered)
    return tuple(domains)


def _clock(raw: Any) -> time:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise ValueError(
            "expected a time like '01:00' in quotes (YAML reads 01:00 unquoted "
            f"as a number), got {raw!r}"
        )
    text = str(raw).strip()
    if text == "24:00":
        return time(0, 0)
    found = _CLOCK.match(text)
    if not found:
        raise ValueError(f"expected a time like '01:00', got {raw!r}")
    return time(int(found.group(1)), int(found.group(2)))


def _window(node: Node) -> Window:
    if not node.data:
        node.value("start", None, _clock)
        node.value("end", None, _clock)
        node.finish()
        return Window()
    start = node.value("start", None, _clock, required=True)
    end = node.value("end", None, _clock, required=True)
    node.finish()
    if start is None or end is None:
        return Window()
    if start == end:
        node.ctx.issue(
            f"{node.path}.end",
            f"must differ from start (omit the window for all day), got {end:%H:%M}",
        )
    return Window(start=start, end=end)


def _days(raw: Any) -> tuple[int, int]:
    found = _DAYS.match(str(raw)) if not isinstance(raw, bool) else None
    if not found:
        raise ValueError(f"expected a day or a range like '1-3', got {raw!r}")
    first = int(found.group(1))
    last = int(found.group(2) or first)
    if first < 1 or last < first:
        raise ValueError(
            f"expected a range like '1-3' with 1 <= first <= last, got {raw!r}"
        )
    return first, last


def _positive_int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise ValueError(f"must be a positive whole number, got {raw!r}")
    return raw


def _steps(root: Node) -> tuple[RampStep, ...]:
    steps: list[RampStep] = []
    expected_day, previous_rate = 1, 0
    for node in root.children("ramp", required=True):
        days = node.value("days", None, _days, required=True)
        rate = node.value("per_hour", None, _positive_int, required=True)
        node.finish()
        if days is None or rate is None:
            continue
        if days[0] != expected_day:
            node.issue("days", f"must start at day {expected_day}, got {days[0]}")
        if rate < previous_rate:
            node.issue(
                "per_hour", f"must be >= {previous_rate} (previous step), got {rate}"
            )
        steps.append(RampStep(first_day=days[0], last_day=days[1], per_hour=rate))
        expected_day, previous_rate = days[1] + 1, max(rate, previous_rate)
    return tuple(steps)


def _advance(node: Node) -> Advance:
    base = Advance()
    result = Advance(
        min_volume_ratio=node.fraction("min_volume_ratio", base.min_volume_ratio),
        max_hard_bounce_rate=node.fraction(
            "max_hard_bounce_rate", base.max_hard_bounce_rate
        ),
        max_deferral_rate=node.fraction("max_deferral_rate", base.max_deferral_rate),
        max_complaint_rate=node.fraction("max_complaint_rate", base.max_complaint_rate),
    )
    node.finish()
    return result


def _pause_for(raw: Any) -> timedelta | None:
    if raw == "next_window":
        return None
    try:
        return parse_duration(raw)
    except ValueError:
        raise ValueError(
            f"expected a duration like '4h' or 'next_window', got {raw!r}"
        ) from None


def _reactions(node: Node, rates: Rates) -> tuple[Reactions, float | None]:
    """The reactions, and the deprecated ``rates.deferral_rate`` if given."""
    throttle_node = node.child("throttle")
    base = ThrottleReaction()
    throttle = ThrottleReaction(
        factor=throttle_node.fraction("factor", base.factor),
        hold=throttle_node.duration("hold", base.hold),
        recover_step=throttle_node.fraction("recover_step", base.recover_step),
        recover_every=throttle_node.duration("recover_every", base.recover_every),
        pause_after=throttle_node.integer("pause_after", base.pause_after, minimum=1),
        pause_for=throttle_node.value("pause_for", base.pause_for, _pause_for),
    )
    throttle_node.finish()
    block_node = node.child("block")
    block = BlockReaction(
        pause_for=block_node.value("pause_for", BlockReaction().pause_for, _pause_for)
    )
    block_node.finish()
    rates_node = node.child("rates")
    limits = read_rates(rates_node, rates)
    cap = rates_node.retired_fraction("deferral_rate", "advance.max_deferral_rate")
    rates_node.finish()
    node.finish()
    return Reactions(throttle=throttle, block=block, rates=limits), cap


def read_rates(node: Node, base: Rates) -> Rates:
    """Rolling-rate limits; used by config ``rates`` and schedule overrides."""
    return Rates(
        window=node.duration("window", base.window),
        min_sample=node.integer("min_sample", base.min_sample, minimum=1),
        hard_bounce_rate=node.fraction("hard_bounce_rate", base.hard_bounce_rate),
        complaint_rate=node.fraction("complaint_rate", base.complaint_rate),
    )


def _patterns(root: Node) -> tuple[ReplyPattern, ...]:
    patterns = []
    for node in root.children("patterns"):
        name = node.string("name", required=True)
        regex = node.string("match", required=True)
        verdict = node.string("verdict", required=True)
        reason = node.string("reason", required=True)
        node.finish()
        try:
            re.compile(regex)
        except re.error as exc:
            node.issue(
                "match", f"not a valid regular expression ({exc}), got {regex!r}"
            )
        if verdict and verdict not in VERDICTS:
            node.issue(
                "verdict", f"must be one of {', '.join(VERDICTS)}, got {verdict!r}"
            )
        patterns.append(
            ReplyPattern(name=name, regex=regex, verdict=verdict, reason=reason)
        )
    return tuple(patterns)


def check_schedule_set(schedules: Iterable[Schedule], ctx: Context) -> None:
    """Cross-file rules: unique ISP names, no domain claimed twice, a default exists."""
    owners: dict[str, str] = {}
    names: dict[str, str] = {}
    for schedule in schedules:
        first = names.setdefault(schedule.isp, schedule.source)
        if first != schedule.source:
            message = f"ISP {schedule.isp!r} is already defined in {first}"
            ctx.issues.append(_cross(schedule.source, "isp", message))
        for index, domain in enumerate(schedule.domains):
            owner = owners.setdefault(domain, schedule.source)
            if owner != schedule.source:
                message = f"domain {domain!r} is already claimed by {owner}"
                path = f"match.domains[{index}]"
                ctx.issues.append(_cross(schedule.source, path, message))
    if "default" not in names:
        message = "no 'default' schedule: add default.yaml to catch every other ISP"
        ctx.issues.append(_cross(ctx.file, "", message))


def _cross(file: str, path: str, message: str) -> ConfigIssue:
    return ConfigIssue(file=file, path=path, message=message)
