"""`gateway eval` refuses bad numeric options and a malformed --model-meta with one clear line (exit 2),
checks --out before the work, and replaces report.json / curves.png whole."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.eval import runner
from gateway.eval.report import write_json, write_plot
from gateway.eval.runner import EvalOptions, run_eval

from ._synth import write_synthetic

_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path) -> Path:
    return write_synthetic(tmp_path / "s.jsonl", n=60)


@pytest.fixture
def no_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the evaluation ran")

    monkeypatch.setattr(runner, "run_eval", refuse)


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--points", "0", "must be at least 2"),
    ("--points", "-1", "must be at least 2"),
    ("--points", "1", "must be at least 2"),
    ("--folds", "0", "must be at least 2"),
    ("--folds", "1", "must be at least 2"),
    ("--bootstrap", "-5", "must be at least 0"),
    ("--points", "many", "invalid integer"),
])
def test_bad_numeric_options_exit_2_with_a_clear_message(data, tmp_path, capsys, no_work, option, value, expected):
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(data), "--out", str(tmp_path / "out"), "--quiet", option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {expected}" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_malformed_model_meta_is_one_line_naming_the_file(data, tmp_path, capsys, no_work):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cheap: {ttft_ms: [1, 2\n  quality: 0.5\n")
    assert main(["eval", str(data), "--out", str(tmp_path / "out"), "--quiet", "--model-meta", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("gateway eval: --model-meta ") and str(bad) in err and "invalid YAML" in err
    assert "line " in err


def test_missing_model_meta_is_one_line(data, tmp_path, capsys, no_work):
    assert main(["eval", str(data), "--out", str(tmp_path / "o"), "--quiet", "--model-meta",
                 str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none.yaml" in err


@pytest.mark.parametrize("flag", ["--out", "--save-model"])
def test_an_unwritable_output_is_refused_before_the_work(data, tmp_path, capsys, no_work, flag):
    blocker = tmp_path / "passwd"
    blocker.write_text("a file\n")
    extra = ["--out", str(blocker)] if flag == "--out" else ["--out", str(tmp_path / "o"), "--save-model",
                                                               str(blocker / "m")]
    assert main(["eval", str(data), "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and "not a directory" in err


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    from gateway.eval.data import load_eval_data

    path = write_synthetic(tmp_path_factory.mktemp("r") / "s.jsonl", n=120)
    made = run_eval(load_eval_data(path), EvalOptions(points=4, n_boot=0, folds=2, compare=False))
    return json.loads(json.dumps(made, default=lambda x: x.item() if hasattr(x, "item") else str(x)))


def test_writers_replace_files_whole(report, tmp_path):
    write_json(report, tmp_path / "report.json")
    write_plot(report, tmp_path / "curves.png")
    assert json.loads((tmp_path / "report.json").read_text())["seed"] == report["seed"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "report.json"]


@pytest.mark.parametrize("victim", ["report.json", "curves.png"])
def test_a_failed_write_leaves_the_old_files_intact(report, data, tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    old = {"report.json": b'{"an": "earlier report"}\n', "curves.png": b"\x89PNG an earlier plot"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    report_file = tmp_path / "canned.json"
    report_file.write_text(json.dumps(report))
    # `ulimit -f` in a child process: big enough for report.json only when the plot is the victim.
    limit = len(json.dumps(report, indent=1)) + 4096 if victim == "curves.png" else 1024
    script = textwrap.dedent(f"""
        import json, resource, sys
        from pathlib import Path
        from gateway.cli import main
        from gateway.eval import runner

        report = json.loads(Path({str(report_file)!r}).read_text())
        runner.run_eval = lambda *args, **kwargs: report
        import matplotlib.pyplot  # imported before the limit: it may write its font cache
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        sys.exit(main(["eval", {str(data)!r}, "--out", {str(out)!r}, "--quiet"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=_ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and victim in lines[0] and "File too large" in lines[0]
    assert (out / victim).read_bytes() == old[victim]
    if victim == "curves.png":  # the report before it was written whole
        assert json.loads((out / "report.json").read_text())["seed"] == report["seed"]
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "report.json"]  # no temp file left
