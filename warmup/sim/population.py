"""A synthetic recipient list for the demo: realistic ISP mix and engagement."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

__all__ = ["DOMAINS", "synthetic_rows"]

# (domain, ISP, share): a consumer list at the four big mailbox providers.
DOMAINS: tuple[tuple[str, str, float], ...] = (
    ("gmail.com", "gmail", 0.42),
    ("googlemail.com", "gmail", 0.03),
    ("outlook.com", "microsoft", 0.13),
    ("hotmail.com", "microsoft", 0.11),
    ("yahoo.com", "yahoo", 0.14),
    ("aol.com", "yahoo", 0.04),
    ("icloud.com", "apple", 0.11),
    ("me.com", "apple", 0.02),
)


def synthetic_rows(
    count: int, rng: random.Random, now: datetime
) -> Iterator[dict[str, str]]:
    """``count`` rows with email, first_name and engagement columns."""
    domains = [d for d, _, _ in DOMAINS]
    weights = [w for _, _, w in DOMAINS]
    names = (
        "Aiko",
        "Ben",
        "Chen",
        "Dana",
        "Emi",
        "Farid",
        "Gita",
        "Hiro",
        "Ines",
        "Jon",
    )
    for index in range(count):
        domain = rng.choices(domains, weights)[0]
        row = {"email": f"user{index:06d}@{domain}", "first_name": rng.choice(names)}
        roll = rng.random()
        if roll < 0.35:  # recently engaged
            row["last_open_at"] = (
                (now - timedelta(days=rng.randint(0, 30))).date().isoformat()
            )
        elif roll < 0.60:  # engaged a while ago
            row["last_open_at"] = (
                (now - timedelta(days=rng.randint(31, 365))).date().isoformat()
            )
        yield row
