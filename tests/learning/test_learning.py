import math

import numpy as np
import pytest

from gateway.learning import (
    DomainClassifier,
    FeatureHasher,
    FeedbackProcessor,
    PromptQualityModel,
    RouterModel,
    messages_text,
)
from gateway.stats import MemoryStatsStore, StatsService

TEXTS = {
    "math": ["solve the integral of x", "derivative of a matrix equation", "prime number sum proof",
             "solve this equation for x", "integral and derivative rules", "sum of the prime numbers"],
    "law": ["the court ruled on the contract", "tort liability of the defendant", "statute and the judge",
            "the plaintiff sued for breach of contract", "criminal law and the jury", "appeal to the court"],
}


def test_features_are_deterministic_normalised_and_sparse():
    h = FeatureHasher(16)
    a, b = h.transform("Merge two sorted lists"), FeatureHasher(16).transform("Merge two sorted lists")
    assert np.array_equal(a.indices, b.indices) and np.allclose(a.values, b.values)
    assert np.all(np.diff(a.indices) > 0) and a.indices.max() < 2**16
    assert math.isclose(float(a.values @ a.values), 1.0, rel_tol=1e-9)
    assert a.n_tokens == 4
    names = h.describe("Merge two sorted lists", a.indices)
    assert "sorted" in names.values() and "two sorted" in names.values()


def test_messages_text_reads_strings_and_text_parts():
    msgs = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]}]
    assert messages_text(msgs) == "be brief\nhi"


def test_domain_classifier_toy_accuracy_and_roundtrip(tmp_path):
    texts = [t for d in TEXTS for t in TEXTS[d]]
    labels = [d for d in TEXTS for _ in TEXTS[d]]
    clf = DomainClassifier(FeatureHasher(16), min_df=1, epochs=10).fit(texts, labels)
    assert clf.predict_text("solve the derivative")[0] == "math"
    label, conf = clf.predict_text("the court and the jury")
    assert label == "law" and 0.5 < conf <= 1.0
    clf.save(tmp_path / "d.npz")
    again = DomainClassifier.load(tmp_path / "d.npz")
    x = clf.hasher.transform("breach of contract")
    assert np.allclose(clf.predict_proba(x), again.predict_proba(x))


def test_domain_classifier_needs_two_classes():
    with pytest.raises(ValueError, match="at least two domains"):
        DomainClassifier().fit(["a", "b"], ["x", "x"])


def test_quality_updates_move_predictions_the_right_way(tmp_path):
    h = FeatureHasher(16)
    q = PromptQualityModel(n_bits=16)
    hard, easy = h.transform("hard proof integral"), h.transform("simple sum")
    before = q.predict(hard, "math", ["m"])["m"]
    for _ in range(30):
        q.update("m", hard, "math", 0.0)
        q.update("m", easy, "math", 1.0)
    p = q.predict(hard, "math", ["m"])["m"], q.predict(easy, "math", ["m"])["m"]
    assert p[0] < before and p[1] > p[0] + 0.2  # the prompt, not only the domain, moved it
    assert q.prior("m", "math")[1] == 60
    assert "'hard" in q.explain(hard, "math", "m", h.describe("hard proof integral", hard.indices)) or \
        "'proof" in q.explain(hard, "math", "m", h.describe("hard proof integral", hard.indices))
    q.save(tmp_path / "q.npz")
    again = PromptQualityModel.load(tmp_path / "q.npz")
    assert again.predict(hard, "math", ["m"]) == pytest.approx(q.predict(hard, "math", ["m"]))


def test_quality_domain_mode_is_the_shrunk_beta_mean():
    q = PromptQualityModel(prior_strength=10.0)
    for s in (1.0, 1.0, 0.0, 0.5):
        q.update("m", None, "math", s)
    overall = (2.5 + 1) / (4 + 2)
    assert q.prior("m", "math")[0] == pytest.approx((2.5 + 10 * overall) / (4 + 10))
    assert q.predict(None, "math", ["m", "new"], use_features=False)["new"] == pytest.approx(0.5)


async def test_feedback_updates_stats_and_quality_model():
    svc = StatsService(MemoryStatsStore())
    q = PromptQualityModel(n_bits=16)
    fp = FeedbackProcessor(svc, q, max_remembered=2)
    x = FeatureHasher(16).transform("hello")
    for rid in ("a", "b", "c"):
        fp.remember(rid, "m", "chat", x)
    assert len(fp) == 2
    assert fp.apply("a", 1.0) is False  # evicted
    assert fp.apply("b", 1.0) is True
    assert fp.apply("b", 1.0) is False  # learned from once
    with pytest.raises(ValueError):
        fp.apply("c", 1.5)
    await svc.refresh()
    live = svc.live["m"]
    assert live.quality == 1.0 and live.quality_samples == 1 and live.domain_quality["chat"] == 1.0
    assert q.prior("m", "chat")[1] == 1


async def test_feedback_on_a_domain_nothing_knows_teaches_overall_quality_only():
    # X-Task-Domain takes any well-formed name: one posterior per made-up name grew the stats, and
    # every refresh's work, without bound (60k names: 38 % of a core while idle).
    known = {"code"}
    svc = StatsService(MemoryStatsStore())
    q = PromptQualityModel(n_bits=16)
    fp = FeedbackProcessor(svc, q, known_domains=lambda: known)
    for i, domain in enumerate(["made-up-0", "made-up-1", "code", "poetry"]):
        fp.remember(f"r{i}", "m", domain, None)
        assert fp.apply(f"r{i}", 1.0) is True
    known.add("poetry")  # a policy reload names it: the next score of it gets its posterior
    fp.remember("r4", "m", "poetry", None)
    assert fp.apply("r4", 0.0) is True
    await svc.refresh()
    live = svc.live["m"]
    assert live.quality_samples == 5  # every score still teaches the overall posterior
    assert dict(live.domain_quality_samples) == {"code": 1.0, "poetry": 1.0}
    assert set(q._counts["m"]) == {None, "code", "poetry"}


def test_offline_feedback_keeps_every_domain():
    # `gateway eval` trains on its data set's own domains: no gateway decides which are known.
    svc = StatsService(MemoryStatsStore())
    FeedbackProcessor(svc, None).observe("m", "anything", None, 1.0)
    assert "anything" in svc.store.quality_now("m")


@pytest.mark.parametrize(("model", "kept"), [
    (None, False),  # no learner reads them
    (PromptQualityModel(n_bits=16, use_features=False), False),
    (PromptQualityModel(n_bits=16), True),
])
def test_served_requests_keep_their_features_only_for_a_learner_that_reads_them(model, kept):
    # ~2 KB per short prompt, 50,000 requests remembered: ~100 MiB of RSS for nothing otherwise.
    fp = FeedbackProcessor(StatsService(MemoryStatsStore()), model)
    fp.remember("r", "m", "chat", FeatureHasher(16).transform("hello there"))
    assert (fp._recent["r"].features is not None) is kept


def test_router_model_estimate_infers_domain_and_explains(tmp_path):
    h = FeatureHasher(16)
    texts = [t for d in TEXTS for t in TEXTS[d]]
    labels = [d for d in TEXTS for _ in TEXTS[d]]
    clf = DomainClassifier(h, min_df=1, epochs=10).fit(texts, labels)
    q = PromptQualityModel(n_bits=16)
    for t, d in zip(texts, labels, strict=True):
        q.update("cheap", h.transform(t), d, 1.0 if d == "law" else 0.0)
        q.update("dear", h.transform(t), d, 1.0)
    router = RouterModel(h, clf, q)
    est = router.estimate("solve the integral equation", ["cheap", "dear"])
    assert est.domain == "math" and est.domain_source == "inferred" and est.domain_confidence > 0.5
    assert est.quality_estimates["dear"] > est.quality_estimates["cheap"]
    assert est.explanations["cheap"].startswith("p=")
    given = router.estimate("solve the integral equation", ["cheap"], domain="law", domain_source="policy")
    assert given.domain == "law" and given.domain_source == "policy" and given.domain_confidence is None
    router.save(tmp_path / "rm")
    again = RouterModel.load(tmp_path / "rm")
    assert again.estimate("solve the integral equation", ["cheap", "dear"]).quality_estimates == \
        pytest.approx(dict(est.quality_estimates))


def test_saving_over_a_router_model_leaves_nothing_of_the_old_one(tmp_path, monkeypatch):
    h = FeatureHasher(12)
    texts = [t for d in TEXTS for t in TEXTS[d]]
    labels = [d for d in TEXTS for _ in TEXTS[d]]
    clf = DomainClassifier(h, min_df=1, epochs=5).fit(texts, labels)
    quality = PromptQualityModel(n_bits=12)
    quality.update("cheap", h.transform(texts[0]), labels[0], 1.0)
    RouterModel(h, clf, quality).save(tmp_path / "rm")
    (tmp_path / "rm" / "README").write_text("the operator's own file")
    # A model without a quality model saved over it: the old quality.npz must not come back with it.
    RouterModel(h, clf, None, mode="domain").save(tmp_path / "rm")
    assert RouterModel.load(tmp_path / "rm").quality is None
    assert (tmp_path / "rm" / "README").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rm"]  # no staging directory left

    # A save that fails part-way leaves the directory as it was.
    before = {p.name: p.read_bytes() for p in (tmp_path / "rm").iterdir()}

    def full_disk(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PromptQualityModel, "save", full_disk)
    with pytest.raises(OSError):
        RouterModel(h, clf, quality).save(tmp_path / "rm")
    assert {p.name: p.read_bytes() for p in (tmp_path / "rm").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["rm"]
