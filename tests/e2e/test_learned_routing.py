"""Domain inference and learned per-prompt quality on the live request path.

Requests that name no domain are classified (policy `domain_examples`, or a router model saved by
`gateway eval --save-model`); a router model's per-prompt quality estimates drive the quality
scorer; feedback on served requests updates that model with the prompt's features.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.learning import DomainClassifier, FeatureHasher, PromptQualityModel, RouterModel
from tests import loopback

# Two twins that differ only in domain quality: the domain decides the winner.
DEPLOYMENTS = {
    "sim-mini": dict(info_from="gpt-4o-mini", quality=0.7, domain_quality={"code": 0.95, "poetry": 0.3}),
    "sim-premium": dict(info_from="gpt-4o-mini", quality=0.7, domain_quality={"code": 0.3, "poetry": 0.95}),
}
EXAMPLES = {
    "code": ["write a python function to sort a list", "fix this javascript bug in my loop",
             "implement a stack class in java", "why does my python code raise a KeyError"],
    "poetry": ["write a poem about the sea", "compose a sonnet about love",
               "write a haiku about autumn leaves", "a short rhyming poem for a birthday"],
}


def _policies(tmp_path: Path, **extra) -> Path:
    d = tmp_path / "policies"
    d.mkdir(exist_ok=True)
    doc = {"pipeline": "default", "selection_schema": {"strategy": "performance"}, "domain_examples": EXAMPLES}
    (d / "default.yaml").write_text(yaml.safe_dump(doc))
    for name, sel in extra.items():
        (d / f"{name}.yaml").write_text(yaml.safe_dump({"pipeline": name, "selection_schema": sel}))
    return d


def _explain(gw, text: str, **headers) -> dict:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    r = loopback.post(f"{gw.base_url}/selection/explain", json=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    ("text", "headers", "domain", "source", "winner"),
    [
        ("write a python function that reverses a string", {}, "code", "inferred", "sim-mini"),
        ("write a poem about the moon", {}, "poetry", "inferred", "sim-premium"),
        # The header beats inference, and the pipeline's default_domain beats it too.
        ("write a python function that reverses a string", {"X-Task-Domain": "poetry"}, "poetry", "header",
         "sim-premium"),
        ("write a python function that reverses a string", {"X-Pipeline-Id": "verse"}, "poetry", "policy",
         "sim-premium"),
    ],
)
def test_domain_precedence_header_policy_inferred(gateway_factory, tmp_path, text, headers, domain, source, winner):
    policies = _policies(tmp_path, verse={"strategy": "performance", "default_domain": "poetry"})
    gw = gateway_factory(DEPLOYMENTS, policies=policies)
    out = _explain(gw, text, **headers)
    assert (out["context"]["domain"], out["context"]["domain_source"], out["winner"]) == (domain, source, winner)
    if source == "inferred":
        assert any(n.startswith(f"domain inferred from the prompt: {domain}") for n in out["notes"])


def test_unsure_inference_is_not_used(gateway_factory, tmp_path):
    gw = gateway_factory(DEPLOYMENTS, policies=_policies(tmp_path), domain_min_confidence=0.99)
    out = _explain(gw, "write a function that prints a poem")  # half code, half poetry
    assert out["context"]["domain"] is None and out["context"]["domain_source"] is None
    assert any(n.startswith("domain not inferred: best guess ") for n in out["notes"]), out["notes"]


def _router_model(path: Path) -> Path:
    """A router model that learned sim-premium is better at prompts mentioning 'sql' (any domain)."""
    hasher = FeatureHasher()
    texts = [t for ex in EXAMPLES.values() for t in ex]
    labels = [d for d, ex in EXAMPLES.items() for _ in ex]
    classifier = DomainClassifier(hasher, epochs=30, min_df=1).fit(texts, labels)
    quality = PromptQualityModel()
    for i in range(300):
        text = f"tricky sql join number {i}" if i % 2 else f"plain question number {i}"
        feats = hasher.transform(text)
        quality.update("sim-premium", feats, None, 1.0 if i % 2 else 0.2)
        quality.update("sim-mini", feats, None, 0.2 if i % 2 else 0.9)
    RouterModel(hasher, classifier, quality, mode="prompt").save(path)
    return path


def test_router_model_quality_drives_choice_and_learns_from_feedback(gateway_factory, tmp_path):
    model_dir = _router_model(tmp_path / "router")
    gw = gateway_factory(DEPLOYMENTS, policies=_policies(tmp_path), router_model=model_dir)
    sql = _explain(gw, "a tricky sql join question")
    plain = _explain(gw, "a plain question")
    assert sql["winner"] == "sim-premium" and plain["winner"] == "sim-mini"
    reasons = sql["ranked"][0]["reasons"]
    assert any("learned for this prompt" in r for r in reasons), reasons
    assert any(r.startswith("quality estimate:") and "sql" in r for r in reasons), reasons

    # A served request is remembered with its features; feedback on it updates the router model.
    quality = gw.state.decider.router.quality
    before = quality.prior("sim-premium", None)[1]
    r = loopback.post(f"{gw.base_url}/chat/completions", timeout=10, json={
        "model": "auto", "messages": [{"role": "user", "content": "a tricky sql join question"}]})
    assert r.status_code == 200 and r.headers["x-gateway-model"] == "sim-premium"
    f = loopback.post(f"{gw.base_url}/feedback", json={"request_id": r.headers["x-gateway-request-id"], "score": 0},
                      timeout=10)
    assert f.status_code == 200, f.text
    assert quality.prior("sim-premium", None)[1] == before + 1


@pytest.mark.parametrize(
    ("header", "domain", "note"),
    [
        ("CODE", "code", None),  # case does not matter
        ("Poetry", "poetry", None),
        ("underwater-basket-weaving", "underwater-basket-weaving", "is not a domain"),
    ],
)
def test_task_domain_header_is_matched_to_known_names(gateway_factory, tmp_path, header, domain, note):
    gw = gateway_factory(DEPLOYMENTS, policies=_policies(tmp_path))
    out = _explain(gw, "write a python function that reverses a string", **{"X-Task-Domain": header})
    assert (out["context"]["domain"], out["context"]["domain_source"]) == (domain, "header")
    unknown = [n for n in out["notes"] if n.startswith("X-Task-Domain")]
    assert (note in unknown[0]) if note else not unknown, out["notes"]


def test_the_shipped_model_infers_domains_with_no_examples_at_all(gateway_factory, tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    (d / "default.yaml").write_text(yaml.safe_dump({"pipeline": "default", "selection_schema": {"strategy": "balanced"}}))
    gw = gateway_factory(DEPLOYMENTS, policies=d)
    out = _explain(gw, "How do I reverse a linked list in C?")
    assert (out["context"]["domain"], out["context"]["domain_source"]) == ("code", "inferred")
    assert out["winner"] == "sim-mini"  # the code specialist
