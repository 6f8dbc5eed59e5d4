"""Embedding requests in the decision: body checks, the separate model set, vector sizes, fallbacks
that keep the size, and the batch counted for budgets. Direct calls over a real catalog (litellm's
map supplies prices and native sizes); the HTTP path is tests/e2e/test_embeddings.py."""

from __future__ import annotations

import pytest

from gateway import errors
from gateway.catalog import CatalogError, GatewayConfig, load_catalog
from gateway.core.decision import Decider
from gateway.core.tokens import CountFirst, estimate_text_tokens
from gateway.core.embeddings import batch_tokens, build_embedding_context, dimension_misfit, validate_embedding_body
from gateway.policy import PolicySet
from gateway.selection.engine import SelectionEngine
from gateway.upstream.operation import EMBEDDINGS

BASE = "http://127.0.0.1:9/v1"


def _dep(name: str, model: str, **meta) -> dict:
    return {"name": name, "model": model, "api_base": BASE, **({"metadata": meta} if meta else {})}


def _catalog(*extra: dict):
    deps = [
        _dep("chat", "openai/gpt-4o-mini"),
        _dep("small", "openai/text-embedding-3-small", supports_dimensions=True, quality=0.7),
        _dep("large", "openai/text-embedding-3-large", supports_dimensions=True, quality=0.9),
        _dep("ada", "openai/text-embedding-ada-002", quality=0.6),
        *extra,
    ]
    return load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={})


@pytest.fixture(scope="module")
def decider() -> Decider:
    return Decider(_catalog(), SelectionEngine(), lambda: PolicySet())


def test_mode_and_size_come_from_litellms_map():
    catalog = _catalog()
    info = {d.name: d.info for d in catalog.deployments.values()}
    assert info["chat"].mode == "chat" and info["small"].mode == "embedding"
    assert (info["small"].dimensions, info["large"].dimensions, info["ada"].dimensions) == (1536, 3072, 1536)
    assert info["small"].input_cost_per_token > 0 and info["small"].output_cost_per_token == 0
    assert [m.name for m in catalog.models] == ["chat"]
    assert {m.name for m in catalog.models_for("embedding")} == {"small", "large", "ada"}


def test_an_embedding_model_litellm_does_not_size_must_say_its_dimensions():
    with pytest.raises(CatalogError, match="dimensions"):
        _catalog(_dep("mistral", "mistral/mistral-embed"))
    catalog = _catalog(_dep("mistral", "mistral/mistral-embed", dimensions=1024))
    assert catalog.deployments["mistral"].info.dimensions == 1024


def test_an_unknown_embedding_model_must_say_its_price_and_window():
    with pytest.raises(CatalogError, match="input_cost_per_token, context_window"):
        _catalog({"name": "mine", "model": "openai/my-embedder", "api_base": BASE, "mode": "embedding"})


@pytest.mark.parametrize("dims, fit", [(None, {"small", "large", "ada"}), (1536, {"small", "large", "ada"}),
                                       (256, {"small", "large"}), (3072, {"large"}), (4096, set())])
def test_auto_ranks_only_models_that_return_the_size(decider, dims, fit):
    body = {"model": "auto", "input": "hello", **({"dimensions": dims} if dims else {})}
    try:
        decision = decider.decide(body, {}, "r1", operation=EMBEDDINGS)
    except errors.NoFeasibleModelError as exc:
        assert not fit and {name for name, _ in exc.rejected} == {"small", "large", "ada"}
        return
    ranked = {c.model.name for c in decision.ranking.ranked}
    assert ranked == fit
    assert {r.model for r in decision.ranking.rejected} == {"small", "large", "ada"} - fit
    assert "chat" not in ranked and all(d.info.mode == "embedding" for d in decision.candidates)


def test_without_dimensions_fallbacks_keep_the_winners_size(decider):
    decision = decider.decide({"model": "auto", "input": "x"}, {"x-selection-strategy": "performance"}, "r",
                              operation=EMBEDDINGS)
    sizes = {d.info.dimensions for d in decision.candidates}
    assert len(sizes) == 1
    assert decision.candidates[0].name == "large"  # the best quality; the 1536-wide ones are not its fallbacks
    assert any("fallbacks keep the winner's 3072 dimensions" in n for n in decision.notes)


def test_named_deployments_are_held_to_mode_and_size(decider):
    with pytest.raises(errors.InvalidRequestError) as info:
        decider.decide({"model": "chat", "input": "x"}, {}, "r", operation=EMBEDDINGS)
    assert info.value.code == "model_not_supported" and info.value.param == "model"
    with pytest.raises(errors.InvalidRequestError) as info:
        decider.decide({"model": "small", "messages": [{"role": "user", "content": "x"}]}, {}, "r")
    assert "/v1/embeddings" in info.value.message
    with pytest.raises(errors.NoFeasibleModelError, match="cannot shorten"):
        decider.decide({"model": "ada", "input": "x", "dimensions": 256}, {}, "r", operation=EMBEDDINGS)
    assert decider.decide({"model": "ada", "input": "x", "dimensions": 1536}, {}, "r",
                          operation=EMBEDDINGS).candidates[0].name == "ada"


def test_chat_auto_never_sees_an_embedding_model(decider):
    decision = decider.decide({"model": "auto", "messages": [{"role": "user", "content": "x"}]}, {}, "r")
    assert [c.model.name for c in decision.ranking.ranked] == ["chat"] and not decision.ranking.rejected


def _decide(decider: Decider, body: dict, **kw):
    """What the request pipeline does: decide, and on `CountFirst` count (here inline) and decide again."""
    try:
        return decider.decide(body, {}, "r", operation=EMBEDDINGS, **kw)
    except CountFirst as need:
        return decider.decide(body, {}, "r", operation=EMBEDDINGS, counted=need.measure(), **kw)


def test_the_window_bounds_each_input_and_budgets_count_the_batch(decider):
    long = "word " * 9000  # 9,001 tokens counted: over the 8,191-token window per input
    with pytest.raises(errors.NoFeasibleModelError, match="context: needs 9,001 tokens"):
        _decide(decider, {"model": "auto", "input": [long]})
    batch = ["word " * 4000] * 10  # each input fits; the batch is ~50,000 tokens
    decision = _decide(decider, {"model": "auto", "input": batch})
    assert decision.ctx.input_tokens == batch_tokens({"input": batch}) > 40_000
    assert decision.ctx.max_output_tokens == 0


# Prose the estimate (~4 characters a token) puts over the 8,191-token window; OpenAI's tokenizer
# counts 5,701 (long words), and "word " * 7000 (8,751 estimated) is 7,001.
_PROSE = "The quick brown fox jumps over the lazy dog while the committee deliberates on quarterly revenue projections. " * 300


def _context(inputs: list, counted: int | None = None):
    return build_embedding_context({"input": inputs}, request_id="r", pinned_model=None, domain=None, pipeline=None,
                                   exact_from=6_143, counted=counted)


@pytest.mark.parametrize("text, counted", [(_PROSE, 5_701), ("word " * 7000, 7_001)])
def test_an_input_near_the_window_is_counted_not_estimated(decider, text, counted):
    # A client that cuts its chunks to the window with its own tokenizer must not be refused for
    # the estimate's over-count.
    assert estimate_text_tokens(text) > 8_191
    with pytest.raises(CountFirst) as need:
        _context([text, "short"])
    assert need.value.measure() == counted  # the longest input, counted
    assert _context([text, "short"], counted=counted).input_tokens == counted
    for model in ("auto", "small"):  # chosen, and served when named
        decision = _decide(decider, {"model": model, "input": [text]})
        assert decision.ranking.ranked and not decision.ranking.rejected
    # Far from every window the estimate stands: no tokenizer on the way of an ordinary request.
    assert _context(["word " * 100]).input_tokens == estimate_text_tokens("word " * 100)


def test_only_inputs_near_the_window_are_counted(monkeypatch):
    import gateway.core.embeddings as embeddings

    seen: list[str] = []
    monkeypatch.setattr(embeddings.cl100k, "count", lambda text: seen.append(text) or 7_000)
    near, far = "word " * 7000, "word " * 4000  # estimated 8,751 (from 6,143 on: counted) and 5,001
    with pytest.raises(CountFirst) as need:
        _context([far, near, [1, 2, 3] * 3000])
    assert need.value.measure() == 9_000  # the token array (never counted) is the longest
    assert seen == [near]
    seen.clear()
    monkeypatch.setattr(embeddings.cl100k, "count", lambda text: None)  # no tokenizer: the estimate
    with pytest.raises(CountFirst) as need:
        _context([near])
    assert need.value.measure() == estimate_text_tokens(near)


@pytest.mark.parametrize("body, param", [
    ([], "body"), ({"input": "x"}, "model"), ({"model": "auto"}, "input"), ({"model": "auto", "input": ""}, "input"),
    ({"model": "auto", "input": ["a", ""]}, "input"), ({"model": "auto", "input": [[1, -2]]}, "input"),
    ({"model": "auto", "input": [True]}, "input"), ({"model": "auto", "input": ["a"] * 2049}, "input"),
    ({"model": "auto", "input": "x", "dimensions": True}, "dimensions"),
    ({"model": "auto", "input": "x", "dimensions": 1 << 20}, "dimensions"),
    ({"model": "auto", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "auto", "input": "x", "user": 3}, "user"),
    ({"model": "auto", "input": "x", "aws_region_name": "x"}, "aws_region_name"),
    ({"model": "auto", "input": "x", "messages": []}, "messages"),
])
def test_bad_bodies_name_the_parameter(body, param):
    with pytest.raises(errors.InvalidRequestError) as info:
        validate_embedding_body(body)
    assert info.value.param == param


@pytest.mark.parametrize("body", [
    {"model": "auto", "input": "x"}, {"model": "m", "input": ["a", "b"], "dimensions": 8},
    {"model": "m", "input": [1, 2, 3]}, {"model": "m", "input": [[1], [2, 3]], "encoding_format": "base64"},
    {"model": "m", "input": "x", "user": "u", "encoding_format": "float"},
])
def test_good_bodies_pass(body):
    validate_embedding_body(body)


def test_dimension_misfit_reasons():
    catalog = _catalog()
    small, ada = catalog.deployments["small"].info, catalog.deployments["ada"].info
    assert dimension_misfit(small, None) is None and dimension_misfit(small, 64) is None
    assert "> the model's 1536" in dimension_misfit(small, 2000)
    assert dimension_misfit(ada, 1536) is None and "cannot shorten" in dimension_misfit(ada, 512)
