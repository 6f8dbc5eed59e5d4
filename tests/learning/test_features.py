"""`FeatureHasher.transform`'s per-word path against the whole-array formulation it replaces."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.learning import FeatureHasher
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
    assert hasher._grams  # the short prompt's words were cached
    cached = dict(hasher._grams)
    assert _same(hasher.transform(long), hasher._transform_arrays(F.tokenize(long)))
    assert hasher._grams == cached  # the long one went through the arrays


def test_the_caches_are_bounded(monkeypatch):
    monkeypatch.setattr(F, "_GRAM_CACHE", 5)
    hasher = FeatureHasher(12, char_ngrams=(3, 5), cache_size=7)
    text = " ".join(f"word{i:03d}" for i in range(40))
    for _ in range(2):
        assert _same(hasher.transform(text), hasher._transform_arrays(F.tokenize(text)))
    assert len(hasher._grams) <= 5 and len(hasher._tokens) <= 7 and len(hasher._pairs) <= 7 and len(hasher._cache) <= 7


@settings(max_examples=500, deadline=None)
@given(text=st.text() | st.text(alphabet=st.characters(max_codepoint=127)) | st.lists(st.sampled_from(WORDS)).map(" ".join))
def test_the_ascii_tokenizer_finds_what_the_regex_finds(text):
    # ASCII text takes translate + split; everything else the regex. Both must give the same tokens.
    assert F.tokenize(text) == F._TOKEN.findall(text.lower())


def test_ascii_punctuation_and_digits_split_like_the_regex():
    text = "Sort_the LIST: [3,1,2]; v2.0 -- don't\tstop\n\x01\x7fend_"
    assert F.tokenize(text) == F._TOKEN.findall(text.lower()) == ["sort", "the", "list", "3", "1", "2", "v2", "0",
                                                                   "don", "t", "stop", "end"]
