"""Reply classification throughput over the labelled reply table.

Prints replies per second for parse + classify, and for two baselines measured in the
same run on the same texts: one ``re.search`` of a simple compiled pattern, and
``parse_reply`` alone. The ratios hold across machines better than the absolute figures.
The target is 50,000 classifications/s (``shared/DESIGN.md`` §8). Prints figures,
asserts nothing.

    .venv/bin/python bench/classify.py [--repeat 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from warmup.core.lanes.schedule import ReplyPattern
from warmup.core.replies.classify import classify_reply, parse_reply

TABLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "replies.jsonl"
_SIMPLE = re.compile(r"user unknown", re.IGNORECASE)
_OVERRIDES = tuple(
    ReplyPattern(name=name, regex=regex, verdict="throttle", reason="speeding")
    for name, regex in (("ip", r"^421 4\.7\.28 "), ("tss", r"\[TSS04\]"))
)


def _rate(work: Callable[[list[str]], object], texts: list[str], rounds: int) -> float:
    """Best replies/s over ``rounds`` passes of ``work`` over ``texts``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def _search(texts: list[str]) -> object:
    return [_SIMPLE.search(text) for text in texts]


def _parse(texts: list[str]) -> object:
    return [parse_reply(text) for text in texts]


def _classify(texts: list[str]) -> object:
    return [classify_reply(parse_reply(text)) for text in texts]


def _classify_with_overrides(texts: list[str]) -> object:
    return [classify_reply(parse_reply(text), overrides=_OVERRIDES) for text in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="table copies per pass")
    parser.add_argument("--rounds", type=int, default=5, help="passes; the best counts")
    args = parser.parse_args()
    rows = [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines()]
    texts = [row["reply"] for row in rows if row] * args.repeat
    _classify(texts[: len(rows)])  # warm caches outside the measurement
    search = _rate(_search, texts, args.rounds)
    parse = _rate(_parse, texts, args.rounds)
    classify = _rate(_classify, texts, args.rounds)
    overridden = _rate(_classify_with_overrides, texts, args.rounds)
    print(f"{len(rows)} distinct replies x {args.repeat}, best of {args.rounds} passes")
    print(f"  baseline re.search, one pattern : {search:>12,.0f} replies/s")
    print(f"  baseline parse_reply alone      : {parse:>12,.0f} replies/s")
    print(f"  parse + classify                : {classify:>12,.0f} replies/s")
    print(f"  parse + classify, 2 overrides   : {overridden:>12,.0f} replies/s")
    print(f"  classify / re.search ratio      : {classify / search:12.3f}")
    print(f"  classify / parse_reply ratio    : {classify / parse:12.3f}")
    print(f"  target 50,000/s met             : {classify >= 50_000!s:>12}")


if __name__ == "__main__":
    main()
