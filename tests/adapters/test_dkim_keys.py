"""DKIM keys: our signatures verify with an independent verifier (dkimpy)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest

from tests.dkim_check import dnsfunc, signed_names, verify_all
from warmup.adapters.dkim_keys import (
    DKIMKeyError,
    generate_key,
    load_key,
    load_signing_key,
    txt_record,
    write_key,
)
from warmup.core.auth.dkim import DEFAULT_HEADERS, sign_message
from warmup.core.settings import DKIMKeySettings

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # dkimpy refuses a t= in the future
MESSAGE = (
    b"From: Shop <news@mail.shop.example>\r\n"
    b"To: ann@example.com\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?=  sale\r\n"
    b"List-Unsubscribe: <https://u.example/u/T>,\r\n <mailto:u+T@b.example>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
    b"\r\n"
    b"Hello  \xc3\xa9\r\n.leading dot\r\n\r\n\r\n"
)


def _spec(selector: str, key: str) -> DKIMKeySettings:
    return DKIMKeySettings(
        domain="shop.example", selector=selector, key=key, headers=DEFAULT_HEADERS
    )


def _write(tmp_path: Path, name: str, algorithm: str, bits: int = 2048) -> Path:
    path = tmp_path / name
    write_key(generate_key(algorithm, bits), path)
    return path


@pytest.mark.parametrize(
    ("algorithm", "bits"), [("rsa", 2048), ("rsa", 1024), ("ed25519", 0)]
)
def test_signature_verifies_with_dkimpy(
    tmp_path: Path, algorithm: str, bits: int
) -> None:
    path = _write(tmp_path, "k.pem", algorithm, bits)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_signing_key(_spec("s1", "k.pem"), base=tmp_path)
    signed = sign_message(MESSAGE, [key], now=NOW)
    record = txt_record(load_key(path))
    records = {"s1._domainkey.shop.example": record}
    assert verify_all(signed, records) == 1
    assert signed_names(signed) == [
        [
            "from",
            "from",
            "to",
            "subject",
            "date",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ]
    ]
    tampered = signed.replace(b"sale", b"SALE")
    assert not dkim.verify(tampered, dnsfunc=dnsfunc(records))


def test_dual_signing_both_verify(tmp_path: Path) -> None:
    _write(tmp_path, "old.pem", "rsa")
    _write(tmp_path, "new.pem", "ed25519")
    keys = [
        load_signing_key(_spec(s, f"{s}.pem"), base=tmp_path) for s in ("old", "new")
    ]
    signed = sign_message(MESSAGE, keys, now=NOW)
    records = {
        f"{s}._domainkey.shop.example": txt_record(load_key(tmp_path / f"{s}.pem"))
        for s in ("old", "new")
    }
    assert verify_all(signed, records) == 2


def test_bad_keys_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DKIMKeyError, match="cannot read"):
        load_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(DKIMKeyError, match="not an unencrypted PEM"):
        load_key(tmp_path / "junk.pem")
    with pytest.raises(DKIMKeyError, match="at least 1024"):
        generate_key("rsa", 512)
    path = _write(tmp_path, "k.pem", "ed25519")
    with pytest.raises(DKIMKeyError, match="exists already"):
        write_key(generate_key("ed25519", 0), path)
