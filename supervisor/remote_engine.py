"""A model served by a `vllm serve` OpenAI-compatible server, behind the Engine protocol.

Prompts go out as token ids rendered and tokenized on our side with the model's
own tokenizer, exactly as in-process, so there is no tokenizer drift between us
and the server.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Sequence

import httpx
from httpx_sse import EventSource

from . import remote_scoring
from .chat_tokens import ChatTokens
from .engine import Completion, EngineError, Generation, PromptTooLong, SampleParams, Scores

log = logging.getLogger(__name__)

# vllm serve merges the checkpoint's generation_config defaults into requests that
# leave these unset; AsyncLLM in-process does not. Pin them so both engines sample
# from the same distribution and the same seed gives the same steps.
_NEUTRAL = {"top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0,
            "presence_penalty": 0.0, "frequency_penalty": 0.0}


# The loop's request ids are "<solve id>-<step>-<kind>" (loop.py, strategies.py), and
# scoring appends its own suffixes ("-prime", "-0-0").
_STEP_ID = re.compile(r"^(.+)-\d+-(?:sample|rationale|score|greedy)(?:-[\w-]*)?$")
SESSION_HEADER = "X-Session-Id"


def solve_key(request_id: str) -> str:
    """The solve a request belongs to: what keeps it on one replica."""
    m = _STEP_ID.match(request_id)
    return m.group(1) if m else request_id


def session_header(request_id: str | None) -> dict:
    # For a gateway in front of several replicas: hashing on it keeps a solve on one
    # replica, and so on its prefix cache.
    return {SESSION_HEADER: solve_key(request_id)} if request_id else {}


class Unreachable(EngineError):
    """The server did not answer (down, or the connection broke): another replica
    may serve the request instead."""


class RemoteEngine(ChatTokens):
    def __init__(self, url: str, model: str, name: str, *, api_key: str | None = None,
                 timeout_s: float = 300.0, max_concurrency: int = 64, tokenizer=None):
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
            base_url=self.url, headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=max_concurrency,
                                max_keepalive_connections=max_concurrency))
        # Bounds what one supervisor replica puts on this server at once.
        self._slots = asyncio.Semaphore(max_concurrency)
        # Set by connect(): the scoring path this server allows, and why not the
        # cached one. False: always the /v1/completions way (benchmarks compare).
        self.scoring, self.scoring_note = remote_scoring.FULL, None
        self.score_from_prefix_cache = True
        self.garbage_retries = 0  # see remote_scoring

    async def connect(self) -> "RemoteEngine":
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
                "checkpoint that server runs (it is needed here for its tokenizer)")
        self.served = match["id"]
        self.max_model_len = int(match.get("max_model_len") or
                                 getattr(self.tokenizer, "model_max_length", 0) or 2048)
        self.scoring, self.scoring_note = await remote_scoring.probe(self)
        if self.scoring_note:
            log.warning("%s: %s", self.url, self.scoring_note)
        elif note := await remote_scoring.block_note(self):
            log.warning("%s: %s", self.url, note)
        return self

    async def check(self) -> None:
        await self._request("GET", "/health", raw=True)

    async def _request(self, method: str, path: str, body: dict | None = None,
                       raw: bool = False):
        rid = (body or {}).get("request_id")
        try:
            async with self._slots:
                r = await self.client.request(method, path, json=body,
                                              headers=session_header(rid))
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
            raise EngineError(f"the vLLM server at {self.url} answered {r.status_code}: "
                              f"{_message(r)}")

    def _body(self, ids: list[int], params: SampleParams, request_id: str) -> dict:
        self._check_fits(len(ids), params.max_tokens)
        return {"model": self.served, "prompt": ids, "n": params.n,
                "temperature": params.temperature, "top_p": params.top_p,
                "max_tokens": params.max_tokens, "stop": list(params.stop),
                "stop_token_ids": list(params.stop_token_ids),
                "seed": params.seed, "logprobs": 0, "request_id": request_id, **_NEUTRAL}

    # -- Engine protocol ------------------------------------------------------------
    async def sample(self, prompt: str, params: SampleParams, request_id: str) -> Generation:
        ids = self._ids(prompt)
        data = await self._request("POST", "/v1/completions",
                                   self._body(ids, params, request_id))
        comps = []
        for ch in sorted(data["choices"], key=lambda c: c["index"]):
            lps = [x for x in (ch.get("logprobs") or {}).get("token_logprobs") or []
                   if x is not None]
            comps.append(Completion(ch["text"], len(lps), sum(lps) / len(lps) if lps else None,
                                    ch.get("finish_reason"), lps))
        return Generation(comps, len(ids), _cached_tokens(data))

    async def generate(self, prompt: str, max_tokens: int, stop: Sequence[str],
                       request_id: str) -> Generation:
        params = SampleParams(n=1, temperature=0.0, max_tokens=max_tokens, stop=tuple(stop))
        return await self.sample(prompt, params, request_id)

    async def stream(self, prompt: str, params: SampleParams, request_id: str):
        body = {**self._body(self._ids(prompt), params, request_id), "n": 1, "stream": True,
                "stream_options": {"include_usage": True}}
        body.pop("logprobs")
        n_tokens, reason = 0, None
        try:
            async with self._slots, self.client.stream(
                    "POST", "/v1/completions", json=body,
                    headers=session_header(request_id)) as r:
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

    async def score(self, prefix: str, continuations: Sequence[str],
                    request_id: str) -> Scores:
        pids = self._ids(prefix)
        conts = [self._ids(c) for c in continuations]
        live = [i for i, c in enumerate(conts) if c]
        self._check_fits(len(pids) + max((len(c) for c in conts), default=0), 1)
        out: list[list[float]] = [[] for _ in conts]
        if not live:
            return Scores(out, 0)
        if self.scoring == remote_scoring.CACHED and self.score_from_prefix_cache:
            return await remote_scoring.score(self, pids, conts, request_id)
        # One batched request; /v1/completions cannot read the prefix cache for prompt
        # log-probs, so every prompt is prefilled in full (and counted so).
        prompts = [pids + conts[i] for i in live]
        data = await self._request("POST", "/v1/completions", {
            "model": self.served, "prompt": prompts, "max_tokens": 1, "temperature": 0.0,
            "prompt_logprobs": 0, "request_id": request_id})
        p = len(pids)
        for ch in data["choices"]:
            i = live[ch["index"]]
            lps = ch["prompt_logprobs"]
            out[i] = [lps[p + j][str(t)]["logprob"] for j, t in enumerate(conts[i])]
        return Scores(out, sum(len(x) for x in prompts))

    async def close(self) -> None:
        await self.client.aclose()


def _cached_tokens(data: dict) -> int:
    # Reported only by a server run with --enable-prompt-tokens-details.
    details = (data.get("usage") or {}).get("prompt_tokens_details") or {}
    return details.get("cached_tokens") or 0


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
        err = body.get("error", body)
        return err.get("message") if isinstance(err, dict) else str(err)
    except ValueError:
        return r.text[:500]
