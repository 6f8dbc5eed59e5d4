"""`FeatureHasher.transform`'s per-word path against the whole-array formulation it replaces."""

import math
import time
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.learning import FeatureHasher
from gateway.learning import _codes
from gateway.learning import features as F

# Short and long words, repeats, Unicode letters, CJK characters, digits: with few hash bits,
# buckets collide often, which is where the order of the per-bucket sums matters.
WORDS = ["sort", "sorted", "the", "a", "list", "größe", "über", "如何读取文件", "x", "integral", "of", "merge",
         "v2", "SQL", "select", "naïve", "é", "😀emoji", "abc" * 12, "2024", "déjà-vu"]
CONFIGS = [
    {"n_bits": 8},
    {"n_bits": 8, "bigrams": False},
    {"n_bits": 9, "char_ngrams": (3, 5), "char_weight": 0.3},
    {"n_bits": 8, "char_ngrams": (2, 8), "char_weight": 0.7},
    {"n_bits": 18, "char_ngrams": (3, 5), "char_weight": 0.3},  # the shipped domain model's
]


def _same(a: F.SparseFeatures, b: F.SparseFeatures) -> bool:
    return (a.n_tokens == b.n_tokens and a.indices.dtype == b.indices.dtype and a.values.dtype == b.values.dtype
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.values, b.values))


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@settings(max_examples=150, deadline=None)
@given(words=st.lists(st.sampled_from(WORDS) | st.text(max_size=6), max_size=120))
def test_per_word_path_is_bit_identical_to_the_array_path(config, words):
    hasher = FeatureHasher(**config)
    tokens = F.tokenize(" ".join(words))
    reference = hasher._transform_arrays(tokens)
    assert _same(hasher._transform_words(tokens), reference)
    assert _same(hasher._transform_words(tokens), reference)  # again, from the caches


def test_long_prompts_take_the_array_path_and_short_ones_the_cached_one():
    hasher = FeatureHasher(12, char_ngrams=(3, 5))
    short = " ".join(WORDS[:10])
    long = " ".join(WORDS * 8)
    assert _same(hasher.transform(short), hasher._transform_arrays(F.tokenize(short)))
    assert hasher._words  # the short prompt's words were cached
    cached = dict(hasher._words)
    assert _same(hasher.transform(long), hasher._transform_arrays(F.tokenize(long)))
    assert hasher._words == cached  # the long one went through the arrays


def test_the_caches_are_bounded(monkeypatch):
    monkeypatch.setattr(F, "_WORD_CACHE", 5)
    hasher = FeatureHasher(12, char_ngrams=(3, 5), cache_size=7)
    text = " ".join(f"word{i:03d}" for i in range(40))
    for _ in range(2):
        assert _same(hasher.transform(text), hasher._transform_arrays(F.tokenize(text)))
    assert len(hasher._words) <= 5 and len(hasher._pairs) <= 7 and len(hasher._cache) <= 7


@settings(max_examples=500, deadline=None)
@given(text=st.text() | st.text(alphabet=st.characters(max_codepoint=127)) | st.lists(st.sampled_from(WORDS)).map(" ".join))
def test_the_ascii_tokenizer_finds_what_the_regex_finds(text):
    # ASCII text takes translate + split; everything else the regex. Both must give the same tokens.
    assert F.tokenize(text) == F._TOKEN.findall(text.lower())


def test_ascii_punctuation_and_digits_split_like_the_regex():
    text = "Sort_the LIST: [3,1,2]; v2.0 -- don't\tstop\n\x01\x7fend_"
    assert F.tokenize(text) == F._TOKEN.findall(text.lower()) == ["sort", "the", "list", "3", "1", "2", "v2", "0",
                                                                   "don", "t", "stop", "end"]


# -- the packed per-word path against the array path, bit for bit ---------------------------------------

SHIPPED = {"char_ngrams": (3, 5), "char_weight": 0.3}  # the shipped domain model's hasher (2**18 buckets)
BIT_CONFIGS = [
    SHIPPED,
    {"n_bits": 8, **SHIPPED},  # 256 buckets: most hold several features, of several kinds
    {"n_bits": 8},
    {"n_bits": 8, "bigrams": False, "char_ngrams": (2, 8), "char_weight": 0.7},
    {"n_bits": 8, "char_ngrams": (4, 6), "char_weight": 1 / 3},
    {"n_bits": 11, "char_ngrams": (3, 3), "char_weight": 1.0},
]
BENCH_PROMPT = "Write one short sentence about request routers."


def _identical(a: F.SparseFeatures, b: F.SparseFeatures) -> bool:
    return (a.n_tokens == b.n_tokens and a.indices.dtype == b.indices.dtype == np.int64
            and a.values.dtype == b.values.dtype == np.float64 and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.values.view(np.int64), b.values.view(np.int64)))


_repeated = st.tuples(st.sampled_from(["sort", "the", "aaaa", "größe", "x", *WORDS]), st.integers(8, 40),
                      st.lists(st.sampled_from(WORDS), max_size=6))
# Tokens around and past `_codes.MAX_WORD` (base64, hashes): only their first characters' n-grams count.
_LONG_WORDS = (st.integers(60, 70) | st.integers(71, 400)).flatmap(
    lambda n: st.text(alphabet="abcxyz09éßü", min_size=n, max_size=n))
PROMPTS = (
    st.lists(st.sampled_from(WORDS) | st.text(max_size=8), max_size=60).map(" ".join)
    | st.lists(st.sampled_from(WORDS) | _LONG_WORDS, max_size=12).map(" ".join)
    | st.text(max_size=200)  # any Unicode: CJK, combining marks, emoji, controls
    | _repeated.map(lambda r: " ".join([r[0]] * r[1] + r[2]))  # one bucket gets 8+ entries
    | st.sampled_from(["", " ", "!?", "a", "sorting", "如", "😀", BENCH_PROMPT])
)


def _reference(config: dict, text: str) -> tuple[FeatureHasher, list[str], F.SparseFeatures]:
    """A hasher of `config`, the text's tokens, and the whole-array path's features for them."""
    hasher = FeatureHasher(**config)
    tokens = F.tokenize(text)
    return hasher, tokens, hasher._transform_arrays(tokens)


@pytest.mark.parametrize("config", BIT_CONFIGS, ids=str)
@settings(max_examples=200, deadline=None)
@given(text=PROMPTS)
def test_packed_path_gives_the_array_paths_bits(config, text):
    hasher, tokens, reference = _reference(config, text)
    assert _identical(hasher._transform_words(tokens), reference)  # cold caches
    assert _identical(hasher._transform_words(tokens), reference)  # warm
    assert _identical(hasher.transform(text), reference)


def _bucket_counts(hasher: FeatureHasher, tokens: list[str]) -> tuple[np.ndarray, set[int], set[int]]:
    words = hasher._hashes(tokens) & np.uint64(hasher.dim - 1)
    grams = hasher._char_grams(tokens)[0] & np.uint64(hasher.dim - 1)
    counts = np.bincount(np.concatenate((words, grams)).astype(np.int64), minlength=hasher.dim)
    return counts, set(words.tolist()), set(grams.tolist())


@pytest.mark.parametrize(("text", "mixed"), [("sort " * 20 + "the sorted list", True), ("aaaa " * 9, False),
                                             ("größe über " * 12, True), ("abcabcabcabc " * 30, False),
                                             (BENCH_PROMPT * 4, True), ("sort sorted sorting resort " * 4, True)])
def test_crowded_buckets_sum_in_the_array_paths_order(text, mixed):
    # Buckets of 9+ features (numpy's reduceat sums those with 8 interleaved accumulators), some
    # mixing word features with n-grams of several lengths: where summation order shows in the last bit.
    hasher = FeatureHasher(8, **SHIPPED)
    tokens = F.tokenize(text)
    counts, words, grams = _bucket_counts(hasher, tokens)
    assert counts.max() >= 9 and bool(words & grams) == mixed
    assert _identical(hasher._transform_words(tokens), hasher._transform_arrays(tokens))


def test_the_bench_prompt_and_a_word_of_thousands_of_n_grams():
    hasher = FeatureHasher(**SHIPPED)
    past_positions = " ".join(chr(97 + i % 26) * 60 + str(i) for i in range(40))  # 7,000+ codes
    for text in (BENCH_PROMPT, "ab" * 1500 + " sorted lists", "x" * 5000, past_positions):
        tokens = F.tokenize(text)
        assert _identical(hasher._transform_words(tokens), hasher._transform_arrays(tokens))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, as the array path has always had
@pytest.mark.parametrize("weight", [0.0, -0.3, 1e-300, 5e-324, 1e300, float("inf"), float("nan")])
def test_unusual_char_weights_give_the_array_paths_bits(weight):
    hasher = FeatureHasher(8, char_ngrams=(3, 5), char_weight=weight)
    for text in ("", "sort", BENCH_PROMPT, "sort sorted sorting " * 5, "aaaa " * 12):
        tokens = F.tokenize(text)
        assert _identical(hasher._transform_words(tokens), hasher._transform_arrays(tokens))


def test_too_many_features_for_the_position_bits_take_the_array_path(monkeypatch):
    monkeypatch.setattr(F, "_POSITION_BITS", 6)  # 64 features at most
    calls = []
    arrays = F.FeatureHasher._transform_arrays
    monkeypatch.setattr(F.FeatureHasher, "_transform_arrays", lambda self, t: calls.append(len(t)) or arrays(self, t))
    hasher = FeatureHasher(**SHIPPED)
    short, long = F.tokenize("sort it"), F.tokenize(BENCH_PROMPT * 2)
    assert _identical(hasher._transform_words(short), arrays(hasher, short)) and not calls
    assert _identical(hasher._transform_words(long), arrays(hasher, long)) and calls == [len(long)]


@pytest.mark.parametrize("weight", [0.3, 0.7, 1 / 3, 1.0, 1e-3, 123.456, -0.3])
def test_a_lone_features_value_is_what_the_array_formula_gives_anywhere_in_an_array(weight):
    # A bucket with one feature takes sign(x) * ln(1 + |x|) from a 4-entry table; `_finish` computes it
    # with numpy's SIMD log1p over the whole array: the table must hold those bits at any position.
    hasher = FeatureHasher(char_ngrams=(3, 5), char_weight=weight)
    rng = np.random.default_rng(0)
    for value, logged in zip(hasher._sums.signed.tolist(), hasher._sums.logged, strict=True):
        for n in (1, 2, 7, 8, 9, 16, 17, 33, 100):
            for i in sorted({0, n // 2, n - 1, int(rng.integers(n))}):
                signed = rng.choice([1.0, -1.0, 2.0, -3.0, 1.3, 0.6, weight, -weight], size=n)
                signed[i] = value
                values = np.sign(signed) * np.log1p(np.abs(signed))
                assert values[i:i + 1].view(np.int64) == np.array([logged]).view(np.int64)


def test_copysign_is_sign_times_value_for_the_logged_counts():
    rng = np.random.default_rng(1)
    signed = np.concatenate((rng.normal(size=5000) * 10.0 ** rng.integers(-320, 300, size=5000),
                             [0.0, 5e-324, -5e-324, 1.0, -1.0, 0.3, -0.3, 1e308, -1e308]))
    logged = np.log1p(np.abs(signed))
    via_copysign = np.copysign(logged.copy(), signed)
    assert np.array_equal(via_copysign.view(np.int64), (np.sign(signed) * logged).view(np.int64))
    # Only -0.0 would differ (-0.0 against 0.0), and no sum of nonzero counts is -0.0 (x + -x is +0.0);
    # were it one, both are zeros, which are dropped.
    assert np.copysign(0.0, -0.0) == np.sign(-0.0) * 0.0 == 0.0


# -- ASCII prompts as bytes tokens, bucket sums in Python ---------------------------------------------

ASCII_PROMPTS = (st.text(alphabet=st.characters(max_codepoint=127), max_size=300)
                 | st.lists(st.sampled_from(["Sort", "the", "LIST", "v2.0", "aaaa", "sorted", "x", "don't", "ab" * 9]),
                            max_size=140).map(" ".join)
                 | st.lists(st.sampled_from(["Sort", "the", "x"]) | st.text(alphabet="aBq09", min_size=60, max_size=300),
                            max_size=12).map(" ".join))


@settings(max_examples=300, deadline=None)
@given(text=ASCII_PROMPTS)
def test_ascii_text_becomes_the_tokens_of_tokenize_as_bytes(text):
    assert text.encode().translate(F._ASCII_BYTES).split() == [t.encode() for t in F.tokenize(text)]


@pytest.mark.parametrize("config", BIT_CONFIGS, ids=str)
@settings(max_examples=150, deadline=None)
@given(text=ASCII_PROMPTS)
def test_bytes_tokens_give_the_bits_of_str_tokens_on_both_paths(config, text):
    # `transform` reads ASCII text as bytes tokens, short prompts and long ones (> _FAST_TOKENS).
    hasher, tokens, reference = _reference(config, text)
    as_bytes = [t.encode() for t in tokens]
    assert _identical(hasher._transform_arrays(as_bytes), reference)
    assert _identical(hasher._transform_words(as_bytes), reference)
    assert _identical(hasher._transform_words(as_bytes), reference)  # warm
    assert _identical(hasher.transform(text), reference)


@pytest.mark.parametrize("weight", [0.3, 0.7, 1 / 3, 1.0, 1e-3, 123.456, -0.3])
def test_a_summed_buckets_value_is_what_the_array_formula_gives_anywhere_in_an_array(weight):
    # A bucket of several features takes ln(1 + |sum|) from numpy's log1p of a one-element array
    # (`PackedSums`); `_finish` computes it over the whole array, SIMD lanes and all.
    sums = F.FeatureHasher(char_ngrams=(3, 5), char_weight=weight)._sums
    rng = np.random.default_rng(2)
    steps = [1.0, -1.0, weight, -weight]
    for _ in range(200):
        total = float(steps[rng.integers(4)])
        for _ in range(int(rng.integers(1, 8))):
            total += steps[rng.integers(4)]
        if not 0.0 < abs(total) < float("inf"):
            continue
        mine = math.copysign(sums._log1p[abs(total)], total)
        n = int(rng.choice([1, 2, 7, 8, 9, 16, 17, 33, 100]))
        i = int(rng.integers(n))
        signed = rng.choice([1.0, -1.0, 2.0, -3.0, 1.3, 0.6, weight, -weight], size=n)
        signed[i] = total
        values = np.sign(signed) * np.log1p(np.abs(signed))
        assert values[i:i + 1].view(np.int64) == np.array([mine]).view(np.int64)


def test_the_bench_prompt_has_summed_buckets_and_keeps_its_bits():
    # The prompt every end-to-end benchmark request carries: two n-grams share buckets with others.
    hasher = FeatureHasher(**SHIPPED)
    for text in (BENCH_PROMPT, BENCH_PROMPT.upper(), BENCH_PROMPT + " " + BENCH_PROMPT):
        tokens = F.tokenize(text)
        features = hasher.transform(text)
        assert len(features) < len(hasher._hashes(tokens)) + len(hasher._char_grams(tokens)[0])
        assert _identical(features, hasher._transform_arrays(tokens))


def test_the_corpus_prompts_keep_the_array_paths_bits():
    from gateway.learning.default_domains import load_corpus

    hasher = FeatureHasher(**SHIPPED)
    for row in load_corpus()[::3]:  # (a third of it: every source, domain and language)
        assert _identical(hasher.transform(row.text), hasher._transform_arrays(F.tokenize(row.text))), row.id


@pytest.mark.parametrize("runs", [0, 1, 1000])
@settings(max_examples=100, deadline=None)
@given(text=PROMPTS | ASCII_PROMPTS)
def test_buckets_summed_in_python_or_by_numpy_give_the_same_bits(runs, text):
    # `PackedSums` sums a few runs in Python and hands many to numpy's reduceat: both, at any count.
    hasher = FeatureHasher(8, **SHIPPED)
    tokens = F.tokenize(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_codes, "_PYTHON_RUNS", runs)
        assert _identical(hasher._transform_words(tokens), hasher._transform_arrays(tokens))


# -- bounded work and memory per prompt, whatever its shape ------------------------------------------

@pytest.mark.parametrize("config", BIT_CONFIGS, ids=str)
@pytest.mark.parametrize("size", [F.MAX_WORD - 1, F.MAX_WORD, F.MAX_WORD + 1, 1000, 100_000])
def test_a_long_tokens_n_grams_are_those_of_its_first_characters(config, size):
    hasher = FeatureHasher(**config)
    token = "".join(chr(97 + (i * 7) % 26) for i in range(size))
    head = token[:F.MAX_WORD]
    if hasher.char_ngrams is not None:
        assert hasher._char_grams([token], names=True)[1] == hasher._char_grams([head], names=True)[1]
    for text in (token, f"sort {token} the {token}x list", f"{token} {token.upper()}"):
        tokens = F.tokenize(text[:F._MAX_CHARS])
        for as_bytes in (False, True):
            words = [t.encode() for t in tokens] if as_bytes else tokens
            reference = hasher._transform_arrays(words)
            assert _identical(hasher._transform_words(words), reference)
            assert _identical(hasher._transform_words(words), reference)  # again: nothing cached differs
        assert _identical(hasher.transform(text), hasher._transform_arrays(tokens))


def test_a_long_tokens_unigram_is_the_whole_tokens():
    # Only its n-grams are cut: tokens that share their first characters stay distinct unigrams.
    hasher = FeatureHasher(**SHIPPED)
    a, b = "q" * 100 + "a", "q" * 100 + "b"
    assert not np.array_equal(hasher.transform(a).indices, hasher.transform(b).indices)
    plain = FeatureHasher()  # no n-grams: a long token's features are what they always were
    assert _identical(plain.transform(a), plain._transform_arrays(F.tokenize(a)))
    assert plain._hashes([a])[0] == F._mix(np.array([zlib.crc32(a.encode())], dtype=np.uint64))[0]


def test_no_cache_keeps_a_long_token(monkeypatch):
    monkeypatch.setattr(_codes, "gram_codes", _recording(seen := [], _codes.gram_codes))
    hasher = FeatureHasher(**SHIPPED)
    for long in ("z" * 1500, "y" * 100_000):  # in a prompt for the per-word path, and for the array path
        text = f"sort {long} the list"
        first = hasher.transform(text)
        assert _identical(hasher.transform(text), first)
        assert _identical(first, hasher._transform_arrays(F.tokenize(text[:F._MAX_CHARS])))
    assert hasher._words and hasher._pairs and hasher._cache  # the short words were cached
    assert max(map(len, hasher._words)) <= F.MAX_WORD and max(map(len, hasher._cache)) <= F.MAX_WORD
    assert all(len(a) <= F.MAX_WORD >= len(b) for a, b in hasher._pairs)
    assert seen and max(seen) <= F.MAX_WORD  # n-grams of at most MAX_WORD characters, ever


def _recording(seen: list, gram_codes):
    def record(lo, hi, mask, word):
        seen.append(len(word))
        return gram_codes(lo, hi, mask, word)
    return record


@pytest.mark.parametrize("tail", ["", " and more", " different words entirely " * 5000])
def test_only_the_texts_first_characters_are_read(tail):
    hasher = FeatureHasher(**SHIPPED)
    head = (BENCH_PROMPT + " ") * (F._MAX_CHARS // len(BENCH_PROMPT) + 1)
    cut = head[:F._MAX_CHARS]
    features = hasher.transform(head + tail)
    assert _identical(features, hasher._transform_arrays(F.tokenize(cut)))
    assert features.n_tokens == len(F.tokenize(cut))
    names = hasher.describe(head + tail, features.indices)
    assert set(names) == set(features.indices.tolist()) and "different" not in " ".join(names.values())


def test_a_short_prompt_of_long_tokens_takes_the_array_path(monkeypatch):
    # The per-word path hashes an unseen word's n-grams in Python: it takes texts of few characters.
    calls = []
    words = F.FeatureHasher._transform_words
    monkeypatch.setattr(F.FeatureHasher, "_transform_words", lambda self, t: calls.append(len(t)) or words(self, t))
    hasher = FeatureHasher(**SHIPPED)
    short, long = BENCH_PROMPT, " ".join(f"{i:02d}" + "q" * 60 for i in range(40))
    assert len(F.tokenize(long)) <= F._FAST_TOKENS and len(long) > F._FAST_CHARS
    assert _identical(hasher.transform(short), hasher._transform_arrays(F.tokenize(short))) and calls == [7]
    assert _identical(hasher.transform(long), hasher._transform_arrays(F.tokenize(long))) and calls == [7]
    assert not any(w.startswith(b"00") for w in hasher._words)


@pytest.mark.parametrize(("words", "letters"), [(90, 90_000), (100, 20_000), (1, 2_000_000)])
def test_a_prompt_of_megabytes_costs_about_what_its_first_characters_cost(words, letters):
    # The shapes a probe sent (an 8.1 MB prompt of 90 words took 39 s of event loop and ~200 MB):
    # bounded by `_MAX_CHARS` and `MAX_WORD`, they cost about a millisecond and no lasting memory.
    hasher = FeatureHasher(**SHIPPED)
    text = " ".join(f"{i:03d}" + "q" * letters for i in range(words))
    start = time.perf_counter()
    hasher.transform(text)
    assert time.perf_counter() - start < 0.5  # (~1 ms; generous for a loaded machine)
    cached = sum(map(len, hasher._words.values())) + sum(map(len, hasher._words)) + sum(map(len, hasher._cache))
    assert cached < 10_000


def test_the_caps_leave_the_shipped_corpus_as_it_was():
    # The default domain model was trained on these prompts: neither cap changes one of their features.
    from gateway.learning.default_domains import load_corpus

    rows = load_corpus()
    assert max(len(r.text) for r in rows) < F._FAST_CHARS < F._MAX_CHARS
    assert max(len(t) for r in rows for t in F.tokenize(r.text)) <= F.MAX_WORD
