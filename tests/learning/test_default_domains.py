"""The shipped default domain model: what it knows, on data it never saw, and how policies extend it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gateway.learning import DomainClassifier, FeatureHasher, RouterModel
from gateway.learning.default_domains import (
    DEFAULT_DOMAINS,
    MODEL_PATH,
    CorpusRow,
    corpus_sha256,
    evaluate,
    load_corpus,
)
from gateway.learning.default_domains import load_default as load_default_domains


@pytest.fixture(scope="module")
def corpus() -> list[CorpusRow]:
    return load_corpus()


@pytest.fixture(scope="module")
def model() -> DomainClassifier:
    m = load_default_domains()
    assert m is not None, "gateway/learning/data/default-domains.npz is missing"
    return m


def test_the_shipped_model_was_trained_on_the_shipped_corpus(model):
    meta = DomainClassifier.read_meta(MODEL_PATH)
    assert meta["corpus_sha256"] == corpus_sha256(), "retrain: python -m gateway.learning.default_domains train"
    assert set(model.classes) == set(DEFAULT_DOMAINS)
    assert len(model.replay) == 40 * len(DEFAULT_DOMAINS)


def test_corpus_is_large_varied_and_its_held_out_part_is_new(corpus):
    train = [r for r in corpus if r.split == "train"]
    test = [r for r in corpus if r.split == "test"]
    for domain in DEFAULT_DOMAINS:
        assert sum(r.domain == domain for r in train) >= 300
        assert sum(r.domain == domain for r in test) >= 80
    assert len({r.lang for r in corpus}) >= 6
    # Held-out template families never occur in training, and no held-out prompt equals a training
    # prompt even with its numbers masked.
    train_families = {r.family for r in train}
    assert not {r.family for r in test if r.source == "template"} & train_families

    def masked(text: str) -> str:
        return re.sub(r"\d+", "0", " ".join(text.lower().split()))

    seen = {masked(r.text) for r in train}
    assert not [r.text for r in test if masked(r.text) in seen]


def test_held_out_accuracy_and_confidently_wrong_rate(model, corpus):
    held_out = evaluate(model, [r for r in corpus if r.split == "test"], min_confidence=0.5)
    assert held_out.n > 900
    assert held_out.right_rate >= 0.80, held_out.markdown()
    assert held_out.confidently_wrong_rate <= 0.05, held_out.markdown()
    everyday = evaluate(model, [r for r in corpus if r.source == "everyday"])
    assert everyday.right_rate >= 0.85


@pytest.mark.parametrize(
    ("prompt", "domain"),
    [
        ("How do I reverse a linked list in C?", "code"),
        ("Is 221 a prime number?", "math"),
        ("Give me a catchy slogan for a coffee shop", "writing"),
        ("¿Cómo invierto una lista enlazada en C?", "code"),
        ("Extrahiere alle Telefonnummern aus diesem Text: Anna 0171 555 0100, Ben 0172 555 0199", "extraction"),
    ],
)
def test_everyday_prompts_from_the_issue(model, prompt, domain):
    label, p = model.predict_text(prompt)
    assert (label, p >= 0.5) == (domain, True), (label, p)


LEGAL_TRAIN = [
    "Is a verbal agreement legally binding?", "What does force majeure mean in a contract?",
    "Can my landlord keep my deposit for normal wear and tear?", "How do I trademark a business name?",
    "What's the difference between a will and a trust?", "Can my employer read my work emails legally?",
    "What are my rights if I'm fired without notice?", "Do I need a lawyer to file for divorce?",
    "Is it legal to record a phone call without telling the other person?",
    "What is the statute of limitations for fraud?", "How does copyright apply to photos I find online?",
    "What happens if I break a non-compete clause?", "Can I sue my neighbour for a tree that fell on my car?",
    "What is power of attorney and how do I set it up?", "Explain the difference between a misdemeanour and a felony.",
    "What does GDPR require from a small online shop?", "Is a handwritten will valid?",
    "How do I contest a parking ticket in court?", "What are the legal steps to register a limited company?",
    "Who owns the code I write in my spare time under my employment contract?",
    "What does indemnification mean in a service agreement?", "Can a tenant be evicted in winter?",
    "What is the legal drinking age in Germany?", "How long does a patent last?", "Is jaywalking actually illegal?",
    "What is a cease and desist letter?", "Do I have to pay for damage caused by my dog?",
    "Can a contract be signed electronically?", "What is joint custody and how do courts decide it?",
    "Is it legal to sell homemade food without a licence?",
]
LEGAL_HELD_OUT = [
    "Can my boss make me work overtime without pay?", "What is the legal difference between renting and leasing?",
    "Is an email enough to terminate a lease?", "What rights do I have when buying a faulty used car?",
    "Can a company use my photo in an ad without permission?", "How do I write a legally valid contract for freelance work?",
    "What is considered defamation?", "Do I need a permit to build a fence?",
    "What are the consequences of breaching a contract?", "Is it legal to share Netflix passwords?",
    "How do I get a restraining order?", "What does 'without prejudice' mean on a letter?",
    "Can my landlord raise the rent in the middle of the lease?", "What are my legal obligations as a company director?",
    "Who is liable if a customer slips in my shop?", "Is a prenup enforceable?",
    "Can I be sued for a bad online review?", "What is intellectual property law?",
    "How does small claims court work?", "Is it legal to fly a drone over my neighbour's garden?",
]


def test_a_new_domain_from_thirty_examples(model, corpus):
    extended = model.extended(LEGAL_TRAIN, ["legal"] * len(LEGAL_TRAIN))
    assert extended.classes == tuple(sorted({*DEFAULT_DOMAINS, "legal"}))
    assert model.classes == tuple(sorted(DEFAULT_DOMAINS))  # the shipped model is left alone
    legal = [CorpusRow(f"legal-{i}", "legal", "test", "handwritten", "legal", "en", t) for i, t in enumerate(LEGAL_HELD_OUT)]
    new = evaluate(extended, legal)
    assert new.right_rate >= 0.5, new.markdown()  # prompts it never saw, like the examples
    examples = [CorpusRow(f"ex-{i}", "legal", "train", "", "", "en", t) for i, t in enumerate(LEGAL_TRAIN)]
    assert evaluate(extended, examples).right_rate >= 0.9
    # The six built-in domains keep working on their held-out prompts.
    held_out = evaluate(extended, [r for r in corpus if r.split == "test"])
    assert held_out.right_rate >= 0.80, held_out.markdown()
    assert held_out.confidently_wrong_rate <= 0.08, held_out.markdown()


def test_examples_of_known_domains_add_nothing(model):
    assert model.extended(["Write a Python function that merges two sorted lists."], ["code"]) is model


def test_extended_model_survives_save_and_load(model, tmp_path):
    extended = model.extended(LEGAL_TRAIN[:12], ["legal"] * 12)
    extended.save(tmp_path / "d.npz", note="test")
    again = DomainClassifier.load(tmp_path / "d.npz")
    x = again.hasher.transform("Is a spoken contract binding in court?")
    assert again.hasher.config() == model.hasher.config()
    assert np.allclose(extended.predict_proba(x), again.predict_proba(x))
    assert DomainClassifier.read_meta(tmp_path / "d.npz")["note"] == "test"
    # Through a router model directory too (what `gateway eval --save-model` writes).
    RouterModel(extended.hasher, extended, None, mode="domain").save(tmp_path / "router")
    router = RouterModel.load(tmp_path / "router")
    assert router.hasher.config() == extended.hasher.config()
    assert router.infer_domain(x)[0] == extended.predict(x)[0]


def test_averaged_is_the_mean_of_runs_on_the_same_data():
    texts = ["solve the integral", "derivative of x squared", "sum of primes", "fix my python bug",
             "javascript callback error", "compile the rust crate"] * 2
    labels = ["math"] * 3 + ["code"] * 3
    labels = labels * 2
    h = FeatureHasher(12)
    runs = [DomainClassifier(h, seed=s, min_df=1).fit(texts, labels) for s in range(3)]
    mean = DomainClassifier.averaged(runs)
    assert np.allclose(mean._weights, np.mean([r._weights for r in runs], axis=0))
    with pytest.raises(ValueError, match="same examples"):
        DomainClassifier.averaged([runs[0], DomainClassifier(h, min_df=1).fit(texts[:4] + ["x y"], labels[:4] + ["code"])])


def test_unicode_words_and_characters_are_tokens():
    h = FeatureHasher(16)
    assert h.transform("größe über").n_tokens == 2  # not split at the umlaut
    assert h.transform("如何读取文件").n_tokens == 6  # Chinese: one token per character
    # ASCII text tokenises as before (models saved earlier keep their features).
    assert h.transform("Merge two_sorted lists, v2.0!").n_tokens == 6
    with_grams = FeatureHasher(16, char_ngrams=(3, 5))
    assert len(with_grams.transform("sorting")) > len(h.transform("sorting"))
    assert "~sort" in with_grams.describe("sorting", with_grams.transform("sorting").indices).values()
