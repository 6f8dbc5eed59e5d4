"""The short-prompt path's packed feature codes (`FeatureHasher._transform_words`).

A feature is one int64 that sorts where `features._finish` would sum it, so that a prompt's
features are one small array whose plain sort gives the order of the whole-array path. The caches
hold each code as its 8 native-order bytes, and a word's unigram and character n-grams as one
bytes object, so that a prompt's codes are one `bytes.join` read by `np.frombuffer`: no Python
int is converted per feature and no array is built per word.
"""

from __future__ import annotations

import math
import sys
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
#: What `np.frombuffer` reads the joined codes as (the bytes are written in this order).
CODE = np.dtype(np.int64)
#: Sorts before every code (see `FeatureHasher._sum_codes`).
SENTINEL = (-1).to_bytes(8, sys.byteorder, signed=True)
#: A token longer than this is no word (base64, a hash, minified code): its character n-grams are
#: those of its first `MAX_WORD` characters, so one token costs at most ~190 n-grams and their codes
#: at most ~1.5 KiB, and no cache keeps it. Its unigram is still the whole token's: tokens that share
#: a head stay apart, and a model without n-grams sees what it always saw.
MAX_WORD = 64


def fmix(h: int) -> int:
    # `features._mix` for one hash below 2**32, on Python ints.
    h ^= h >> 16
    h = (h * _K2_I) & _M32_I
    h ^= h >> 13
    h = (h * _K3_I) & _M32_I
    return h ^ (h >> 16)


class Memo(dict):
    """key -> `build(key)` on a miss; bounded (cleared when full: cheap to refill). With `keep`,
    only keys it accepts are kept: a count bound says little of the memory of keys of any size."""

    __slots__ = ("_build", "_keep", "_limit")

    def __init__(self, build: Callable[[Any], Any], limit: int, keep: Callable[[Any], bool] | None = None) -> None:
        super().__init__()
        self._build = build
        self._limit = limit
        self._keep = keep

    def __missing__(self, key):
        value = self._build(key)
        if self._keep is None or self._keep(key):
            if len(self) >= self._limit:
                self.clear()
            self[key] = value
        return value


def keeps_token(token: str | bytes) -> bool:
    # So that a cache entry's memory is bounded whatever the text; a longer token is rare, and
    # costs only a CRC (C, over the whole token) and `MAX_WORD` characters' n-grams per use.
    return len(token) <= MAX_WORD


def keeps_pair(pair: tuple[str, str] | tuple[bytes, bytes]) -> bool:
    return len(pair[0]) <= MAX_WORD and len(pair[1]) <= MAX_WORD


def pack(h: int, mask: int, kind: int = 0) -> int:
    # A mixed hash as a code (the sign is its bit 31, as in `_transform_arrays`).
    return (h & mask) << _BUCKET_SHIFT | kind << _KIND_SHIFT | (kind > 0) << 1 | (h >> 31 & 1)


def to_bytes(code: int) -> bytes:
    return code.to_bytes(8, sys.byteorder)


def unigram_code(crcs: Mapping[str | bytes, int], mask: int, token: str | bytes) -> int:
    return pack(fmix(crcs[token]), mask)


def bigram_bytes(crcs: Mapping[str | bytes, int], mask: int, pair: tuple[str, str] | tuple[bytes, bytes]) -> bytes:
    return to_bytes(pack(fmix((((crcs[pair[0]] * _K1_I) ^ (crcs[pair[1]] + _K2_I)) & _M32_I) ^ _K3_I), mask))


def word_bytes(crcs: Mapping[str | bytes, int], grams: tuple[int, int] | None, mask: int, token: str | bytes) -> bytes:
    """A token's unigram code, then (with `grams`, for a word of 4+ characters) its character
    n-grams' (of its first `MAX_WORD` characters, as `features._gram_words` takes them)."""
    code = to_bytes(unigram_code(crcs, mask, token))
    if grams is None or len(token) < 4:
        return code
    return code + gram_codes(*grams, mask, token[:MAX_WORD]).tobytes()


def gram_codes(lo: int, hi: int, mask: int, word: str | bytes) -> np.ndarray:
    """A word's character n-grams as packed codes: what `FeatureHasher._char_grams` finds for that
    word, since no n-gram window crosses a word boundary. (An ASCII token is its bytes, whose values
    are its code points.)"""
    codes = [1, *(word if isinstance(word, bytes) else map(ord, word)), 2]
    out = []
    for n in range(lo, hi + 1):
        kind = n - lo + 1
        for start in range(len(codes) - n + 1):
            h = n
            for c in codes[start:start + n]:
                h = (h * _K2_I + c) & _M32_I
            out.append(pack(fmix(h ^ _K1_I), mask, kind))
    return np.array(out, dtype=CODE)


# Scalars as 0-d arrays: numpy takes them as they are (a Python int is converted on every call).
_SHIFT = np.array(_BUCKET_SHIFT, dtype=CODE)
_LOW = np.array(3, dtype=CODE)
#: The longest run numpy's `add.reduceat` sums one by one after its first (longer ones: 8 partial sums).
_PLAIN_RUN = 8
#: Above this many features continuing a bucket, numpy sums them all: each run costs ~5 k
#: instructions in Python, and `_reduce` ~25 k (an 80-word prompt has ~50 runs; the bench prompt 2).
_PYTHON_RUNS = 4


def _log1p(x: float) -> float:
    # numpy's, not `math.log1p`: its SIMD code may round differently, and `_finish` uses it.
    return np.log1p(np.array([x]))[0].item()


class PackedSums:
    """Sorted packed codes -> (sorted unique buckets, values): `features._finish`'s signed sums per
    bucket, ln(1 + |x|) with the sign kept, zeros dropped, not yet normalised, bit for bit.

    `packed` starts with a sentinel (-1) that sorts before every code, so that a feature continues
    a bucket where its bucket equals the one before it, sentinel included. A bucket holding one
    feature takes its value from a 4-entry table (its two low bits); one holding several sums them
    in Python in the order and grouping of numpy's `add.reduceat` (the first, plus the others added
    up from zero) and takes ln(1 + |x|) from numpy per distinct sum (few: sums of +-1 and +-w).
    Many sums (more than `_PYTHON_RUNS` continuing features) and rare cases (a run longer than
    `_PLAIN_RUN`, a zero or non-finite sum) take numpy's path.
    """

    __slots__ = ("_log1p", "_signed", "logged", "signed")

    def __init__(self, char_weight: float) -> None:
        #: A code's two low bits -> its signed count (+-1 for a word feature, +-char_weight for an
        #: n-gram, as `_transform_arrays` computes them), and that count's sign(x) * ln(1 + |x|)
        #: as `_finish` computes it.
        self.signed = np.array([1.0, -1.0, char_weight * 1.0, char_weight * -1.0])
        self.logged = np.sign(self.signed) * np.log1p(np.abs(self.signed))
        self._signed = self.signed.tolist()
        self._log1p: dict[float, float] = Memo(_log1p, 4096)

    def __call__(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        buckets = packed >> _SHIFT
        tail = buckets[1:]
        repeats = tail == buckets[:-1]
        low = packed[1:] & _LOW
        cont = repeats.nonzero()[0]
        if not len(cont):
            return tail, self.logged[low]  # one feature per bucket: no sums, and no zero to drop
        heads = ~repeats
        if len(cont) > _PYTHON_RUNS:
            return self._reduce(tail, low, heads)
        idx, values = tail[heads], self.logged[low[heads]]
        cont = cont.tolist()
        signed, log1p = self._signed, self._log1p
        i, k = 0, len(cont)
        while i < k:  # one run of continuations: the features start..end-1 share a bucket
            start = cont[i] - 1
            j = i + 1
            while j < k and cont[j] == cont[j - 1] + 1:
                j += 1
            end = cont[j - 1] + 1
            if end - start > _PLAIN_RUN:
                return self._reduce(tail, low, heads)
            first, *others = low[start:end].tolist()  # (the whole list costs more than a few slices)
            rest = 0.0
            for b in others:
                rest += signed[b]
            total = signed[first] + rest
            size = abs(total)
            if not 0.0 < size < math.inf:
                return self._reduce(tail, low, heads)
            values[start - i] = math.copysign(log1p[size], total)  # i features before it continued others
            i = j
        return idx, values

    def _reduce(self, tail: np.ndarray, low: np.ndarray, heads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = heads.nonzero()[0]
        idx = tail[first]
        signed = np.add.reduceat(self.signed[low], first)
        values = np.log1p(np.abs(signed))
        np.copysign(values, signed, out=values)  # = np.sign(signed) * values, as values >= 0
        if np.count_nonzero(values) != len(values):
            keep = values != 0.0
            idx, values = idx[keep], values[keep]
        return idx, values
