"""`RecentDecisions` (gateway/core/subscribers.py): what the stats route and the dashboard list."""

from __future__ import annotations

import time
from types import SimpleNamespace

from gateway.core.events import RequestFinished
from gateway.core.subscribers import RecentDecisions


def _decision() -> SimpleNamespace:
    cands = tuple(SimpleNamespace(model=SimpleNamespace(name=n), total=t, reasons=(f"{n} is good",))
                  for n, t in (("a", 0.81234), ("b", 0.5)))
    rejected = (SimpleNamespace(model="c", reasons=("no tools",)),)
    return SimpleNamespace(ranking=SimpleNamespace(ranked=cands, rejected=rejected), strategy="balanced",
                           notes=("a note",))


def test_entries_list_each_decision_once_the_same_dicts_on_every_read():
    recent = RecentDecisions(maxlen=3)
    body = {"messages": [{"role": "user", "content": "private"}]}
    decision = _decision()
    before = time.time()
    recent(RequestFinished("req_0", "chat.completions", 400, None))  # refused: no decision, no entry
    for i, status in enumerate((200, 502, 200, 200)):
        recent(RequestFinished(
            f"req_{i}", "chat.completions", status, "default", decision=decision,
            served=SimpleNamespace(name="a") if status == 200 else None, latency_ms=12.345 if status == 200 else None,
            cost_usd=1e-6, request_body=body, response_body={"choices": []},
        ))
    assert len(recent) == 3
    held = [v for e in recent._entries for v in (e.values() if isinstance(e, dict) else e)]
    assert not any(v is body for v in held)  # a request's body is never held
    first = list(recent)
    assert [e["request_id"] for e in first] == ["req_1", "req_2", "req_3"]
    ts = first[0].pop("ts")
    assert before <= ts <= time.time()
    assert first[0] == {
        "request_id": "req_1", "endpoint": "chat.completions", "pipeline": "default", "strategy": "balanced",
        "winner": "a", "score": 0.812, "runner_up": "b", "served": None, "status": "502", "latency_ms": None,
        "cost_usd": 1e-6, "reasons": ["a is good"], "notes": ["a note"], "rejected": decision.ranking.rejected,
    }
    assert first[1]["status"] == "ok" and first[1]["served"] == "a" and first[1]["latency_ms"] == 12.3
    recent(RequestFinished("req_4", "embeddings", 200, None, decision=decision))
    second = list(recent)
    assert second[:2] == first[1:] and all(a is b for a, b in zip(second, first[1:]))  # fleet.py's identity test
    assert second[2]["endpoint"] == "embeddings" and second[2]["served"] is None
