"""Who is calling: gateway keys looked up by their SHA-256, plus the master key.

A presented key is hashed once (SHA-256, well under a microsecond for a 50-byte key) and looked
up in a dict of digests. No plaintext is ever compared, so there is no `hmac.compare_digest` here:
the dict's `==` on digests can at most leak, through timing, how a *digest* of the attacker's own
guess relates to a stored digest, and that says nothing about which key hashes to the stored one
(a preimage). Hashing first is what makes the comparison safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.security.config import MASTER_NAME, KeySpec, Limits

__all__ = ["KeyRing", "Principal", "hash_key"]

_NO_LIMITS = Limits()


def hash_key(key: str) -> str:
    """The lower-case hex SHA-256 of `key` as the config's `keys[].sha256` expects it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `name` is safe to log; the key itself is never kept."""

    name: str
    pipeline: str | None = None  # the only pipeline this key may use (None: any)
    limits: Limits = _NO_LIMITS
    master: bool = False


class KeyRing:
    """Digest -> principal for every configured key; empty means authentication is off."""

    def __init__(self, keys: Iterable[KeySpec] = (), master_key: str | None = None) -> None:
        self._master = master_key
        self._by_digest = self._table(keys)

    def _table(self, keys: Iterable[KeySpec]) -> dict[bytes, Principal]:
        table: dict[bytes, Principal] = {}
        for spec in keys:
            limits = Limits(rpm=spec.rpm, tpm=spec.tpm)
            table[bytes.fromhex(spec.sha256)] = Principal(spec.name, spec.pipeline, limits)
        if self._master:
            # The master key wins over a gateway key with the same value: it is the operator's.
            table[hashlib.sha256(self._master.encode("utf-8")).digest()] = Principal(MASTER_NAME, master=True)
        return table

    def replace(self, keys: Iterable[KeySpec]) -> None:
        """Serve `keys` from now on (the master key stays): one reference swap, so a lookup sees
        the old table or the new one, never half of each (`security/reload.py`)."""
        self._by_digest = self._table(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, key: bytes) -> Principal | None:
        return self._by_digest.get(hashlib.sha256(key).digest())
