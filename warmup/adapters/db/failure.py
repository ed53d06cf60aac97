"""Database errors become ``StoreError``, in one place: the store's facade.

Every public method of :class:`~warmup.adapters.db.store.SQLStore` is either
decorated with :func:`translated` or declared with :class:`delegate` /
:class:`delegate_stream` (which translate the part's method they forward to). A
SQLAlchemy error, a driver error that bypassed SQLAlchemy (the bulk paths talk
to psycopg and sqlite3 directly) or an ``OSError`` (a file that vanished, a
refused socket) reaches the app as ``StoreError(operation, first line)``, the one
error type it handles. Each translated callable carries :data:`MARK` naming its
operation, so a test can walk the store and find any method left out.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast, overload

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from warmup.core.errors import StoreError

__all__ = [
    "DATABASE_ERRORS",
    "MARK",
    "delegate",
    "delegate_stream",
    "describe",
    "translated",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

# What a database can throw at us: SQLAlchemy's own (driver errors wrapped as
# DBAPIError), the drivers' own when reached through a raw connection, and the
# operating system's (a removed file, a refused connection).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    sqlite3.Error,
    psycopg.Error,
    OSError,
)
MARK = "__store_operation__"  # set on every translated callable: its operation


def describe(exc: BaseException) -> str:
    """The driver's own message when there is one, first line only."""
    original = getattr(exc, "orig", None)
    text = str(original or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _translate(
    operation: str, method: Callable[P, Coroutine[Any, Any, R]]
) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except DATABASE_ERRORS as exc:
            raise StoreError(operation, describe(exc)) from exc

    setattr(run, MARK, operation)
    return run


def _translate_stream(
    operation: str, method: Callable[P, AsyncIterator[T]]
) -> Callable[P, AsyncIterator[T]]:
    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        try:
            async for item in method(*args, **kwargs):
                yield item
        except DATABASE_ERRORS as exc:
            raise StoreError(operation, describe(exc)) from exc

    setattr(run, MARK, operation)
    return run


def translated(
    operation: str,
) -> Callable[
    [Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]
]:
    """A method whose database errors become ``StoreError(operation, …)``."""

    def wrap(
        method: Callable[P, Coroutine[Any, Any, R]],
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        return _translate(operation, method)

    return wrap


class delegate(Generic[P, R]):
    """``name = delegate("part", Part.name, "doing it")`` in the store's class
    body: ``store.name(...)`` calls ``store.part.name(...)`` and translates its
    database errors. Typed: mypy sees ``Part.name``'s parameters and result."""

    def __init__(
        self,
        part: str,
        method: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
        operation: str,
    ) -> None:
        self.part = part
        self.method = method
        self.operation = operation
        setattr(self, MARK, operation)
        self._run = _translate(operation, method)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> delegate[P, R]: ...

    @overload
    def __get__(
        self, instance: object, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    def __get__(
        self, instance: object | None, owner: type[Any]
    ) -> delegate[P, R] | Callable[P, Coroutine[Any, Any, R]]:
        if instance is None:
            return self
        bound = MethodType(self._run, getattr(instance, self.part))
        return cast("Callable[P, Coroutine[Any, Any, R]]", bound)


class delegate_stream(Generic[P, T]):
    """The same for a method that returns an async iterator (rows streamed)."""

    def __init__(
        self,
        part: str,
        method: Callable[Concatenate[Any, P], AsyncIterator[T]],
        operation: str,
    ) -> None:
        self.part = part
        self.method = method
        self.operation = operation
        setattr(self, MARK, operation)
        self._run = _translate_stream(operation, method)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> delegate_stream[P, T]: ...

    @overload
    def __get__(
        self, instance: object, owner: type[Any]
    ) -> Callable[P, AsyncIterator[T]]: ...

    def __get__(
        self, instance: object | None, owner: type[Any]
    ) -> delegate_stream[P, T] | Callable[P, AsyncIterator[T]]:
        if instance is None:
            return self
        bound = MethodType(self._run, getattr(instance, self.part))
        return cast("Callable[P, AsyncIterator[T]]", bound)
