"""The error tree (core/errors.py): messages built from fields, builtin mixins."""

from __future__ import annotations

import pytest

from warmup.core.errors import (
    ConfigError,
    ConfigIssue,
    InputError,
    StoreError,
    TemplateError,
    WarmupError,
)


@pytest.mark.parametrize(
    ("error", "builtin", "message"),
    [
        (
            ConfigError([ConfigIssue(file="c.yaml", path="ips[0]", message="bad")]),
            ValueError,
            "configuration problem: c.yaml: ips[0]: bad",
        ),
        (
            ConfigError(
                [
                    ConfigIssue(file="c.yaml", path="", message="file not found"),
                    ConfigIssue(file="s.yaml", path="ramp", message="empty"),
                ]
            ),
            ValueError,
            "2 configuration problems:\n"
            "  c.yaml: file not found\n  s.yaml: ramp: empty",
        ),
        (
            InputError("list.csv", "no email column"),
            ValueError,
            "list.csv: no email column",
        ),
        (TemplateError("t.eml", "no body"), ValueError, "t.eml: no body"),
        (
            StoreError("saving bounces", "database is locked"),
            RuntimeError,
            "database error during saving bounces: database is locked",
        ),
    ],
)
def test_each_error_is_a_warmup_error_and_its_builtin(
    error: Exception, builtin: type[Exception], message: str
) -> None:
    assert isinstance(error, WarmupError)
    assert isinstance(error, builtin)
    assert str(error) == message


def test_fields_stay_available() -> None:
    issue = ConfigIssue(file="c.yaml", path="x", message="y")
    assert ConfigError([issue]).issues == [issue]
    error = InputError("f", "what")
    assert (error.source, error.detail) == ("f", "what")
    store = StoreError("op", "detail")
    assert (store.operation, store.detail) == ("op", "detail")
