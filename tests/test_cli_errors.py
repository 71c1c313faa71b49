"""Bad input to a `rationalyst` command is one line on stderr and a usage exit (2),
never a traceback: non-finite floats, empty lists, zero lengths, missing benchmark
files and an unusable agent model. In-process; no server and no model is started."""

from __future__ import annotations

import sys

import pytest
from pydantic import ValidationError

from rationalyst.cli import eval_cmd, main


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("rationalyst ")]
    assert len(lines) == 1, err
    return lines[0]


def usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main.main(argv)
    assert info.value.code == 2
    return one_error_line(capsys.readouterr().err)


# `=` keeps argparse from reading "-inf" as an option.
@pytest.mark.parametrize(
    "argv, flag",
    [
        (["solve", "q", "--temperature", "nan"], "--temperature"),
        (["solve", "q", "--temperature=-inf"], "--temperature"),
        (["solve", "q", "--timeout", "inf"], "--timeout"),
        (["eval", "--dataset", "gsm8k", "--score-decay", "NaN"], "--score-decay"),
        (["eval", "--dataset", "gsm8k", "--timeout-s", "Infinity"], "--timeout-s"),
        (["filter", "d", "--decay", "inf"], "--decay"),
        (["serve", "--agent-gpu-memory", "nan"], "--agent-gpu-memory"),
    ],
)
def test_a_non_finite_float_flag_is_a_usage_error(argv, flag, capsys):
    line = usage_error(argv, capsys)
    assert line.startswith(f"rationalyst {argv[0]}: error: ") and flag in line
    assert "finite" in line


def test_options_built_in_code_refuse_non_finite_floats_too():
    from rationalyst.cli.solve_cmd import SolveOptions

    with pytest.raises(ValidationError, match="finite"):
        SolveOptions(question="q", temperature=float("nan"))
    with pytest.raises(ValidationError, match="finite"):
        eval_cmd.EvalOptions(dataset=["gsm8k"], score_decay=float("inf"))
    assert SolveOptions(question="q", temperature=0.5).temperature == 0.5


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["eval", "--dataset", "gsm8k", "--strategies", ""], "--strategies"),
        (["eval", "--dataset", "gsm8k", "--strategies", ","], "--strategies"),
        (["serve", "--max-model-len", "0"], "--max-model-len"),
    ],
)
def test_empty_strategies_and_zero_context_are_usage_errors(argv, flag, capsys):
    line = usage_error(argv, capsys)
    assert line.startswith(f"rationalyst {argv[0]}: error: ") and flag in line


class NoServer:
    """Stands in for the HTTP client: eval must fail before it contacts any server."""

    def __init__(self, *a, **kw):
        raise AssertionError("eval contacted a server before checking its data files")


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "No such file"),
        (b'{"id": 1, "question": "q", "answer": "1"}\nnot json\n', "JSON"),
        (b'{"question": "q", "answer": "1"}\n', "no id"),
        (b"\xff\xfe\n", "JSON"),
    ],
)
@pytest.mark.parametrize("in_process", [False, True])
def test_eval_with_a_bad_benchmark_file_fails_before_any_server(
    tmp_path, monkeypatch, capsys, content, expected, in_process
):
    monkeypatch.setattr(eval_cmd, "AsyncRationalystClient", NoServer)
    monkeypatch.setattr(eval_cmd, "LocalServer", NoServer)
    data = tmp_path / "data"
    data.mkdir()
    if content is not None:
        (data / "gsm8k.jsonl").write_bytes(content)
    out = tmp_path / "run"
    argv = ["eval", "--dataset", "gsm8k", "--data-dir", str(data), "--out", str(out)]
    assert main.main(argv + (["--in-process"] if in_process else [])) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(data / "gsm8k.jsonl") in line and expected in line, line
    assert not out.exists()  # nothing written for a run that never started


def test_prompts_render_with_an_unusable_agent_model_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("RATIONALYST_AGENT_MODEL", "/nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # No tokenizer may load: importing transformers fails the test if it is reached.
    monkeypatch.setitem(sys.modules, "transformers", None)
    assert main.main(["prompts", "--dataset", "gsm8k", "--render"]) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert line.startswith("rationalyst prompts: ") and "/nope" in line, line
    assert out == ""
