"""Scoring on a `vllm serve` through its prefix cache, by its token route.

`vllm serve --enable-scale-out` registers `POST /inference/v1/generate`, which takes
token ids and a whole SamplingParams object, so a scoring request can read the
prefix cache (`skip_reading_prefix_cache: false`) as in-process. The positions the
cache covered carry garbage log-probs; the response tells how many there are only
when the server also runs with `--enable-prompt-tokens-details`
(`usage.prompt_tokens_details.cached_tokens`). Both flags are checked at start-up;
without them the engine scores through `/v1/completions`, paying full prefill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .engine import EngineError, Scores
from .prefix_scoring import score_cached, usable

if TYPE_CHECKING:
    from .remote_engine import RemoteEngine

ROUTE = "/inference/v1/generate"
CACHED = "remote, prefix cache (/inference/v1/generate)"
FULL = "remote, full prefill (/v1/completions)"
NO_ROUTE = (f"{ROUTE} is not served: start vllm serve with --enable-scale-out "
            "--enable-prompt-tokens-details to score from its prefix cache")
NO_COUNT = ("the server does not report cached tokens: add "
            "--enable-prompt-tokens-details to vllm serve to score from its prefix cache")

# detokenize False: detokenizing the log-probs of cached positions crashes vLLM.
_PRIME = {"max_tokens": 1, "temperature": 0.0, "detokenize": False}
_SCORE = {**_PRIME, "prompt_logprobs": 0}
# vLLM's answer when the garbage log-probs at cached positions hold a NaN or inf.
_GARBAGE = "Out of range float values are not JSON compliant"
_TRIES = 3


def _cached_tokens(data: dict) -> int | None:
    details = (data.get("usage") or {}).get("prompt_tokens_details") or {}
    return details.get("cached_tokens")


async def _generate(eng: "RemoteEngine", ids: list[int], params: dict,
                    request_id: str) -> dict:
    return await eng._request("POST", ROUTE, {"model": eng.served, "token_ids": ids,
                                              "sampling_params": params,
                                              "request_id": request_id})


async def probe(eng: "RemoteEngine") -> tuple[str, str | None]:
    """(scoring path, why not the cached one) for the server behind `eng`."""
    try:
        data = await _generate(eng, eng._ids("probe"),
                               {**_SCORE, "skip_reading_prefix_cache": False},
                               "rationalyst-probe")
    except EngineError as exc:
        # 404 without the route, 403 where vLLM registers it disabled.
        if any(f" {code}:" in str(exc) for code in (403, 404, 405)):
            return FULL, NO_ROUTE
        raise
    if _cached_tokens(data) is None:
        return FULL, NO_COUNT
    return CACHED, None


# Cache hits are whole KV blocks. In-process we use 32-token ones on the CPU; vllm
# serve on a CPU defaults to 128, and then each scored step re-prefills up to 127
# prefix tokens (docs/performance.md). The same prompt sent twice tells: the second
# reads floor(n / block) * block of its first n tokens from the cache, all n with
# blocks of 32 or fewer (n = 5 * 32, so 64- and 128-token blocks fall short).
BLOCK = 32
_BLOCK_PROBE = 5 * BLOCK


async def block_note(eng: "RemoteEngine") -> str | None:
    """Why cached scoring on this server re-prefills more than in-process, or None."""
    ids = eng._ids(" probe")[-1:] * (_BLOCK_PROBE + 1)  # the last one is never cached
    hits = [_cached_tokens(await _generate(eng, ids, _PRIME, f"rationalyst-block-{i}"))
            for i in range(2)]
    if hits[1] is None or hits[1] >= _BLOCK_PROBE:
        return None
    return (f"a repeated prompt read {hits[1]} of {_BLOCK_PROBE} tokens from the prefix "
            f"cache: the server's KV blocks are larger than {BLOCK} tokens (or prefix "
            "caching is off), so cached scoring prefills up to a block again per step; "
            f"start vllm serve with --block-size {BLOCK}")


async def score(eng: "RemoteEngine", pids: list[int], conts: list[list[int]],
                request_id: str) -> Scores:
    """Prime the prefix, then one request per continuation reading the cache; only
    positions past each response's cached tokens are read (prefix_scoring)."""
    p = len(pids)

    async def prime() -> int:
        data = await _generate(eng, pids, _PRIME, f"{request_id}-prime")
        return p - (_cached_tokens(data) or 0)

    seen_hit = 0  # the largest cache hit of this call so far, to count failed tries

    async def one(name: str, cont: list[int], cached: bool):
        nonlocal seen_hit
        ids, wasted = pids + cont, 0
        for attempt in range(_TRIES if cached else 1):
            try:
                data = await _generate(eng, ids, {**_SCORE,
                                                  "skip_reading_prefix_cache": not cached},
                                       f"{request_id}-{name}-{attempt}")
            except EngineError as exc:
                if not (cached and _GARBAGE in str(exc)):
                    raise
                # The garbage at cached positions held a NaN or inf, which vLLM cannot
                # put in JSON; the next try gets other garbage (docs/performance.md).
                eng.garbage_retries += 1
                wasted += len(ids) - min(seen_hit, p)
                continue
            hit = _cached_tokens(data) if cached else 0
            seen_hit = max(seen_hit, hit or 0)
            lps = data.get("prompt_logprobs") or []
            row = usable(lambda i, t: lps[i][str(t)]["logprob"], p, cont, hit)
            return row, wasted + len(ids) - (hit or 0)
        return [None] * len(cont), wasted  # re-scored without the cache

    return await score_cached(conts, prime, one)
