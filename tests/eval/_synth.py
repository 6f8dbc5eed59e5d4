"""A small generated routing-eval/1 file: two topics where a cheap model is good at one only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_WORDS = {
    "math": ["integral", "equation", "solve", "derivative", "matrix", "prime", "number", "sum"],
    "history": ["war", "king", "century", "empire", "treaty", "revolution", "dynasty", "battle"],
}


def write_synthetic(path: Path, *, n: int = 240, models: int = 3, seed: int = 0, domains: bool = True,
                    fractional: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    names = ["cheap", "dear", "mid"][:models]
    prices = {"cheap": 1e-7, "dear": 2e-6, "mid": 5e-7}
    header = {"format": "routing-eval/1", "name": "synthetic",
              "models": {m: {"input_cost_per_token": prices[m], "output_cost_per_token": prices[m] * 4}
                         for m in names}}
    lines = [json.dumps(header)]
    for i in range(n):
        topic = "math" if i % 2 else "history"
        hard = topic == "math" and rng.random() < 0.5
        words = list(rng.choice(_WORDS[topic], size=12)) + (["hard", "proof"] if hard else [])
        p_good = {"cheap": 0.2 if hard else (0.6 if topic == "math" else 0.9), "dear": 0.9, "mid": 0.6}
        outcomes = {}
        for m in names:
            score = float(rng.random() < p_good[m])
            if fractional:
                score = round(0.5 * score + 0.5 * float(rng.random()), 3)
            out = int(rng.integers(20, 80))
            outcomes[m] = {"score": score, "cost_usd": 30 * prices[m] + out * prices[m] * 4, "output_tokens": out}
        row = {"id": f"r{i}", "split": "train" if i < n * 0.6 else "test",
               "messages": [{"role": "user", "content": " ".join(words)}], "outcomes": outcomes}
        if domains:
            row["domain"] = topic
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path
