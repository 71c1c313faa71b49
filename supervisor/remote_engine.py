"""A model served by a `vllm serve` OpenAI-compatible server, behind the Engine protocol.

Prompts go out as token ids rendered and tokenized on our side with the model's
own tokenizer, exactly as in-process, so there is no tokenizer drift between us
and the server.

Scoring goes through the server's prefix cache, by its token route, where the server
allows: `vllm serve --enable-scale-out` registers `POST /inference/v1/generate`, which
takes token ids and a whole SamplingParams object, so a scoring request can read the
prefix cache (`skip_reading_prefix_cache: false`) as in-process. The positions the
cache covered carry garbage log-probs; the response tells how many there are only
when the server also runs with `--enable-prompt-tokens-details`
(`usage.prompt_tokens_details.cached_tokens`). Both flags are checked at start-up;
without them the engine scores through `/v1/completions`, paying full prefill.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx
from httpx_sse import EventSource

from .chat_tokens import ChatTokens
from .engine import Completion, EngineError, Generation, PromptTooLong, SampleParams, Scores
from .prefix_scoring import score_cached, usable

log = logging.getLogger(__name__)

# vllm serve merges the checkpoint's generation_config defaults into requests that
# leave these unset; AsyncLLM in-process does not. Pin them so both engines sample
# from the same distribution and the same seed gives the same steps.
_NEUTRAL = {
    "top_k": 0,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}


SESSION_HEADER = "X-Session-Id"


def session_header(session: str | None) -> dict:
    # For a gateway in front of several replicas: hashing on it keeps a solve on one
    # replica, and so on its prefix cache.
    return {SESSION_HEADER: session} if session else {}


# The scoring paths (connect() picks one), and why not the cached one.
ROUTE = "/inference/v1/generate"
CACHED = "remote, prefix cache (/inference/v1/generate)"
FULL = "remote, full prefill (/v1/completions)"
NO_ROUTE = (
    f"{ROUTE} is not served: start vllm serve with --enable-scale-out "
    "--enable-prompt-tokens-details to score from its prefix cache"
)
NO_COUNT = (
    "the server does not report cached tokens: add "
    "--enable-prompt-tokens-details to vllm serve to score from its prefix cache"
)

# detokenize False: detokenizing the log-probs of cached positions crashes vLLM.
BLOCK = 32  # tokens per KV block, as the in-process CPU engine uses
_PRIME = {"max_tokens": 1, "temperature": 0.0, "detokenize": False}
_SCORE = {**_PRIME, "prompt_logprobs": 0}
# vLLM's answer when the garbage log-probs at cached positions hold a NaN or inf.
_GARBAGE = "Out of range float values are not JSON compliant"
_TRIES = 3


class Unreachable(EngineError):
    """The server did not answer (down, or the connection broke): another replica
    may serve the request instead."""


class RemoteEngine(ChatTokens):
    def __init__(
        self,
        url: str,
        model: str,
        name: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        max_concurrency: int = 64,
        tokenizer=None,
    ):
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model)
        self.url = url.rstrip("/")
        self.model = model  # the checkpoint the server is expected to run
        self.name = name
        self.served = name  # the server's id for it, set by connect()
        self.max_model_len = 0
        self.tokenizer = tokenizer
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )
        # Bounds what one supervisor replica puts on this server at once.
        self._slots = asyncio.Semaphore(max_concurrency)
        # Set by connect(): the scoring path this server allows, and why not the
        # cached one. False: always the /v1/completions way (benchmarks compare).
        self.scoring, self.scoring_note = FULL, None
        self.score_from_prefix_cache = True
        self.garbage_retries = 0  # see _score_cached

    async def connect(self) -> RemoteEngine:
        """Check at start-up that the server is up and serves the configured model."""
        data = await self._request("GET", "/v1/models")
        cards = data.get("data") or []
        wanted = {self.model, self.name}
        match = next((c for c in cards if {c.get("id"), c.get("root")} & wanted), None)
        if match is None:
            served = [c.get("id") for c in cards]
            raise EngineError(
                f"the vLLM server at {self.url} serves {served}, not {self.model!r}: point "
                f"the URL at a server of that model, or set the model setting to the "
                "checkpoint that server runs (it is needed here for its tokenizer)"
            )
        self.served = match["id"]
        self.max_model_len = int(
            match.get("max_model_len") or getattr(self.tokenizer, "model_max_length", 0) or 2048
        )
        self.scoring, self.scoring_note = await self._probe_scoring()
        if self.scoring_note:
            log.warning("%s: %s", self.url, self.scoring_note)
        elif note := await self._block_note():
            log.warning("%s: %s", self.url, note)
        return self

    async def check(self) -> None:
        await self._request("GET", "/health", raw=True)

    async def _request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        raw: bool = False,
        session: str | None = None,
    ):
        # A call without a session (a probe, a one-off) is its own.
        session = session or (body or {}).get("request_id")
        try:
            async with self._slots:
                r = await self.client.request(
                    method, path, json=body, headers=session_header(session)
                )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
            raise Unreachable(f"the vLLM server at {self.url} is unreachable ({exc!r})") from exc
        except httpx.TimeoutException as exc:
            raise EngineError(f"the vLLM server at {self.url} timed out ({exc!r})") from exc
        except httpx.TransportError as exc:
            raise Unreachable(f"the vLLM server at {self.url} is unreachable ({exc!r})") from exc
        self._check_status(r)
        return r if raw else r.json()

    def _check_status(self, r: httpx.Response) -> None:
        if r.status_code == 400 and "context" in r.text.lower():
            raise PromptTooLong(_message(r))
        if r.status_code >= 400:
            raise EngineError(
                f"the vLLM server at {self.url} answered {r.status_code}: {_message(r)}"
            )

    def _body(self, ids: list[int], params: SampleParams, request_id: str) -> dict:
        self._check_fits(len(ids), params.max_tokens)
        return {
            "model": self.served,
            "prompt": ids,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stop": list(params.stop),
            "stop_token_ids": list(params.stop_token_ids),
            "seed": params.seed,
            "logprobs": 0,
            "request_id": request_id,
            **_NEUTRAL,
            **params.extra,
        }

    # -- Engine protocol ------------------------------------------------------------
    async def sample(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ) -> Generation:
        ids = self._ids(prompt)
        data = await self._request(
            "POST", "/v1/completions", self._body(ids, params, request_id), session=session
        )
        comps = []
        for ch in sorted(data["choices"], key=lambda c: c["index"]):
            lps = [
                x for x in (ch.get("logprobs") or {}).get("token_logprobs") or [] if x is not None
            ]
            comps.append(
                Completion(
                    ch["text"],
                    len(lps),
                    sum(lps) / len(lps) if lps else None,
                    ch.get("finish_reason"),
                    lps,
                )
            )
        return Generation(comps, len(ids), _cached_tokens(data))

    async def generate(
        self,
        prompt: str,
        max_tokens: int,
        stop: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Generation:
        params = SampleParams(n=1, temperature=0.0, max_tokens=max_tokens, stop=tuple(stop))
        return await self.sample(prompt, params, request_id, session=session)

    async def generate_choice(
        self,
        prompt: str,
        choices: Sequence[str],
        max_tokens: int,
        request_id: str,
        *,
        session: str | None = None,
    ) -> Generation:
        """Greedy, the reply forced to one of `choices` by the server's structured
        outputs (vLLM 0.32's completions field; the judge's reward, as in-process)."""
        params = SampleParams(
            n=1,
            temperature=0.0,
            max_tokens=max_tokens,
            extra={"structured_outputs": {"choice": list(choices)}},
        )
        return await self.sample(prompt, params, request_id, session=session)

    async def stream(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ):
        body = {
            **self._body(self._ids(prompt), params, request_id),
            "n": 1,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        body.pop("logprobs")
        n_tokens, reason = 0, None
        try:
            async with (
                self._slots,
                self.client.stream(
                    "POST",
                    "/v1/completions",
                    json=body,
                    headers=session_header(session or request_id),
                ) as r,
            ):
                if r.status_code >= 400:
                    await r.aread()
                    self._check_status(r)
                async for sse in EventSource(r).aiter_sse():
                    if sse.data == "[DONE]":
                        break
                    chunk = sse.json()
                    for ch in chunk.get("choices") or []:
                        n_tokens += 1  # about one token a chunk; corrected by usage
                        reason = ch.get("finish_reason") or reason
                        yield Completion(ch.get("text") or "", n_tokens, None, reason)
                    if chunk.get("usage"):  # last: the exact count
                        yield Completion("", chunk["usage"]["completion_tokens"], None, reason)
        except httpx.TransportError as exc:
            raise Unreachable(f"the vLLM server at {self.url} is unreachable ({exc!r})") from exc

    async def score(
        self,
        prefix: str,
        continuations: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Scores:
        pids = self._ids(prefix)
        conts = [self._ids(c) for c in continuations]
        live = [i for i, c in enumerate(conts) if c]
        self._check_fits(len(pids) + max((len(c) for c in conts), default=0), 1)
        out: list[list[float]] = [[] for _ in conts]
        if not live:
            return Scores(out, 0)
        if self.scoring == CACHED and self.score_from_prefix_cache:
            return await self._score_cached(pids, conts, request_id, session)
        # One batched request; /v1/completions cannot read the prefix cache for prompt
        # log-probs, so every prompt is prefilled in full (and counted so).
        prompts = [pids + conts[i] for i in live]
        data = await self._request(
            "POST",
            "/v1/completions",
            {
                "model": self.served,
                "prompt": prompts,
                "max_tokens": 1,
                "temperature": 0.0,
                "prompt_logprobs": 0,
                "request_id": request_id,
            },
            session=session,
        )
        p = len(pids)
        for ch in data["choices"]:
            i = live[ch["index"]]
            lps = ch["prompt_logprobs"]
            out[i] = [lps[p + j][str(t)]["logprob"] for j, t in enumerate(conts[i])]
        return Scores(out, sum(len(x) for x in prompts))

    # -- scoring through the prefix cache (see the module's docstring) ---------------
    async def _generate_tokens(
        self, ids: list[int], params: dict, request_id: str, session: str | None = None
    ) -> dict:
        return await self._request(
            "POST",
            ROUTE,
            {
                "model": self.served,
                "token_ids": ids,
                "sampling_params": params,
                "request_id": request_id,
            },
            session=session,
        )

    async def _probe_scoring(self) -> tuple[str, str | None]:
        """(scoring path, why not the cached one) for this server."""
        try:
            data = await self._generate_tokens(
                self._ids("probe"),
                {**_SCORE, "skip_reading_prefix_cache": False},
                "rationalyst-probe",
            )
        except EngineError as exc:
            # 404 without the route, 403 where vLLM registers it disabled.
            if any(f" {code}:" in str(exc) for code in (403, 404, 405)):
                return FULL, NO_ROUTE
            raise
        if _reported_cached(data) is None:
            return FULL, NO_COUNT
        return CACHED, None

    async def _block_note(self) -> str | None:
        """Why cached scoring on this server re-prefills more than in-process, or None.

        Cache hits are whole KV blocks. In-process we use 32-token ones on the CPU; vllm
        serve on a CPU defaults to 128, and then each scored step re-prefills up to 127
        prefix tokens (docs/performance.md). The same prompt sent twice tells: the second
        reads floor(n / block) * block of its first n tokens from the cache, all n with
        blocks of 32 or fewer (n = 5 * 32, so 64- and 128-token blocks fall short)."""
        n = 5 * BLOCK
        ids = self._ids(" probe")[-1:] * (n + 1)  # the last one is never cached
        hits = [
            _cached_tokens(await self._generate_tokens(ids, _PRIME, f"rationalyst-block-{i}"))
            for i in range(2)
        ]
        if hits[1] >= n:
            return None
        return (
            f"a repeated prompt read {hits[1]} of {n} tokens from the prefix cache: "
            f"the server's KV blocks are larger than {BLOCK} tokens (or prefix caching "
            "is off), so cached scoring prefills up to a block again per step; start "
            f"vllm serve with --block-size {BLOCK}"
        )

    async def _score_cached(
        self, pids: list[int], conts: list[list[int]], request_id: str, session: str | None
    ) -> Scores:
        """Prime the prefix, then one request per continuation reading the cache; only
        positions past each response's cached tokens are read (prefix_scoring)."""
        p = len(pids)

        async def prime() -> int:
            data = await self._generate_tokens(pids, _PRIME, f"{request_id}-prime", session)
            return p - (_reported_cached(data) or 0)

        seen_hit = 0  # the largest cache hit of this call so far, to count failed tries

        async def one(name: str, cont: list[int], cached: bool):
            nonlocal seen_hit
            ids, wasted = pids + cont, 0
            for attempt in range(_TRIES if cached else 1):
                try:
                    data = await self._generate_tokens(
                        ids,
                        {**_SCORE, "skip_reading_prefix_cache": not cached},
                        f"{request_id}-{name}-{attempt}",
                        session,
                    )
                except EngineError as exc:
                    if not (cached and _GARBAGE in str(exc)):
                        raise
                    # The garbage at cached positions held a NaN or inf, which vLLM
                    # cannot put in JSON; the next try gets other garbage
                    # (docs/performance.md).
                    self.garbage_retries += 1
                    wasted += len(ids) - min(seen_hit, p)
                    continue
                hit = _reported_cached(data) if cached else 0
                seen_hit = max(seen_hit, hit or 0)
                lps = data.get("prompt_logprobs") or []
                row = usable(lambda i, t: lps[i][str(t)]["logprob"], p, cont, hit)
                return row, wasted + len(ids) - (hit or 0)
            return [None] * len(cont), wasted  # re-scored without the cache

        return await score_cached(conts, prime, one)

    async def close(self) -> None:
        await self.client.aclose()


def _cached_tokens(data: dict) -> int:
    # Reported only by a server run with --enable-prompt-tokens-details.
    return _reported_cached(data) or 0


def _reported_cached(data: dict) -> int | None:
    """The prompt tokens read from the prefix cache; None where not reported."""
    details = (data.get("usage") or {}).get("prompt_tokens_details") or {}
    return details.get("cached_tokens")


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
        err = body.get("error", body)
        return err.get("message") if isinstance(err, dict) else str(err)
    except ValueError:
        return r.text[:500]
