"""Turning driver exceptions into one readable line for StoreError."""

from __future__ import annotations

__all__ = ["describe"]


def describe(exc: BaseException) -> str:
    """The driver's own message when there is one, first line only."""
    original = getattr(exc, "orig", None)
    return str(original or exc).strip().splitlines()[0]
