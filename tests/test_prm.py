"""The `prm` strategy: a process reward model scores each candidate trajectory.

The PRM is a tiny random Qwen2ForProcessRewardModel that this module builds (no PRM
weights can be downloaded here), run through vLLM's real pooling runner, in-process
and behind `vllm serve --runner pooling`. The agent is the scripted engine (no model
code; see tests/harness.py): the PRM is what is under test. The aggregation, tie and
cancellation tests use a scripted PRM."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import httpx
import pytest

from harness import LoopServer, answering_engine, vllm_server
from rationalyst.supervisor.engine import Engines
from rationalyst.supervisor.loop import solve_all
from rationalyst.supervisor.prm import PRESETS, InProcessPRM, PRMScores, RemotePRM
from rationalyst.supervisor.scripted_engine import ScriptedEngine
from rationalyst.supervisor.strategies.prm import aggregate
from rationalyst.supervisor.types import Problem, SolveParams

PROBLEM = Problem("What is 2 + 3?", "math")
CANDS = ["add two and three", "the sum is five", "guess six"]


def build_prm(tokenizer_dir: Path, out: Path) -> Path:
    """A 2-layer random Qwen2 PRM: vLLM's head names (score.0, score.2), head_dim 64
    (vLLM-CPU's attention), and Qwen's step tag <extra_0> added to the tokenizer."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        num_labels=2,
        architectures=["Qwen2ForProcessRewardModel"],
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    weights = {f"model.{k}": v.contiguous() for k, v in Qwen2Model(cfg).state_dict().items()}
    h = cfg.hidden_size
    weights.update(
        {
            "score.0.weight": torch.randn(h, h) * 0.3,
            "score.0.bias": torch.zeros(h),
            "score.2.weight": torch.randn(2, h) * 0.3,
            "score.2.bias": torch.zeros(2),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    cfg.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def prm_model(default_model, tmp_path_factory) -> Path:
    return build_prm(default_model, tmp_path_factory.mktemp("prm"))


@pytest.fixture(scope="module")
async def local_prm(prm_model):
    prm = InProcessPRM.load(str(prm_model), "tiny-prm", "qwen2.5-math-prm")
    yield prm
    await prm.close()


def flat(rows) -> list[float]:
    return [x for row in rows for x in row]


def params(**kw) -> SolveParams:
    return SolveParams(**{"strategy": "prm", "num_candidates": 3, "max_steps": 1, "seed": 1, **kw})


def agent() -> ScriptedEngine:
    return ScriptedEngine(steps=lambda p, n, s: CANDS[:n])


# ---- scripted PRM: aggregation, ties, cancellation -------------------------------------


class ScriptedPRM:
    """Step scores from a table keyed by the trajectory's last step."""

    def __init__(self, table: dict[str, list[float]], gate: asyncio.Event | None = None):
        self.table, self.gate, self.calls, self.cancelled = table, gate, [], 0

    async def score(self, question, trajectories, request_id, session=None):
        self.calls.append([list(t) for t in trajectories])
        if self.gate:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return PRMScores([self.table[t[-1]] for t in trajectories], 10 * len(trajectories))


@pytest.mark.parametrize("how, winner", [("last", 0), ("min", 1), ("prod", 2)])
async def test_aggregation_picks_the_argmax(how, winner):
    # last: .9 .8 .55; min: .1 .6 .55; prod: .09 .48 .5445
    table = {CANDS[0]: [0.1, 0.9], CANDS[1]: [0.6, 0.8], CANDS[2]: [0.99, 0.55]}
    prm = ScriptedPRM(table)
    eng = agent()
    result = await solve_all(PROBLEM, params(prm_aggregation=how), Engines(eng, eng, eng, prm=prm))
    cands = result.steps[0].candidates
    want = [aggregate(table[c], how) for c in CANDS]
    assert [c.score for c in cands] == pytest.approx(want)
    assert max(range(3), key=lambda i: want[i]) == winner and cands[winner].chosen
    assert [c.step_scores for c in cands] == [table[c] for c in CANDS]


def test_aggregate():
    assert aggregate([0.5, 0.2, 0.9], "last") == 0.9
    assert aggregate([0.5, 0.2, 0.9], "min") == 0.2
    assert aggregate([0.5, 0.2, 0.9], "prod") == pytest.approx(0.09)


async def test_ties_go_to_the_first_and_the_trajectory_reaches_the_prm():
    prm = ScriptedPRM({CANDS[0]: [0.3], CANDS[1]: [0.8], CANDS[2]: [0.8]})
    eng = agent()
    result = await solve_all(PROBLEM, params(max_steps=2), Engines(eng, eng, eng, prm=prm))
    assert [s.text for s in result.steps] == [CANDS[1], CANDS[1]]
    assert prm.calls[1] == [[CANDS[1], c] for c in CANDS]  # step 2: chosen step + each
    assert result.usage.verifier_prompt_tokens == 60


async def test_a_deadline_cancels_the_prm_call():
    prm = ScriptedPRM({}, gate=asyncio.Event())
    eng = agent()
    result = await solve_all(PROBLEM, params(timeout_s=0.5), Engines(eng, eng, eng, prm=prm))
    assert result.finish_reason == "timeout" and prm.cancelled == 1


def test_prm_without_a_prm_configured_is_400_before_any_work():
    engine = answering_engine()
    with LoopServer(engine) as srv:
        for stream in (False, True):
            r = httpx.post(
                srv.url + "/solve", json={"question": "q", "strategy": "prm", "stream": stream}
            )
            assert r.status_code == 400
            assert "RATIONALYST_PRM_MODEL" in r.json()["error"]["message"]
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            json={"model": "prm", "messages": [{"role": "user", "content": "q"}]},
        )
        assert r.status_code == 400 and "RATIONALYST_PRM_MODEL" in r.text
        r = httpx.post(
            srv.url + "/solve", json={"question": "q", "strategy": "prm", "prm_aggregation": "mean"}
        )
        assert r.status_code == 422 and r.json()["error"]["param"] == "prm_aggregation"
        models = httpx.get(srv.url + "/health").json()["models"]
        assert "prm" not in models and models["judge"] == models["agent"]  # the agent judges

        class NamedPRM:  # only what /health reads of a PRM
            name = "tiny-prm"

            async def check(self) -> None:
                return None

        srv.server.config.app.state.engines.prm = NamedPRM()
        assert httpx.get(srv.url + "/health").json()["models"]["prm"] == "tiny-prm"
    assert not engine.requests


# ---- the real pooling runner ----------------------------------------------------------


@pytest.mark.vllm
async def test_in_process_prm_scores_each_step_of_each_candidate(local_prm):
    assert local_prm.step_tag_id == local_prm.tokenizer.convert_tokens_to_ids("<extra_0>")
    trajectories = [["2 + 3 = 5", "The answer is 5"], ["2 + 3 = 6"], ["five"]]
    scores = await local_prm.score(PROBLEM.question, trajectories, "t-prm")
    assert [len(s) for s in scores.steps] == [2, 1, 1]
    probs = flat(scores.steps)
    assert all(0.0 < p < 1.0 for p in probs) and len(set(probs)) == len(probs)
    assert scores.prompt_tokens == sum(
        len(local_prm.ids(PROBLEM.question, t)) for t in trajectories
    )
    # The step tag sits after each step in the assistant turn of the PRM's template.
    text = local_prm.tokenizer.decode(local_prm.ids(PROBLEM.question, trajectories[0]))
    assert "2 + 3 = 5<extra_0>The answer is 5<extra_0>" in text
    assert PRESETS["qwen2.5-math-prm"].system in text
    again = await local_prm.score(PROBLEM.question, trajectories[1:], "t-prm2")
    assert flat(again.steps) == pytest.approx(flat(scores.steps[1:]), abs=1e-5)


@pytest.mark.vllm
async def test_prm_strategy_takes_the_argmax_of_the_real_prm(local_prm):
    eng = agent()
    result = await solve_all(PROBLEM, params(max_steps=2), Engines(eng, eng, eng, prm=local_prm))
    first = result.steps[0]
    direct = await local_prm.score(PROBLEM.question, [[c] for c in CANDS], "t-direct")
    assert flat(c.step_scores for c in first.candidates) == pytest.approx(
        flat(direct.steps), abs=1e-5
    )
    assert [c.score for c in first.candidates] == pytest.approx(
        [s[-1] for s in direct.steps], abs=1e-5
    )
    best = max(range(3), key=lambda i: (first.candidates[i].score, -i))
    assert first.candidates[best].chosen and first.text == CANDS[best]
    assert all(len(c.step_scores) == 2 for c in result.steps[1].candidates)


@pytest.mark.vllm
async def test_remote_prm_through_vllm_serve_pooling_matches_in_process(
    prm_model, local_prm, tmp_path
):
    pooler = json.dumps({"step_tag_id": local_prm.step_tag_id})
    srv = vllm_server(
        prm_model, tmp_path / "vllm-prm.log", "--runner", "pooling", "--pooler-config", pooler
    )
    url = srv.start()
    remote = RemotePRM(url, "tiny", local_prm.tokenizer, "qwen2.5-math-prm", "tiny-prm")
    try:
        await remote.check()
        trajectories = [["2 + 3 = 5", "The answer is 5"], ["2 + 3 = 6"]]
        got = await remote.score(PROBLEM.question, trajectories, "r-prm")
        want = await local_prm.score(PROBLEM.question, trajectories, "l-prm")
        assert [len(r) for r in got.steps] == [2, 1]
        assert flat(got.steps) == pytest.approx(flat(want.steps), abs=1e-4)
        eng = agent()
        result = await solve_all(PROBLEM, params(), Engines(eng, eng, eng, prm=remote))
        cands = result.steps[0].candidates
        assert all(c.score is not None and math.isfinite(c.score) for c in cands)
        best = max(range(3), key=lambda i: (cands[i].score, -i))
        assert cands[best].chosen
    finally:
        await remote.close()
        srv.kill()
