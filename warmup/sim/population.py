"""A synthetic recipient list for the demo: realistic ISP mix and engagement."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

__all__ = ["DOMAINS", "synthetic_rows"]

# (domain, ISP, share): roughly a consumer list in Japan/US mix.
DOMAINS: tuple[tuple[str, str, float], ...] = (
    ("gmail.com", "gmail", 0.38),
    ("googlemail.com", "gmail", 0.02),
    ("outlook.com", "microsoft", 0.12),
    ("hotmail.com", "microsoft", 0.10),
    ("yahoo.com", "yahoo", 0.12),
    ("aol.com", "yahoo", 0.03),
    ("icloud.com", "apple", 0.08),
    ("me.com", "apple", 0.02),
    ("example.net", "default", 0.07),
    ("mail.example.org", "default", 0.06),
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
