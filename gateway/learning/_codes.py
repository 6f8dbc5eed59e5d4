"""The short-prompt path's packed feature codes (`FeatureHasher._transform_words`).

A feature is one int64 that sorts where `features._finish` would sum it, so that a prompt's
features are one small array whose plain sort gives the order of the whole-array path, and the
caches hold one integer per word, word pair and length feature, and one array per word's n-grams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

# The same constants as Python ints, for the per-word path (all hashes there stay below 2**32, so
# masking a product to 32 bits gives what the uint64 lanes give).
_M32_I, _K1_I, _K2_I, _K3_I = 0xFFFFFFFF, 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D
# The per-word path packs a feature into one int64, from the top: bucket, kind (0 for a word feature:
# unigram, length, bigram; 1 + n - lo for a character n-gram of length n), the feature's position in
# the prompt's list (0 in the caches, or'ed in per call), then 1 for an n-gram, then the sign bit.
# Positions are unique, so a plain sort orders a bucket's features by kind and then position, which
# is the feature order that `_transform_arrays` sums a bucket in; the two low bits pick the value.
_POSITION_BITS = 30
_KIND_SHIFT = _POSITION_BITS + 2
_BUCKET_SHIFT = _KIND_SHIFT + 3  # kinds 0..7; buckets below 2**26, so codes stay below 2**61


def fmix(h: int) -> int:
    # `features._mix` for one hash below 2**32, on Python ints.
    h ^= h >> 16
    h = (h * _K2_I) & _M32_I
    h ^= h >> 13
    h = (h * _K3_I) & _M32_I
    return h ^ (h >> 16)


class Memo(dict):
    """key -> `build(key)` on a miss; bounded (cleared when full: cheap to refill)."""

    __slots__ = ("_build", "_limit")

    def __init__(self, build: Callable[[Any], Any], limit: int) -> None:
        super().__init__()
        self._build = build
        self._limit = limit

    def __missing__(self, key):
        value = self._build(key)
        if len(self) >= self._limit:
            self.clear()
        self[key] = value
        return value


def pack(h: int, mask: int, kind: int = 0) -> int:
    # A mixed hash as a code (the sign is its bit 31, as in `_transform_arrays`).
    return (h & mask) << _BUCKET_SHIFT | kind << _KIND_SHIFT | (kind > 0) << 1 | (h >> 31 & 1)


def unigram_code(crcs: Mapping[str, int], mask: int, token: str) -> int:
    return pack(fmix(crcs[token]), mask)


def bigram_code(crcs: Mapping[str, int], mask: int, pair: tuple[str, str]) -> int:
    return pack(fmix((((crcs[pair[0]] * _K1_I) ^ (crcs[pair[1]] + _K2_I)) & _M32_I) ^ _K3_I), mask)


def gram_codes(lo: int, hi: int, mask: int, word: str) -> np.ndarray:
    """A word's character n-grams as packed codes: what `FeatureHasher._char_grams` finds for that
    word, since no n-gram window crosses a word boundary."""
    codes = [1, *map(ord, word), 2]
    out = []
    for n in range(lo, hi + 1):
        kind = n - lo + 1
        for start in range(len(codes) - n + 1):
            h = n
            for c in codes[start:start + n]:
                h = (h * _K2_I + c) & _M32_I
            out.append(pack(fmix(h ^ _K1_I), mask, kind))
    return np.array(out, dtype=np.int64)
