"""A learned model shared through the store's log: replicas converge, a restart resumes, a
checkpoint lets a late replica catch up, a new model file starts afresh without a restart."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.learning import FeatureHasher, FeedbackProcessor, PromptQualityModel, RouterModel
from gateway.learning.quality import OnlineState
from gateway.learning.router_source import RouterSource
from gateway.learning.shared import SharedModel, add_into, decode_state, difference, encode_state, lineage_of
from gateway.stats import MemoryStatsStore, StatsService

HASHER = FeatureHasher(16)
PROMPTS = [HASHER.transform(t) for t in ("sort a list", "prove the integral", "a sonnet about rain",
                                         "fix my sql join", "what is the capital of france")]
MODELS = ("m1", "m2", "m3")


class Replica:
    """One process's learner: a model plus the counter `FeedbackProcessor.learned` would keep."""

    def __init__(self, store: MemoryStatsStore, origin: str, base: PromptQualityModel | None = None, **kw) -> None:
        self.model = base or PromptQualityModel(n_bits=12)
        self.updates = 0
        self.shared = SharedModel(self.model, store, "lin", origin, learned=lambda: self.updates, models=MODELS, **kw)

    def learn(self, rng: random.Random, n: int) -> None:
        for _ in range(n):
            self.model.update(rng.choice(MODELS), rng.choice(PROMPTS), rng.choice(["code", None]), rng.random())
            self.updates += 1

    def predict(self) -> np.ndarray:
        return np.array([list(self.model.predict(p, "code", MODELS).values()) for p in PROMPTS])


def _same(a: Replica, b: Replica) -> None:
    assert np.allclose(a.predict(), b.predict(), atol=1e-6)
    for m in MODELS:
        assert a.model.prior(m, "code") == pytest.approx(b.model.prior(m, "code"))


async def test_replicas_converge_on_the_sum_of_what_each_learned() -> None:
    store, rng = MemoryStatsStore(), random.Random(1)
    a, b, c = (Replica(store, o) for o in "abc")
    for r in (a, b, c):
        await r.shared.sync()
    for _ in range(3):
        for r in (a, b, c):
            r.learn(rng, 20)
            await r.shared.sync()
    for r in (a, b, c):  # one more round: everyone reads the last deltas
        await r.shared.sync()
    _same(a, b)
    _same(b, c)
    assert sum(a.model.prior(m, None)[1] for m in MODELS) == 180  # every feedback event, counted once
    assert a.shared.sent == 3 and a.shared.received == 6


async def test_a_restart_resumes_from_checkpoint_and_log() -> None:
    store, rng = MemoryStatsStore(), random.Random(2)
    a, b = Replica(store, "a", checkpoint_s=0.0), Replica(store, "b", checkpoint_s=1e9)
    for _ in range(4):
        a.learn(rng, 15)
        b.learn(rng, 15)
        await a.shared.sync()
        await b.shared.sync()
    await a.shared.sync()
    assert await store.load_learning_checkpoint("lin") is not None  # a checkpoints at every chance
    b.learn(rng, 5)
    await b.shared.stop()  # the last sync sends what b learned since
    fresh = Replica(store, "a2")  # a restart: the same model file, a new process
    await fresh.shared.start()
    await a.shared.sync()
    _same(fresh, a)
    assert sum(fresh.model.prior(m, None)[1] for m in MODELS) == 125
    await fresh.shared.stop()


async def test_a_replica_that_fell_behind_the_trimmed_log_reloads_the_checkpoint(caplog) -> None:
    store, rng = MemoryStatsStore(), random.Random(3)
    a, slow = Replica(store, "a", checkpoint_s=0.0), Replica(store, "slow")
    await slow.shared.sync()
    slow.learn(rng, 7)  # pending while it is away
    for _ in range(3):  # each sync checkpoints and trims behind the previous checkpoint
        a.learn(rng, 10)
        await a.shared.sync()
        a.learn(rng, 1)
        await a.shared.sync()
    with caplog.at_level(logging.WARNING, "gateway.learning"):
        await slow.shared.sync()
    assert "fell behind" in caplog.text
    await a.shared.sync()
    _same(a, slow)
    assert sum(a.model.prior(m, None)[1] for m in MODELS) == 40


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 30))
def test_base_plus_the_difference_is_the_state(seed: int, before: int, after: int) -> None:
    rng = random.Random(seed)
    model = PromptQualityModel(n_bits=10)
    for _ in range(before):
        model.update(rng.choice(MODELS[:2]), rng.choice(PROMPTS), rng.choice(["x", None]), rng.random())
    base = model.online_state()
    for _ in range(after):  # m3 is new after `base`: its column is added
        model.update(rng.choice(MODELS), rng.choice(PROMPTS), rng.choice(["x", "y", None]), rng.random())
    now = model.online_state()
    delta = decode_state(encode_state(difference(now, base)))
    rebuilt = add_into(base, delta)
    assert rebuilt.models == now.models
    for name in now.arrays:  # float32: a + (b - a) is b up to rounding at a's magnitude
        scale = max(1.0, float(np.abs(now.arrays[name]).max()))
        assert np.allclose(rebuilt.arrays[name], now.arrays[name], rtol=0, atol=1e-6 * scale)
    flat = lambda c: {(m, d): ab for m, per in c.items() for d, ab in per.items()}  # noqa: E731
    assert flat(rebuilt.counts).keys() == flat(now.counts).keys()
    for key, ab in flat(now.counts).items():
        assert flat(rebuilt.counts)[key] == pytest.approx(ab)
    # A model given the base and then the delta learns the same weights (fresh columns aside).
    copy = PromptQualityModel(n_bits=10)
    copy.add_online(OnlineState(base.models, None, base.arrays, base.counts))
    copy.add_online(delta)
    scale = max(1.0, float(np.abs(model._w).max()))
    assert copy.models == model.models and np.allclose(copy._w, model._w, rtol=0, atol=1e-6 * scale)


def _router_dir(path, lean: float):
    quality = PromptQualityModel(n_bits=12)
    for _ in range(20):
        quality.update("m1", PROMPTS[0], None, lean)
    RouterModel(FeatureHasher(12), None, quality).save(path)
    return path


async def test_a_new_model_file_replaces_the_running_one_and_starts_a_new_lineage(tmp_path, caplog) -> None:
    directory = _router_dir(tmp_path / "router", 0.9)
    stats = StatsService(MemoryStatsStore())
    feedback = FeedbackProcessor(stats, None)
    source = RouterSource(directory, feedback, stats, reload_s=0.01, settle_s=0.01)
    first, lineage = source(), source.lineage
    assert feedback.quality_model is first.quality and lineage == lineage_of(directory)
    assert not await source.check()  # nothing changed
    _router_dir(directory, 0.1)
    assert await source.check()
    assert source() is not first and feedback.quality_model is source().quality
    assert source.lineage != lineage and source.version == 2
    assert source().quality.prior("m1", None)[0] < 0.5
    (directory / "quality.npz").write_bytes(b"not a model")
    with caplog.at_level(logging.ERROR, "gateway.learning"):
        assert not await source.check()
    assert "rejected; keeping version 2" in caplog.text and source.version == 2


async def test_a_send_that_timed_out_after_the_store_took_it_counts_once() -> None:
    class LostAnswer(MemoryStatsStore):
        lose = 0

        async def sync_learning(self, *args, **kw):  # type: ignore[no-untyped-def]
            result = await super().sync_learning(*args, **kw)
            if self.lose and args[2] is not None:
                self.lose -= 1
                raise TimeoutError("the answer was lost, the append was not")
            return result

    store, rng = LostAnswer(), random.Random(6)
    a, b = Replica(store, "a"), Replica(store, "b")
    await a.shared.sync()
    await b.shared.sync()
    a.learn(rng, 10)
    store.lose = 1
    with pytest.raises(TimeoutError):
        await a.shared.sync()
    a.learn(rng, 5)  # more learning before the retry: it goes in a later delta
    await a.shared.sync()  # re-sends the same delta under the same number
    await a.shared.sync()
    await b.shared.sync()
    assert len(store._logs["lin"]) == 3  # the lost answer, its re-send, the later delta
    _same(a, b)
    assert sum(b.model.prior(m, None)[1] for m in MODELS) == 15
    fresh = Replica(store, "c")  # a new process replays the log: the re-send is skipped there too
    await fresh.shared.sync()
    _same(fresh, a)
