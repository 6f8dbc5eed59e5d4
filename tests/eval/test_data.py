import json

import pytest

from gateway.eval.data import EvalDataError, load_eval_data

from ._synth import write_synthetic


def _write(tmp_path, lines):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n")
    return p


HEADER = {"format": "routing-eval/1", "models": {"a": {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7}}}


def _row(**kw):
    row = {"id": "1", "split": "train", "domain": "x", "messages": [{"role": "user", "content": "hi"}],
           "outcomes": {"a": {"score": 1.0, "cost_usd": 0.001, "output_tokens": 3}}}
    row.update(kw)
    return row


def test_loads_synthetic(tmp_path):
    d = load_eval_data(write_synthetic(tmp_path / "s.jsonl"))
    assert d.scores.shape == (240, 3)
    assert d.model_names == ("cheap", "dear", "mid")
    assert len(d.split(True)) + len(d.split(False)) == 240


@pytest.mark.parametrize(("lines", "needle"), [
    ([{"format": "other"}], ":1: first line must be a header"),
    ([HEADER, "{not json"], ":2: not JSON"),
    ([HEADER, _row(split="dev")], ":2: split must be 'train' or 'test'"),
    ([HEADER, _row(outcomes={})], ":2: missing outcomes for ['a']"),
    ([HEADER, _row(outcomes={"a": {"score": 1.5, "cost_usd": 0}})], 'outcomes["a"].score must be a number in [0, 1]'),
    ([HEADER, _row(messages=[])], ":2: messages must be a non-empty list"),
    ([HEADER, _row(), _row()], ":3: duplicate id '1'"),
    ([HEADER, _row()], "no test rows"),
])
def test_errors_name_line_and_field(tmp_path, lines, needle):
    with pytest.raises(EvalDataError, match=None) as exc:
        load_eval_data(_write(tmp_path, lines))
    assert needle in str(exc.value)


def test_missing_domain_is_none(tmp_path):
    row = _row()
    del row["domain"]
    d = load_eval_data(_write(tmp_path, [HEADER, row, _row(id="2", split="test", domain=None)]))
    assert d.domains == (None, None)
