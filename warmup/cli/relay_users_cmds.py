"""``warmup relay adduser`` (also ``relay users add``), ``relay users list`` and
``relay users remove``: the relay's AUTH users file (see
warmup.adapters.relay_users). `warmup run` reads the file again when it changes."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from warmup.adapters.relay_users import RelayUser, add_user, read_users, remove_user
from warmup.app.clock import SystemClock
from warmup.cli.common import EXIT_CONFIG, config_from, echo_json, fail, out_console
from warmup.core.errors import InputError

__all__ = ["DEFAULT_USERS_FILE", "adduser", "users"]

MIN_PASSWORD = 8
DEFAULT_USERS_FILE = "relay-users"

_FILE = click.option(
    "--file",
    "users_path",
    metavar="PATH",
    help="Default: relay.users_file, else ./relay-users.",
)


def _path(ctx: click.Context, given: str | None) -> tuple[str, str | None]:
    configured = config_from(ctx).settings.relay.users_file
    return given or configured or DEFAULT_USERS_FILE, configured


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    text: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True
    )
    return text


@click.command()
@click.argument("name")
@_FILE
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input."
)
@click.option(
    "--priority",
    metavar="P",
    help="Default X-Warmup-Priority of what NAME submits (high, normal, low or "
    "0-100) when the message has none; '' clears it.",
)
@click.option(
    "--keep-password",
    is_flag=True,
    help="An existing user: change only --priority, not the password.",
)
@click.pass_context
def adduser(
    ctx: click.Context,
    name: str,
    users_path: str | None,
    password_stdin: bool,
    priority: str | None,
    keep_password: bool,
) -> None:
    """Add NAME to the relay's users file (or set a new password).

    The password is asked twice (or read from stdin); the file keeps a salted
    scrypt hash. NAME is also the campaign of what NAME submits unless the
    message names one in its campaign header.
    """
    path, configured = _path(ctx, users_path)
    password: bytes | None = None
    if not keep_password:
        text = _password(password_stdin)
        if len(text) < MIN_PASSWORD:
            fail(f"the password needs at least {MIN_PASSWORD} characters", EXIT_CONFIG)
        password = text.encode("utf-8")
    try:
        new = add_user(path, name, password, priority=priority, now=SystemClock().now())
    except InputError as exc:
        fail(str(exc), EXIT_CONFIG)
    except OSError as exc:
        fail(f"cannot write {path}: {exc}")
    click.echo(f"{'added' if new else 'updated'} {name} in {path}")
    if configured is None:
        click.echo(f"config.yaml:\n  relay:\n    users_file: {path}")


@click.group()
def users() -> None:
    """The relay's AUTH users: add, list, remove."""


users.add_command(adduser, "add")


def _row(user: RelayUser) -> dict[str, str | None]:
    changed = user.changed.isoformat(timespec="seconds") if user.changed else None
    return {"name": user.name, "priority": user.priority, "changed": changed}


@users.command("list")
@_FILE
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user.")
@click.pass_context
def list_(ctx: click.Context, users_path: str | None, as_json: bool) -> None:
    """Show the users: name, default priority, when the password was set.

    Lockouts are kept in the memory of `warmup run` only (the log says when a
    name is locked), so they are not shown here.
    """
    path, _ = _path(ctx, users_path)
    if not Path(path).exists():
        fail(f"{path}: no users file (warmup relay adduser NAME makes one)")
    try:
        found = read_users(path)
    except InputError as exc:
        fail(str(exc), EXIT_CONFIG)
    if as_json:
        for user in found.values():
            echo_json(_row(user))
        return
    table = Table(title=f"relay users in {path} ({len(found)})")
    for column in ("name", "priority", "password set"):
        table.add_column(column)
    for user in found.values():
        row = _row(user)
        table.add_row(row["name"], row["priority"] or "-", row["changed"] or "-")
    out_console().print(table)


@users.command()
@click.argument("name")
@_FILE
@click.pass_context
def remove(ctx: click.Context, name: str, users_path: str | None) -> None:
    """Take NAME out of the users file (its next AUTH fails; sessions already
    logged in keep going until they end)."""
    path, _ = _path(ctx, users_path)
    try:
        remove_user(path, name)
    except InputError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {path}: {exc}")
    click.echo(f"removed {name} from {path}")
