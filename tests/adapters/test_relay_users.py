"""The relay's users file: salted scrypt hashes, atomic updates, reloads."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from warmup.adapters.relay_users import (
    UserFile,
    add_user,
    hash_password,
    remove_user,
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
    assert [line.partition(":")[0] for line in lines] == ["news", "alerts"]
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


def test_priority_and_changed_fields_old_lines_still_read(tmp_path: Path) -> None:
    path = tmp_path / "users"
    old = f"# written by an older warmup\nold:{hash_password(b'old password')}\n"
    path.write_text(old)
    when = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    add_user(path, "news", b"news password", priority="HIGH", now=when)
    users = UserFile(path).users()
    assert users["old"].priority is None and users["old"].changed is None
    assert users["news"].priority == "high" and users["news"].changed == when
    # Only the priority: the password and its date stay.
    assert not add_user(path, "news", None, priority="40")
    again = UserFile(path)
    assert again.priority("news") is None  # not read yet: no I/O on the loop
    assert again.verify("news", b"news password") and again.priority("news") == "40"
    assert again.users()["news"].changed == when
    add_user(path, "news", None, priority="")  # cleared
    cleared = UserFile(path)
    assert "news" in cleared.users() and cleared.priority("news") is None
    assert path.read_text().startswith("# written by an older warmup\n")
    with pytest.raises(InputError, match="--priority"):
        add_user(path, "news", None, priority="urgent")
    with pytest.raises(InputError, match="no such user"):
        add_user(path, "ghost", None, priority="high")


@pytest.mark.parametrize(
    "tail", [":priority=urgent", ":colour=red", ":priority=1:priority=2", ":x"]
)
def test_bad_extra_fields_name_the_line(tmp_path: Path, tail: str) -> None:
    path = tmp_path / "users"
    path.write_text(f"# c\nnews:{hash_password(b'password1')}{tail}\n")
    with pytest.raises(InputError, match=":2"):
        UserFile(path).users()


def test_remove_user_rewrites_atomically_and_refuses_unknown(tmp_path: Path) -> None:
    path = tmp_path / "users"
    add_user(path, "news", b"first password")
    add_user(path, "alerts", b"second password")
    remove_user(path, "news")
    assert set(UserFile(path).users()) == {"alerts"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(InputError, match="no such user"):
        remove_user(path, "news")
