"""Rules written once, in core, and called from everywhere else (issue 18): a
second copy is how two places come to disagree. Each pattern below is the shape
the copies had; only the module that owns the rule may contain it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "warmup").rglob("*.py"))

RULES = {
    # "Is this address suppressed?": core.recipients.suppression.is_suppressed
    "suppressed by its domain": (
        re.compile(r'"@"\s*\+\s*\S+\s+in\s'),
        "warmup/core/recipients/suppression.py",
    ),
    # "This ISP's schedule, else the default": core.recipients.routing.schedule_for
    "schedule else default": (
        re.compile(r"schedules\.get\([^)]*\)\s+or\b"),
        "warmup/core/recipients/routing.py",
    ),
    # Domain -> ISP by match.domains: core.recipients.routing.domain_index
    "domain to isp": (
        re.compile(r"for domain in schedule\.domains\b|\.matches_domain\("),
        "warmup/core/recipients/routing.py",
    ),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_rule_is_written_in_one_module(rule: str) -> None:
    pattern, owner = RULES[rule]
    found = {
        str(path.relative_to(ROOT))
        for path in SOURCES
        if pattern.search(path.read_text(encoding="utf-8"))
    }
    assert found == {owner}
