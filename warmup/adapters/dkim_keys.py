"""DKIM private keys with ``cryptography``: load, sign, generate, publish.

Signing uses ``cryptography`` directly (RSASSA-PKCS1-v1_5 SHA-256, RFC 6376
§3.3.1; PureEdDSA over the SHA-256 of the input, RFC 8463 §3); the DKIM format
around it is :mod:`warmup.core.auth.dkim`. ``bench/dkim.py`` measures both against
dkimpy.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from warmup.core.auth.dkim import SigningKey
from warmup.core.errors import InputError
from warmup.core.settings import DKIMKeySettings

__all__ = [
    "DKIMKeyError",
    "generate_key",
    "load_key",
    "load_signing_key",
    "txt_record",
]

MIN_RSA_BITS = 1024
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class DKIMKeyError(InputError):
    """A DKIM key file cannot be read or is not usable for signing."""


def load_key(path: Path) -> PrivateKey:
    """The PEM private key at ``path``: RSA of at least 1024 bits, or Ed25519."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DKIMKeyError(str(path), f"cannot read the key: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DKIMKeyError(
            str(path), f"not an unencrypted PEM private key ({exc})"
        ) from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DKIMKeyError(
                str(path),
                f"RSA keys need at least {MIN_RSA_BITS} bits, got {key.key_size}",
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise DKIMKeyError(
        str(path), f"DKIM keys are RSA or Ed25519, got {type(key).__name__}"
    )


def _signer(key: PrivateKey) -> tuple[str, Callable[[bytes], bytes]]:
    if isinstance(key, rsa.RSAPrivateKey):
        pkcs1 = padding.PKCS1v15()
        sha256 = hashes.SHA256()

        def sign_rsa(data: bytes) -> bytes:
            return key.sign(data, pkcs1, sha256)

        return "rsa-sha256", sign_rsa

    def sign_ed25519(data: bytes) -> bytes:
        return key.sign(hashlib.sha256(data).digest())

    return "ed25519-sha256", sign_ed25519


def load_signing_key(spec: DKIMKeySettings, *, base: Path) -> SigningKey:
    """Load ``spec.key`` (relative to ``base``) as a core :class:`SigningKey`."""
    algorithm, sign = _signer(load_key(base / spec.key))
    return SigningKey(
        domain=spec.domain,
        selector=spec.selector,
        algorithm=algorithm,
        headers=spec.headers,
        sign=sign,
    )


def public_value(key: PrivateKey) -> tuple[str, str]:
    """(``k=`` value, ``p=`` value) of the key's public part."""
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        return "rsa", base64.b64encode(der).decode("ascii")
    raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return "ed25519", base64.b64encode(raw).decode("ascii")


def txt_record(key: PrivateKey) -> str:
    """The TXT value to publish at ``selector._domainkey.domain``."""
    kind, public = public_value(key)
    return f"v=DKIM1; k={kind}; p={public}"


def generate_key(algorithm: str, bits: int) -> PrivateKey:
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if bits < MIN_RSA_BITS:
        raise DKIMKeyError("--bits", f"must be at least {MIN_RSA_BITS}, got {bits}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_key(key: PrivateKey, path: Path) -> None:
    """Write ``key`` as PEM (PKCS#8) readable by its owner only (mode 0600);
    an existing file is refused, never overwritten."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise DKIMKeyError(str(path), "exists already; not overwritten") from exc
    except OSError as exc:
        raise DKIMKeyError(str(path), f"cannot write: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.chmod(path, 0o600)
