"""`DomainClassifier.predict_proba` and `RouterModel.infer_domain` against the formulas they replace, bit for bit."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.learning import (
    DomainClassifier,
    FeatureHasher,
    RouterModel,
    SparseFeatures,
)
from gateway.learning.default_domains import MODEL_PATH


def _previous_proba(model: DomainClassifier, features: SparseFeatures) -> np.ndarray:
    z = features.values.astype(np.float32) @ model._weights[model._column[features.indices]] + model._bias
    z -= np.maximum.reduce(z)
    p = np.exp(z, out=z)
    p /= np.add.reduce(p)
    return p


def _previous_infer(model: DomainClassifier, features: SparseFeatures, soft_domains: int):
    p = _previous_proba(model, features)
    values = p.tolist()
    top = sorted(range(len(values)), key=values.__getitem__, reverse=True)[: max(1, soft_domains)]
    mass = float(np.add.reduce(p[top]))
    return model.classes[top[0]], values[top[0]], {model.classes[i]: values[i] / mass for i in top}


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same_inference(a, b) -> bool:
    return (a[0] == b[0] and _bits(a[1]) == _bits(b[1])
            and [(k, _bits(v)) for k, v in a[2].items()] == [(k, _bits(v)) for k, v in b[2].items()])


@pytest.fixture(scope="module")
def shipped() -> DomainClassifier:
    return DomainClassifier.load(MODEL_PATH)


@pytest.fixture(scope="module")
def many_classes() -> DomainClassifier:
    # Ten classes, so that soft_domains of 8 and more take numpy's summation (8 interleaved sums).
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(60)]
    texts, labels = [], []
    for c in range(10):
        for _ in range(12):
            texts.append(" ".join([f"topic{c}", *rng.choice(vocab, size=6)]))
            labels.append(f"class{c}")
    return DomainClassifier(FeatureHasher(12), epochs=3, min_df=1).fit(texts, labels)


@pytest.fixture(scope="module")
def few_classes() -> list[DomainClassifier]:
    # Two to seven classes: `infer_domain` sums and divides float32 scalars below 8.
    rng = np.random.default_rng(1)
    vocab = [f"w{i}" for i in range(60)]
    models = []
    for k in (2, 3, 5, 7):
        texts, labels = [], []
        for c in range(k):
            for _ in range(12):
                texts.append(" ".join([f"topic{c}", *rng.choice(vocab, size=6)]))
                labels.append(f"class{c}")
        models.append(DomainClassifier(FeatureHasher(12), epochs=3, min_df=1).fit(texts, labels))
    return models


def _random_features(model: DomainClassifier, seed: int, size: int, scale: float) -> SparseFeatures:
    rng = np.random.default_rng(seed)
    known = model._vocab()
    picks = np.concatenate((rng.choice(known, size=min(size, len(known)), replace=False),
                            rng.integers(0, model.hasher.dim, size=size // 4 + 1)))  # and unknown ones
    indices = np.unique(picks).astype(np.int64)
    values = rng.normal(size=len(indices)) * scale
    if rng.random() < 0.8:
        values /= np.sqrt(values @ values)  # as the hasher gives them
    return SparseFeatures(indices, values, int(size))


FEATURES = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 400), st.sampled_from([1.0, 1e-3, 30.0, 1e4]))


@settings(max_examples=300, deadline=None)
@given(spec=FEATURES, soft_domains=st.sampled_from([1, 2, 3, 6, 7, 8, 12]))
def test_inference_gives_the_previous_formulas_bits(shipped, many_classes, few_classes, spec, soft_domains):
    for model in (shipped, many_classes, *few_classes):
        features = _random_features(model, *spec)
        assert np.array_equal(model.predict_proba(features).view(np.int32),
                              _previous_proba(model, features).view(np.int32))
        router = RouterModel(model.hasher, model, None, mode="domain", soft_domains=soft_domains)
        assert _same_inference(router.infer_domain(features), _previous_infer(model, features, soft_domains))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300) | st.sampled_from(["Write one short sentence about request routers.", ""]))
def test_inference_on_prompts_gives_the_previous_formulas_bits(shipped, text):
    features = shipped.hasher.transform(text)
    router = RouterModel(shipped.hasher, shipped, None, mode="domain")
    assert np.array_equal(shipped.predict_proba(features).view(np.int32),
                          _previous_proba(shipped, features).view(np.int32))
    assert _same_inference(router.infer_domain(features), _previous_infer(shipped, features, router.soft_domains))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, NaN: as the previous formula had
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_give_the_previous_formulas_bits(shipped, bad):
    model = DomainClassifier.load(MODEL_PATH)
    model._weights = model._weights.copy()
    features = shipped.hasher.transform("Write one short sentence about request routers.")
    row = model._column[features.indices[0]]
    for column in range(len(model.classes)):
        model._weights[row] = 0.0
        model._weights[row, column] = bad
        assert np.array_equal(model.predict_proba(features).view(np.int32),
                              _previous_proba(model, features).view(np.int32))
        router = RouterModel(model.hasher, model, None, mode="domain")
        assert _same_inference(router.infer_domain(features), _previous_infer(model, features, router.soft_domains))
