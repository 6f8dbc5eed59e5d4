"""Cheap prompt features: signed hashed unigrams + bigrams of lowercase word tokens.

Tokens are runs of Unicode letters and digits ("función", "größe"); Chinese and Japanese, written
without spaces, give one token per character, so their bigrams are character bigrams.

One `FeatureHasher.transform(text)` runs per request, so it avoids per-token Python work beyond
the tokenizer and a dict lookup or two. Hashes are CRC32 based (not Python's salted `hash`), so a
prompt's buckets are the same in every process and on every machine. Its values are the same in
every process on one kind of CPU; across CPUs they may differ in the last bit, because numpy's
`log1p` uses SIMD code (AVX-512 SVML where the CPU has it) that rounds some inputs differently.

Values are sublinear counts (ln(1 + tf)), signed by a hash bit so collisions cancel in expectation,
L2-normalised so long and short prompts live on the same scale. Two length tokens say how long
the prompt is, which a bag of words cannot.

`transform` runs on every request, and a prompt is a few dozen words, most of them seen before:
each word's hashed features (its unigram, and its character n-grams) are computed once and kept in
bounded caches, each feature packed into one int64 that sorts where `_finish` would sum it, kept
as bytes (see `_codes`). ASCII text (most prompts) is tokenised as bytes, so a short prompt's
features are one `bytes.join` read by `np.frombuffer`; one sort orders them, and a bucket holding
several is summed in Python in numpy's order (`_codes.PackedSums`). What is left is about a dozen
numpy calls, whose fixed cost (~3-5 k instructions each) is most of it. The result is
bit-identical to the whole-array formulation that `describe` still uses (property tests and the
corpus hold the two together); for the bench prompt `transform` executes ~95 k instructions,
against ~156 k for int codes, per-word arrays and numpy sums before it (callgrind, in-process;
`bench/bench_domains.py` times it with inference).

Optionally (`char_ngrams=(3, 5)`), character n-grams of the first 256 words of four or more
characters, with word boundaries marked (fastText-style "<sor", "rted>"), are added at
`char_weight`: they let a model trained on "sorting" recognise "sorted", and cognates across
languages. The shipped domain model uses them; the default hasher does not, so existing models
keep their features.

What a prompt costs is bounded whatever its shape: only its first 32,768 characters are read,
a token's n-grams are those of its first 64 characters (a longer token is no word: base64, a
hash), and no cache keeps a token longer than that. Neither cut reaches a prompt of the shipped
corpus (at most 447 characters, tokens of at most 32). Before them an 8 MB prompt of 90 long
"words" took 39 s of event loop and ~200 MB of caches.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from functools import partial
from itertools import islice, pairwise
from operator import itemgetter

import numpy as np

from gateway._frozen import builder
from gateway.learning._codes import (
    _POSITION_BITS,
    CODE,
    MAX_WORD,
    SENTINEL,
    Memo,
    PackedSums,
    bigram_bytes,
    keeps_pair,
    keeps_token,
    to_bytes,
    unigram_code,
    word_bytes,
)

__all__ = ["DEFAULT_BITS", "FeatureHasher", "SparseFeatures", "messages_text", "tokenize"]

DEFAULT_BITS = 18
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# ASCII text tokenises exactly as `[a-z0-9]+` did, so models saved before this stay valid for it.
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")
# ASCII text (most prompts) has no CJK and no letters beyond [a-z] once lowered, so its tokens are
# the runs of [a-z0-9]: every other ASCII character becomes a space and `split` finds the runs, the
# same tokens as `_TOKEN` at a sixth of its time (a 5,000-word prompt: 1.08 -> 0.17 ms).
_ASCII_SPACES = str.maketrans({c: " " for c in map(chr, range(128)) if not ("a" <= c <= "z" or "0" <= c <= "9")})
# `transform` reads ASCII text as bytes: one C pass lowers it and blanks the rest (`str.translate`
# looks each character up in a dict: 15 k instructions for the bench prompt, against 4 k), and the
# tokens stay bytes, which the caches and the CRCs take as they are. Bytes >= 128 never occur.
_ASCII_BYTES = bytes(c | 0x20 if 65 <= c <= 90 else c if 97 <= c <= 122 or 48 <= c <= 57 else 32 for c in range(256))
_M32 = np.uint64(0xFFFFFFFF)
# Odd multipliers from the golden ratio / murmur finalizer: they spread bits of both tokens.
_K1 = np.uint64(0x9E3779B1)
_K2 = np.uint64(0x85EBCA77)
_K3 = np.uint64(0xC2B2AE3D)
_SIGN_BIT = np.uint64(31)
_MAX_GRAM_WORDS = 256
#: Only this many characters of a text are read, so a prompt's features cost a bounded time and
#: memory whatever its size; its first words say what it is about. ~5,000 words of prose: past
#: 4,096 tokens, the top length bucket, so a longer prompt's length features do not change.
_MAX_CHARS = 32768
#: Prompts of up to this many tokens take the per-word path; longer ones the whole-array one. With
#: warm caches the per-word path is still the cheaper at 500 tokens (257 against 355 us), but a long
#: prompt brings more words the caches have not seen, each a Python loop over its n-grams.
_FAST_TOKENS = 96
#: ... and of up to this many characters: an unseen word costs the per-word path ~4-5 us per
#: character (against well under 1 us on the arrays), so this bounds it at what 96 unseen words of
#: 20 letters cost, however long the tokens (96 of 64+ letters cost ~30-60 ms without it).
_FAST_CHARS = 2048
#: Words whose codes (unigram and character n-grams) are kept (~0.2 KiB each for an 8-letter word).
_WORD_CACHE = 32768
_POSITIONS = np.arange(4096, dtype=np.int64) << 2


@dataclass(frozen=True, slots=True)
class SparseFeatures:
    """A sparse vector: sorted unique `indices` (int64) with float64 `values`, plus token count."""

    indices: np.ndarray
    values: np.ndarray
    n_tokens: int

    def __len__(self) -> int:
        return int(self.indices.shape[0])


#: `SparseFeatures(...)` without the frozen dataclass's `object.__setattr__` per field (gateway/_frozen.py).
_sparse = builder(SparseFeatures)


def messages_text(messages: object) -> str:
    """The text the router reads from an OpenAI message list: every string / text part, joined."""
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text":
                    parts.append(str(part.get("text") or ""))
    return "\n".join(parts)


def tokenize(text: str) -> list[str]:
    """The prompt's lowercase tokens: runs of Unicode letters and digits, one per CJK character."""
    low = text.lower()
    if low.isascii():
        return low.translate(_ASCII_SPACES).split()
    return _TOKEN.findall(low)


_word_head = itemgetter(slice(MAX_WORD))  # `token[:MAX_WORD]` as a C call: no Python frame per word


def _gram_words(tokens: list[str]) -> list[str]:
    """The words whose character n-grams count: the first `_MAX_GRAM_WORDS` of 4+ characters (the
    scan stops there: a long prompt's tail was 0.75 ms of a 5,000-word prompt's features), each cut
    to its first `MAX_WORD` characters (as `_codes.word_bytes` cuts it)."""
    return list(map(_word_head, islice(filter(_long_enough, tokens), _MAX_GRAM_WORDS)))


def _long_enough(token: str) -> bool:
    return len(token) >= 4


def _finish(buckets: list[int] | np.ndarray, signs: list[float] | np.ndarray, n_tokens: int) -> SparseFeatures:
    """Signed counts summed per bucket (in feature order within a bucket), ln(1 + |x|) with the
    sign kept, L2-normalised."""
    b = np.asarray(buckets, dtype=np.int64)
    # Sum the signed counts per bucket: sort once, add up runs (np.unique's inverse costs twice this).
    order = np.argsort(b, kind="stable")
    sorted_buckets = b[order]
    first = np.flatnonzero(np.concatenate(([True], sorted_buckets[1:] != sorted_buckets[:-1])))
    idx = sorted_buckets[first]
    signed = np.add.reduceat(np.asarray(signs, dtype=np.float64)[order], first)
    values = np.sign(signed) * np.log1p(np.abs(signed))
    keep = values != 0.0
    if not np.logical_and.reduce(keep):  # `.all()` without its Python wrapper
        idx, values = idx[keep], values[keep]
    norm = float(np.sqrt(values @ values))
    if norm > 0.0:
        values /= norm
    return SparseFeatures(idx, values, n_tokens)


def _mix(h: np.ndarray) -> np.ndarray:
    # murmur3 fmix32 on uint64 lanes: consecutive inputs must not land in consecutive buckets.
    h = h ^ (h >> np.uint64(16))
    h = (h * _K2) & _M32
    h = h ^ (h >> np.uint64(13))
    h = (h * _K3) & _M32
    return h ^ (h >> np.uint64(16))


class _CRCs(dict):
    """token -> CRC32 of its UTF-8, computed on a miss; bounded (cleared when full: cheap to refill)."""

    __slots__ = ("_limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def __missing__(self, token: str | bytes) -> int:
        h = zlib.crc32(token if isinstance(token, bytes) else token.encode())
        if keeps_token(token):
            if len(self) >= self._limit:
                self.clear()
            self[token] = h
        return h


class FeatureHasher:
    """Text -> `SparseFeatures` in a 2**n_bits space. Stateless apart from a bounded token cache."""

    __slots__ = ("_cache", "_cache_size", "_lengths", "_packable", "_pairs", "_sums", "_words",
                 "bigrams", "char_ngrams", "char_weight", "dim", "n_bits")

    def __init__(self, n_bits: int = DEFAULT_BITS, *, bigrams: bool = True,
                 char_ngrams: tuple[int, int] | None = None, char_weight: float = 0.3, cache_size: int = 200_000):
        if not 8 <= n_bits <= 26:
            raise ValueError(f"n_bits must be in [8, 26], got {n_bits}")
        if char_ngrams is not None:
            char_ngrams = (int(char_ngrams[0]), int(char_ngrams[1]))
            if not 2 <= char_ngrams[0] <= char_ngrams[1] <= 8:
                raise ValueError(f"char_ngrams must be (lo, hi) with 2 <= lo <= hi <= 8, got {char_ngrams}")
        self.n_bits = n_bits
        self.dim = 1 << n_bits
        self.bigrams = bigrams
        self.char_ngrams = char_ngrams
        self.char_weight = float(char_weight)
        self._cache = _CRCs(cache_size)
        self._cache_size = cache_size
        mask = self.dim - 1
        # The per-word path's packed codes (see `_codes`), as bytes: token -> its unigram's and its
        # character n-grams', (word, next word) -> their bigram's (word pairs recur as words do, and
        # mixing one costs more than looking it up), and per length bucket the two length features'.
        self._words: dict[str | bytes, bytes] = Memo(partial(word_bytes, self._cache, char_ngrams, mask),
                                                     min(cache_size, _WORD_CACHE), keeps_token)
        self._pairs: dict[tuple, bytes] = Memo(partial(bigram_bytes, self._cache, mask), cache_size, keeps_pair)
        self._lengths = [to_bytes(unigram_code(self._cache, mask, f"\x00len{b}"))
                         + to_bytes(unigram_code(self._cache, mask, f"\x00len{min(b + 1, 12)}h")) for b in range(13)]
        self._sums = PackedSums(self.char_weight)
        # A char_weight whose ln(1 + |w|) is 0 makes a lone n-gram a zero that `_finish` drops, and
        # a non-finite one makes NaNs: neither fits the table, so those hashers take the array path.
        self._packable = char_ngrams is None or (math.isfinite(self.char_weight) and bool(self._sums.logged.all()))

    def config(self) -> dict:
        """What a saved model needs to rebuild this hasher (`FeatureHasher(**config)`)."""
        out: dict = {"n_bits": self.n_bits, "bigrams": self.bigrams}
        if self.char_ngrams is not None:
            out |= {"char_ngrams": list(self.char_ngrams), "char_weight": self.char_weight}
        return out

    def _char_grams(self, tokens: list[str] | list[bytes], names: bool = False) -> tuple[np.ndarray, list[str]]:
        """Hashes (and, for explanations, the text) of the character n-grams of words of 4+ characters.

        Vectorised: the words are joined with boundary marks into one code-point array, a polynomial
        hash of every window of each length is built from shifted slices, and windows that cross a
        word boundary are dropped, so a long prompt costs a few array operations, not a Python loop
        per n-gram.
        """
        lo, hi = self.char_ngrams  # type: ignore[misc]
        # The first words say what a prompt is about; capping them bounds the cost of a long one.
        words = _gram_words(tokens)
        if not words:
            return np.zeros(0, dtype=np.uint64), []
        if isinstance(words[0], bytes):  # ASCII tokens (see `transform`): bytes are code points
            text = b"\x01" + b"\x02\x01".join(words) + b"\x02"
            c = np.frombuffer(text, dtype=np.uint8).astype(np.uint64)
            text = text.decode() if names else ""
        else:
            text = "\x01" + "\x02\x01".join(words) + "\x02"  # marks never produced by the tokeniser
            c = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        ends = np.concatenate(([0], np.cumsum(c == 2)))  # end marks in c[:k]
        starts = np.concatenate(([0], np.cumsum(c == 1)))
        out: list[np.ndarray] = []
        labels: list[str] = []
        for n in range(lo, hi + 1):
            m = len(c) - n + 1
            if m <= 0:
                continue
            i = np.arange(m)
            # No end mark before the window's last character, no start mark after its first.
            ok = (ends[i + n - 1] == ends[i]) & (starts[i + n] == starts[i + 1])
            h = np.full(m, n, dtype=np.uint64)  # seeded with the length: "abc" and "abcd" differ
            for k in range(n):
                h = (h * _K2 + c[k:k + m]) & _M32
            out.append(h[ok])
            if names:
                labels += [text[j:j + n].replace("\x01", "<").replace("\x02", ">") for j in np.flatnonzero(ok)]
        return _mix(np.concatenate(out) ^ _K1), labels

    def _token_hashes(self, tokens: list[str]) -> np.ndarray:
        # Hits are answered by dict's own lookup, without a Python step per token.
        return np.fromiter(map(self._cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))

    def _hashes(self, tokens: list[str]) -> np.ndarray:
        n = len(tokens)
        bucket = min(int(math.log2(n + 1)), 12)
        extra = [f"\x00len{bucket}", f"\x00len{min(bucket + 1, 12)}h"]
        uni = self._token_hashes(tokens + extra)
        if not self.bigrams or n < 2:
            return _mix(uni)
        a, b = uni[: n - 1], uni[1:n]
        bi = ((a * _K1) ^ (b + _K2)) & _M32
        return _mix(np.concatenate((uni, bi ^ _K3)))

    def transform(self, text: str) -> SparseFeatures:
        """The features of `text`'s first `_MAX_CHARS` characters."""
        text = text[:_MAX_CHARS]  # (the text itself, not a copy, when it is shorter)
        # ASCII text as bytes tokens (see `_ASCII_BYTES`): the same tokens as `tokenize`, encoded.
        tokens = text.encode().translate(_ASCII_BYTES).split() if text.isascii() else _TOKEN.findall(text.lower())
        if len(tokens) > _FAST_TOKENS or len(text) > _FAST_CHARS:
            return self._transform_arrays(tokens)
        return self._transform_words(tokens)

    def _transform_words(self, tokens: list[str] | list[bytes]) -> SparseFeatures:
        """`transform` from per-word cached codes (same result as `_transform_arrays`)."""
        n = len(tokens)
        if not self._packable or n > _MAX_GRAM_WORDS:  # (a word's codes hold its n-grams: all count)
            return self._transform_arrays(tokens)
        # A sentinel that sorts first (see `PackedSums`), then each token's unigram with its n-grams
        # (only the order within a kind matters: sorting puts each n-gram length after the word
        # features), the two length features, the bigrams: the word features in feature order.
        parts = [SENTINEL]
        parts += map(self._words.__getitem__, tokens)
        parts.append(self._lengths[min((n + 1).bit_length() - 1, 12)])  # = int(math.log2(n + 1)) here
        if self.bigrams and n >= 2:
            parts += map(self._pairs.__getitem__, pairwise(tokens))
        raw = b"".join(parts)
        m = len(raw) >> 3
        if m >> _POSITION_BITS:  # a word of a billion characters
            return self._transform_arrays(tokens)
        # The positions make the codes unique, so the plain sort is the summing order.
        packed = np.frombuffer(raw, CODE) | (_POSITIONS[:m] if m <= len(_POSITIONS) else np.arange(m, dtype=np.int64) << 2)
        packed.sort()
        idx, values = self._sums(packed)
        norm = math.sqrt(values.dot(values))  # `values @ values` (both are numpy's DOUBLE_dot), sooner
        if norm > 0.0:
            np.divide(values, norm, out=values)
        return _sparse(idx, values, n)

    def _transform_arrays(self, tokens: list[str]) -> SparseFeatures:
        """`transform` for a long prompt: every step on whole arrays (see `_hashes`, `_char_grams`)."""
        hashes = self._hashes(tokens)
        # Sign from a bit outside the index, so colliding features cancel on average.
        signs = 1.0 - 2.0 * ((hashes >> _SIGN_BIT) & np.uint64(1)).astype(np.float64)
        if self.char_ngrams is not None:
            g, _ = self._char_grams(tokens)
            if len(g):
                hashes = np.concatenate((hashes, g))
                g_signs = 1.0 - 2.0 * ((g >> _SIGN_BIT) & np.uint64(1)).astype(np.float64)
                signs = np.concatenate((signs, self.char_weight * g_signs))
        return _finish((hashes & np.uint64(self.dim - 1)).astype(np.int64), signs, len(tokens))

    def describe(self, text: str, indices: np.ndarray) -> dict[int, str]:
        """Readable names ("integral", "sorted list", "len:2^7") for the given feature indices.

        Only for explanations: re-tokenises the text, so it costs about one `transform`.
        """
        tokens = tokenize(text[:_MAX_CHARS])
        n = len(tokens)
        bucket = min(int(math.log2(n + 1)), 12)
        names = tokens + [f"len~2^{bucket}", f"len~2^{min(bucket + 1, 12)}"]
        if self.bigrams and n >= 2:
            names += [f"{tokens[i]} {tokens[i + 1]}" for i in range(n - 1)]
        hashes = self._hashes(tokens)
        if self.char_ngrams is not None:
            g, grams = self._char_grams(tokens, names=True)
            names += ["~" + x for x in grams]
            hashes = np.concatenate((hashes, g))
        buckets = (hashes & np.uint64(self.dim - 1)).astype(np.int64)
        wanted = {int(i) for i in indices}
        out: dict[int, str] = {}
        for pos, b in enumerate(buckets.tolist()):
            if b in wanted and b not in out:
                out[b] = names[pos]
        return out
