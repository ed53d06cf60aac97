"""The relay's users file: salted scrypt hashes, atomic updates, reloads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from warmup.adapters.relay_users import (
    UserFile,
    add_user,
    hash_password,
    verify_password,
)
from warmup.core.errors import InputError


def test_hash_format_and_verify() -> None:
    stored = hash_password(b"s3cret pass")
    kind, n, r, p, salt, digest = stored.split("$")
    assert (kind, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) == 24 and len(digest) == 44
    assert verify_password(b"s3cret pass", stored)
    assert not verify_password(b"s3cret pasS", stored)
    assert hash_password(b"x", n=2, r=1, p=1) != hash_password(b"x", n=2, r=1, p=1)


@pytest.mark.parametrize(
    "stored",
    [
        "bcrypt$2$1$1$AAAA$AAAA",
        "scrypt$16384$8$1$notbase64!$AAAA",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$3$8$1$AAAA$AAAA",  # N not a power of two
        "scrypt$only$three",
    ],
)
def test_malformed_hashes_never_match(stored: str) -> None:
    assert not verify_password(b"anything", stored)


def test_add_user_writes_0600_atomically_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "users"
    assert add_user(path, "news", b"first password")
    assert add_user(path, "alerts", b"second password")
    assert not add_user(path, "news", b"third password")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert [line.partition(":")[0] for line in lines] == ["alerts", "news"]
    users = UserFile(path)
    assert users.verify("news", b"third password")
    assert not users.verify("news", b"first password")
    assert not users.verify("nobody", b"third password")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "users"
    add_user(path, "news", b"first password")
    users = UserFile(path)
    assert set(users.users()) == {"news"}
    add_user(path, "alerts-team", b"second password")
    assert set(users.users()) == {"news", "alerts-team"}


@pytest.mark.parametrize(
    ("text", "where"),
    [("news scrypt$1\n", ":1"), ("# ok\n\nbad name:scrypt$x\n", ":3")],
)
def test_a_bad_users_file_is_an_input_error(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "users"
    path.write_text(text)
    with pytest.raises(InputError, match=where):
        UserFile(path).users()
    with pytest.raises(InputError):
        add_user(path, "news", b"password")


def test_missing_file_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        UserFile(tmp_path / "absent").users()
    with pytest.raises(InputError, match="user names"):
        add_user(tmp_path / "users", "bad name", b"password")
    with pytest.raises(InputError, match="user names"):
        add_user(tmp_path / "users", "a\r\nBcc: x", b"password")
