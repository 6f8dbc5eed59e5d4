"""Start-up and per-request cost of the shipped default domain model.

Times, one call at a time with perf_counter_ns (medians, p99):

- loading `gateway/learning/data/default-domains.npz` (what start-up and a policy reload pay);
- building the policy set of `policies/` (the shipped default plus the repository's policies);
- teaching it a new domain from 30 examples (a policy with `domain_examples` of its own);
- per request, on the corpus's held-out prompts (typical lengths: 3 to ~450 characters) and on a
  ~1,000-token prompt: hashing (word + character n-grams), the classifier alone, and the whole
  `RouterModel.estimate` call the decision makes;
- hashing + inference by prompt length, 4 to 20,000 words drawn from the corpus (an agent's
  context runs to tens of thousands of tokens), and on the prompt of bench/perf/run.py (7 words,
  what every request of the gateway's end-to-end benchmark pays): the best of five batches, per call.

Budget: inference well under 1 ms for typical prompts.

    .venv/bin/python bench/bench_domains.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.learning import DomainClassifier, RouterModel  # noqa: E402
from gateway.learning.default_domains import MODEL_PATH, load_corpus  # noqa: E402
from gateway.policy import load_policy_dir  # noqa: E402
from tests.learning.test_default_domains import LEGAL_TRAIN  # noqa: E402

PERF_PROMPT = "Write one short sentence about request routers."  # bench/perf/run.py's PROMPT


def _ms(samples: list[int]) -> str:
    a = np.array(samples) / 1e6
    return f"median {np.median(a):8.3f} ms   p99 {np.percentile(a, 99):8.3f} ms"


def _time(fn, runs: int) -> list[int]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return out


def main() -> int:
    print(f"model file: {MODEL_PATH.stat().st_size / 1024:.0f} KiB")
    print(f"load the model file          {_ms(_time(lambda: DomainClassifier.load(MODEL_PATH), 20))}")
    model = DomainClassifier.load(MODEL_PATH)
    print(f"policy set of policies/      {_ms(_time(lambda: load_policy_dir(ROOT / 'policies', None), 20))}")
    print(f"+ a new domain, 30 examples  {_ms(_time(lambda: model.extended(LEGAL_TRAIN, ['legal'] * 30), 10))}")
    router = RouterModel(model.hasher, model, None, mode="domain")
    texts = [r.text for r in load_corpus() if r.split == "test"]
    long_text = " ".join(texts)[:4000]  # ~1,000 tokens
    for name, batch in (("held-out prompts", texts), ("~1,000-token prompt", [long_text] * 300)):
        lengths = [len(t) for t in batch]
        print(f"\n{name}: {len(batch)} calls, {int(np.median(lengths))} characters median")
        for t in batch[:50]:  # warm the token cache as a running gateway has it
            router.estimate(t, (), explain=False)
        features = [model.hasher.transform(t) for t in batch]
        hash_ns, clf_ns, est_ns = [], [], []
        for t, f in zip(batch, features, strict=True):
            t0 = time.perf_counter_ns()
            model.hasher.transform(t)
            t1 = time.perf_counter_ns()
            model.predict_proba(f)
            t2 = time.perf_counter_ns()
            router.estimate(t, (), explain=False)
            t3 = time.perf_counter_ns()
            hash_ns.append(t1 - t0)
            clf_ns.append(t2 - t1)
            est_ns.append(t3 - t2)
        print(f"  hashing                    {_ms(hash_ns)}")
        print(f"  classifier                 {_ms(clf_ns)}")
        print(f"  RouterModel.estimate       {_ms(est_ns)}")
    _by_length(model, router, texts)
    return 0


def _by_length(model: DomainClassifier, router: RouterModel, texts: list[str]) -> None:
    words = " ".join(texts).split()
    print("\nhashing + inference by prompt length (best of 5 batches, per call)")
    rows = [("bench/perf prompt", PERF_PROMPT)]
    rows += [(f"{n:6d} words", " ".join(words[i % len(words)] for i in range(n))) for n in (4, 35, 80, 300, 1000,
                                                                                             5000, 20000)]
    for label, text in rows:
        calls = max(5, 20000 // len(text.split()))

        def batch(text: str = text, calls: int = calls) -> None:
            for _ in range(calls):
                router.infer_domain(model.hasher.transform(text))

        batch()  # warm the caches, as a running gateway has them
        best = min(_time(batch, 5)) / calls
        print(f"  {label:27s}{best / 1e3:9.1f} us")


if __name__ == "__main__":
    raise SystemExit(main())
