"""DKIM at send time: the last step before a message's bytes go out.

Every other header (trace, List-Unsubscribe, …) is added before; the signature
goes on top. A body shared by many recipients (a template without per-recipient
placeholders in its body, or one relayed message) is canonicalised and hashed
once: the hash is cached by the body's bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from warmup.core.auth.dkim import (
    SigningKey,
    body_hash,
    from_domain,
    keys_for,
    signature_field,
    split_message,
)

__all__ = ["HELD_PREFIX", "Held", "MessageSigner"]

logger = logging.getLogger(__name__)

#: The start of ``last_reply`` of a recipient held back unsigned.
HELD_PREFIX = "held: "
_BODY_CACHE = 16  # bodies, and at most this many bytes of them in all:
_BODY_CACHE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    """A message not sent: no key covers its From domain (``dkim.unsigned: hold``)."""

    reason: str


class MessageSigner:
    """Signs with the keys aligned to the From domain. No keys at all: signing is
    off and nothing is held."""

    def __init__(self, keys: Sequence[SigningKey], *, unsigned: str = "hold") -> None:
        self._keys = tuple(keys)
        self._hold = unsigned == "hold"
        self._bodies: OrderedDict[bytes, bytes] = OrderedDict()
        self._cached_bytes = 0
        self._warned: set[str] = set()
        self.body_hashes = 0  # bodies canonicalised and hashed (for tests, bench)
        self._signers: ThreadPoolExecutor | None = None  # made on first use

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def _hashed(self, body: bytes) -> bytes:
        found = self._bodies.get(body)
        if found is not None:
            self._bodies.move_to_end(body)
            return found
        found = body_hash(body)
        self.body_hashes += 1
        if len(body) <= _BODY_CACHE_BYTES // 4:  # a huge body is not kept
            self._bodies[body] = found
            self._cached_bytes += len(body)
        while len(self._bodies) > _BODY_CACHE or self._cached_bytes > _BODY_CACHE_BYTES:
            dropped, _ = self._bodies.popitem(last=False)
            self._cached_bytes -= len(dropped)
        return found

    def sign(self, message: bytes, now: datetime) -> bytes | Held:
        """``message`` with its DKIM signatures on top, unchanged when signing is
        off or ``dkim.unsigned: send``, or :class:`Held`."""
        prepared = self._prepare(message)
        if not isinstance(prepared, _ToSign):
            return prepared
        return b"".join([*prepared.fields(now), message])

    async def sign_off_loop(self, message: bytes, now: datetime) -> bytes | Held:
        """:meth:`sign` with the key operations in a worker thread: ``cryptography``
        releases the GIL while it signs, and the loop sends for other lanes
        meanwhile (bench.engine --dkim: 1.2x the rate of signing on the loop). The
        body hash and its cache stay on the caller's thread (no lock needed)."""
        prepared = self._prepare(message)
        if not isinstance(prepared, _ToSign):
            return prepared
        if self._signers is None:
            self._signers = ThreadPoolExecutor(_signing_threads(), "dkim")
        # run_in_executor, not to_thread: no context to copy, ~25 µs less a message.
        loop = asyncio.get_running_loop()
        added = await loop.run_in_executor(self._signers, prepared.fields, now)
        return b"".join([*added, message])

    def _prepare(self, message: bytes) -> _ToSign | bytes | Held:
        if not self._keys:
            return message
        fields, start = split_message(message)
        domain = from_domain(fields)
        keys = keys_for(domain, self._keys) if domain else []
        if not keys:
            return self._unsigned(message, domain)
        return _ToSign(fields, self._hashed(message[start:]), keys)

    def _unsigned(self, message: bytes, domain: str | None) -> bytes | Held:
        where = (
            f"From domain {domain}" if domain else "a message without a From address"
        )
        if (domain or "") not in self._warned:
            self._warned.add(domain or "")
            action = "holding it" if self._hold else "sending it unsigned"
            logger.warning(
                "no DKIM key (dkim.keys) covers %s: %s (dkim.unsigned)", where, action
            )
        if not self._hold:
            return message
        return Held(
            reason=f"{HELD_PREFIX}no DKIM key for {where}; add one to dkim.keys "
            "or set dkim.unsigned: send"
        )


def _signing_threads() -> int:
    """Threads that sign: one core fewer than the machine has, the loop's.

    More threads than free cores only queue for them and for the GIL, which each
    signature takes back to finish: on 2 cores the default executor's 6 threads
    made signing cost 1.22x a bare signature in bench.engine --dkim, one thread
    1.01x (issue 16)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True, slots=True)
class _ToSign:
    """What the key operations need: no shared state, so any thread may run them."""

    header_fields: list[tuple[str, bytes]]
    hashed: bytes
    keys: Sequence[SigningKey]

    def fields(self, now: datetime) -> list[bytes]:
        return [
            signature_field(self.header_fields, self.hashed, key, now=now)
            for key in self.keys
        ]
