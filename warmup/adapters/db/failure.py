"""Turning driver exceptions into one readable line for StoreError."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from warmup.core.errors import StoreError

__all__ = ["describe", "translated"]

P = ParamSpec("P")
R = TypeVar("R")


def describe(exc: BaseException) -> str:
    """The driver's own message when there is one, first line only."""
    original = getattr(exc, "orig", None)
    return str(original or exc).strip().splitlines()[0]


def translated(
    operation: str,
) -> Callable[
    [Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]
]:
    """A store method whose SQLAlchemy errors become ``StoreError(operation, …)``,
    so a database outage reaches the app as the one error type it handles."""

    def wrap(
        method: Callable[P, Coroutine[Any, Any, R]],
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(*args, **kwargs)
            except SQLAlchemyError as exc:
                raise StoreError(operation, describe(exc)) from exc

        return run

    return wrap
