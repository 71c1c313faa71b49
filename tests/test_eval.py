"""`rationalyst eval`: matching rules on real items, the Wilson interval, resuming
against a stub server, and one tiny end-to-end run on the real server (vllm)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import socket
import subprocess
import sys

import pytest

import harness
from harness import DATA, REPO, json_reply
from rationalyst.cli import eval_cmd
from rationalyst.clients import datasets
from rationalyst.clients.datasets import (
    math_equal,
    normalize_math,
    number_equal,
    parse_number,
    wilson,
)

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None  # the `eval` extra

FAMILY = {
    "gsm8k": "math",
    "math": "math_boxed",
    "math_full": "math_boxed",
    "commonsenseqa": "multiple_choice",
    "hellaswag": "multiple_choice",
    "proofwriter": "true_false",
    "arc_challenge": "multiple_choice",
    "mmlu_pro": "multiple_choice",
    "strategyqa": "multiple_choice",
}


# ---- requests and golds on real items ---------------------------------------------


@pytest.mark.parametrize("name", list(datasets.BENCHMARKS))
def test_gold_matches_itself_and_requests_are_well_formed(name):
    bench = datasets.get(name)
    assert bench.task == FAMILY[name]
    items = datasets.load_items(bench, DATA, limit=5)
    assert len(items) == 5
    for item in items:
        req, gold = bench.request(item), bench.gold(item)
        assert req["task"] == bench.task and req["question"].strip()
        if bench.task == "multiple_choice":
            assert len(req["choices"]) >= 2 and ord(gold) - 65 < len(req["choices"])
        else:
            assert req["choices"] is None
        assert bench.correct(item, gold)
        assert not bench.correct(item, None)


def test_gsm8k_number_forms():
    item = datasets.load_items(datasets.get("gsm8k"), DATA, limit=1)[0]
    bench = datasets.get("gsm8k")
    assert item["answer"] == "18"
    for pred in ("18", "18.00", "$18", "18.", " 18 "):
        assert bench.correct(item, pred), pred
    for pred in ("18.5", "1,8", "17", "eighteen", ""):  # no truncation; bad comma fails
        assert not bench.correct(item, pred), pred
    assert number_equal("1234", "1,234") and number_equal("-0.5", "-.5")
    assert parse_number("1,23") is None


def test_math_equivalences():
    assert math_equal("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})")
    assert math_equal("\\frac{1}{2}", "\\dfrac12") and math_equal("\\frac{1}{2}", "0.5")
    assert math_equal("\\frac{14}{3}", "\\tfrac{14}{3}")
    assert math_equal("90^\\circ", "90") and math_equal("5", "5^{\\circ}")
    assert math_equal("\\text{Evelyn}", "Evelyn") and math_equal("x=5", "5")
    assert math_equal("11\\sqrt2", "11\\sqrt{2}") and math_equal("10", "10.")
    assert math_equal("\\$32", "32") and math_equal("2220", "2,220")
    assert math_equal("-\\frac{3}{4}", "-0.75")
    assert not math_equal("p - q", "p + q") and not math_equal("1,-2", "1,2")
    assert not math_equal("5", None) and not math_equal("5", "")
    assert normalize_math("\\left[ 1, 2 \\right)") == "[1,2)"


def test_math500_is_the_default_and_golds_normalise():
    assert datasets.get("math").file == "math500.jsonl"
    assert datasets.get("math_full").file == "math.jsonl"
    bench = datasets.get("math")
    for item in datasets.load_items(bench, DATA, limit=40):
        boxed = item["answer"].replace("\\frac", "\\dfrac") + " "
        assert bench.correct(item, boxed), item["answer"]


def test_letters_truth_and_yes_no():
    arc = datasets.get("arc_challenge")
    item = datasets.load_items(arc, DATA, limit=1)[0]
    assert item["answer"] == "C" and arc.correct(item, "C") and arc.correct(item, "(C)")
    assert not arc.correct(item, "B") and not arc.correct(item, "c is right")
    pw = datasets.get("proofwriter")
    items = datasets.load_items(pw, DATA, limit=30)
    golds = {pw.gold(it) for it in items}
    assert golds <= {"True", "False", "Unknown"} and len(golds) > 1
    first = items[0]  # gold A = True; its question holds context and statement
    assert pw.correct(first, "True") and pw.correct(first, "true")
    assert not pw.correct(first, "Unknown")
    assert first["context"] in pw.request(first)["question"]
    sqa = datasets.get("strategyqa")
    yes, no = datasets.load_items(sqa, DATA, limit=2)
    assert sqa.request(yes)["choices"] == ["Yes", "No"]
    assert sqa.gold(yes) == "A" and sqa.gold(no) == "B" and not sqa.correct(no, "A")


def test_wilson_known_values():
    lo, hi = wilson(50, 100)
    assert math.isclose(lo, 0.4038, abs_tol=1e-4) and math.isclose(hi, 0.5962, abs_tol=1e-4)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and math.isclose(hi, 0.2775, abs_tol=1e-4)
    lo, hi = wilson(10, 10)
    assert math.isclose(lo, 0.7225, abs_tol=1e-4) and hi == 1.0
    assert wilson(0, 0) == (0.0, 0.0)


# ---- resuming, against a stub server ------------------------------------------------


def response(answer: str | None) -> dict:
    return {
        "id": "solve-stub",
        "strategy": "greedy",
        "seed": 0,
        "answer": answer,
        "finish_reason": "answer" if answer else "max_steps",
        "steps": [],
        "usage": {
            "agent_prompt_tokens": 10,
            "agent_completion_tokens": 5,
            "rationale_tokens": 0,
            "scored_tokens": 0,
        },
        "timings": {"sample_ms": 1.0, "rationale_ms": 0.0, "score_ms": 0.0, "total_ms": 250.0},
    }


class StubServer(harness.StubServer):
    """Answers GET /health, and POST /solve from `answer(body)`: a str/None answer or
    an (HTTP status, message) error."""

    def __init__(self, answer) -> None:
        def respond(request: tuple) -> tuple:
            method, _, _, body = request
            if method == "GET":
                return json_reply(200, {"status": "ready"})
            got = answer(body)
            if isinstance(got, tuple):
                return json_reply(got[0], {"error": {"message": got[1], "type": "x"}})
            return json_reply(200, response(got))

        super().__init__(respond)

    @property
    def bodies(self) -> list[dict]:
        return [body for method, _, _, body in self.requests if method == "POST"]


def run_eval(url: str, out, *extra: str) -> int:
    # The stub answers without steps, so grade its `answer` field (lenient).
    return eval_cmd.main(
        [
            "--url",
            url,
            "--out",
            str(out),
            "--data-dir",
            str(DATA),
            "--concurrency",
            "3",
            "--grading",
            "lenient",
            *extra,
        ]
    )


def test_resume_skips_done_items_and_retries_errors(tmp_path):
    def answer(body):
        if "Janet" in body["question"]:
            return "18"  # right
        if "robe" in body["question"]:
            return None  # no answer
        if body["question"].startswith("Josh"):
            return (500, "engine exploded")
        return "0"  # wrong

    stub = StubServer(answer)
    try:
        assert (
            run_eval(
                stub.url,
                tmp_path,
                "--dataset",
                "gsm8k",
                "--strategies",
                "greedy,random",
                "--limit",
                "4",
            )
            == 0
        )
        first = len(stub.bodies)
        assert first == 8
        assert {b["strategy"] for b in stub.bodies} == {"greedy", "random"}
        assert all(b["task"] == "math" and "choices" not in b for b in stub.bodies)
        recs = [json.loads(line) for line in (tmp_path / "items.jsonl").open()]
        assert len(recs) == 8
        janet = next(r for r in recs if r["id"] == "gsm8k-test-0")
        assert janet["correct"] and janet["tokens"] == 15 and janet["time_s"] == 0.25
        assert janet["trace"]["answer"] == "18" and janet["gold"] == "18"
        robe = next(r for r in recs if r["id"] == "gsm8k-test-1")
        assert robe["no_answer"] and not robe["correct"] and robe["prediction"] is None
        josh = next(r for r in recs if r["id"] == "gsm8k-test-2")
        assert "500" in josh["error"] and "engine exploded" in josh["error"]
        summary = (tmp_path / "summary.md").read_text()
        assert "| gsm8k | greedy | 3 | 0.333 |" in summary  # the error is left out of n
        # Second run: only the errored items (one per strategy) are sent again.
        assert (
            run_eval(
                stub.url,
                tmp_path,
                "--dataset",
                "gsm8k",
                "--strategies",
                "greedy,random",
                "--limit",
                "4",
            )
            == 0
        )
        assert len(stub.bodies) == first + 2
        # A larger limit sends only the new items.
        assert (
            run_eval(
                stub.url, tmp_path, "--dataset", "gsm8k", "--strategies", "greedy", "--limit", "6"
            )
            == 0
        )
        assert len(stub.bodies) == first + 2 + 3  # Josh again + items 4, 5
    finally:
        stub.close()


def test_torn_last_line_is_ignored_and_no_server_exits_1(tmp_path):
    (tmp_path / "items.jsonl").write_text('{"dataset": "arc_challenge", "strat')
    stub = StubServer(lambda body: "C")
    try:
        assert (
            run_eval(
                stub.url,
                tmp_path,
                "--dataset",
                "arc_challenge",
                "--strategies",
                "greedy",
                "--limit",
                "2",
            )
            == 0
        )
    finally:
        stub.close()
    recs = eval_cmd.read_records(tmp_path / "items.jsonl")
    assert len(recs) == 2 and recs[("arc_challenge", "greedy", "Mercury_7175875")]["correct"]
    assert stub.bodies[0]["choices"] and stub.bodies[0]["task"] == "multiple_choice"
    assert (tmp_path / "summary.png").exists() == HAVE_MPL
    assert run_eval(stub.url, tmp_path, "--dataset", "arc_challenge", "--limit", "1") == 1


# ---- end to end, on the real server -------------------------------------------------


@pytest.mark.vllm
def test_tiny_end_to_end_run(server, tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rationalyst.cli",
            "eval",
            "--url",
            server.url,
            "--dataset",
            "gsm8k,arc_challenge",
            "--strategies",
            "greedy",
            "--limit",
            "1",
            "--max-steps",
            "2",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in (tmp_path / "items.jsonl").open()]
    assert {(r["dataset"], r["id"]) for r in recs} == {
        ("gsm8k", "gsm8k-test-0"),
        ("arc_challenge", "Mercury_7175875"),
    }
    assert all(r["error"] is None and r["trace"]["steps"] for r in recs)
    summary = (tmp_path / "summary.md").read_text()
    assert "| gsm8k | greedy | 1 |" in summary and "| arc_challenge | greedy | 1 |" in summary
    assert (tmp_path / "summary.png").exists() == HAVE_MPL


@pytest.mark.vllm
def test_in_process_starts_a_private_server_and_stops_it(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rationalyst.cli",
            "eval",
            "--in-process",
            "--dataset",
            "gsm8k",
            "--strategies",
            "greedy",
            "--limit",
            "1",
            "--max-steps",
            "2",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr
    (rec,) = [json.loads(line) for line in (tmp_path / "items.jsonl").open()]
    assert rec["error"] is None and rec["trace"]["steps"]
    log = (tmp_path / "server.log").read_text()
    port = int(re.search(r"Uvicorn running on http://127.0.0.1:(\d+)", log).group(1))
    assert "Application shutdown complete" in log  # stopped cleanly, not killed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_in_process_server_that_cannot_start_is_a_clear_error(tmp_path):
    env = {**os.environ, "RATIONALYST_AGENT_MODEL": str(tmp_path / "no-such-model")}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rationalyst.cli",
            "eval",
            "--in-process",
            "--dataset",
            "gsm8k",
            "--limit",
            "1",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 1
    assert "server exited with status 2 while starting" in p.stderr, p.stderr
    assert "no-such-model" in p.stderr  # the server's own message, from its log


def test_limit_0_runs_every_item_of_the_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    lines = (DATA / "gsm8k.jsonl").read_text().splitlines()[:3]
    (data / "gsm8k.jsonl").write_text("\n".join(lines) + "\n")
    stub = StubServer(lambda body: "0")
    try:
        assert (
            run_eval(
                stub.url,
                tmp_path / "out",
                "--dataset",
                "gsm8k",
                "--strategies",
                "greedy",
                "--limit",
                "0",
                "--data-dir",
                str(data),
            )
            == 0
        )
        assert len(stub.bodies) == 3
    finally:
        stub.close()
