"""A scripted fake of the Engine protocol, for unit tests and pipeline benchmarks.

It imports no model code: outputs come from scripts, latency from asyncio.sleep,
and every call is logged so tests can check ordering, routing and cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from .engine import Completion, EngineError, Generation, SampleParams, Scores

# A script is a list indexed by call number, or a function of the call's inputs.
StepsScript = Sequence[Sequence[str]] | Callable[[str, int, "int | None"], list[str]]
TextScript = Sequence[str] | Callable[[str], str]
ScoreFn = Callable[[str, str], list[float]]


def hash_scores(prefix: str, continuation: str) -> list[float]:
    """Deterministic per-token log-probs in (-10, 0], from the text alone."""
    return [
        -(zlib.crc32(f"{prefix[-64:]}|{w}".encode()) % 1000) / 100 for w in continuation.split()
    ]


def _pick(script, call: int, *args):
    if callable(script):
        return script(*args)
    if call >= len(script):
        raise IndexError(f"script has {len(script)} entries, call #{call} asked for more")
    return script[call]


class ScriptedEngine:
    def __init__(
        self,
        name: str = "scripted",
        *,
        max_model_len: int = 4096,
        steps: StepsScript | None = None,
        generate: TextScript | None = None,
        scores: ScoreFn | None = None,
        sample_s: float = 0.0,
        generate_s: float = 0.0,
        score_s: float = 0.0,
        on_start: Callable[[str], Awaitable[None]] | None = None,
        lock: asyncio.Lock | None = None,
        cached: Callable[[str], int] | None = None,
    ):
        self.name = name
        self.max_model_len = max_model_len
        self.steps = (
            steps
            if steps is not None
            else (lambda prompt, n, seed: [f"step {i} seed {seed}" for i in range(n)])
        )
        self.generate_script = (
            generate if generate is not None else (lambda prompt: "rationale text")
        )
        self.scores = scores or hash_scores
        # The prompt tokens a sample or generate call reports as prefix-cache hits.
        self.cached = cached or (lambda prompt: 0)
        self.latency = {"sample": sample_s, "generate": generate_s, "score": score_s}
        self.on_start = on_start
        # A lock shared by all methods serializes them: the "sequential" baseline.
        self.lock = lock
        self.events: list[tuple[str, str]] = []
        self.calls: Counter[str] = Counter()
        # (kind, request_id, inputs) per call, for tests that inspect prompts/params.
        self.requests: list[tuple[str, str, dict]] = []
        self.sessions: dict[str, str | None] = {}  # request_id -> the session it carried
        self.in_flight: set[str] = set()
        self.closed = False
        # False: check() fails, as for a backend that is down (tests flip it back).
        self.healthy = True

    def render(self, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
        text = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
        return text + "\nassistant:" if add_generation_prompt else text

    def count_tokens(self, text: str) -> int:
        # Whitespace tokens: enough for budget arithmetic, and easy to reason about.
        return len(text.split())

    def _cut(self, text: str, max_tokens: int, stop: Sequence[str]) -> tuple[str, str]:
        for s in stop:
            if s and s in text:
                text = text[: text.index(s)]
        words = text.split()
        if len(words) > max_tokens:
            return " ".join(words[:max_tokens]), "length"
        return text, "stop"

    async def _run(self, kind: str, request_id: str, inputs: dict) -> int:
        """Wait out the simulated work; return this call's 0-based number per kind."""
        async with self.lock or contextlib.nullcontext():
            call = self.calls[kind]
            self.calls[kind] += 1
            self.requests.append((kind, request_id, inputs))
            self.events.append((f"{kind}_start", request_id))
            self.in_flight.add(request_id)
            try:
                if self.on_start is not None:
                    await self.on_start(kind)
                if self.latency[kind]:
                    await asyncio.sleep(self.latency[kind])
            except asyncio.CancelledError:
                self.events.append(("cancelled", request_id))
                raise
            finally:
                self.in_flight.discard(request_id)
            self.events.append((f"{kind}_end", request_id))
            return call

    async def sample(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ) -> Generation:
        self.sessions[request_id] = session
        call = await self._run("sample", request_id, {"prompt": prompt, "params": params})
        comps = []
        for raw in _pick(self.steps, call, prompt, params.n, params.seed)[: params.n]:
            text, reason = self._cut(raw, params.max_tokens, params.stop)
            lps = self.scores(prompt, text)
            comps.append(
                Completion(
                    text, self.count_tokens(text), sum(lps) / len(lps) if lps else None, reason, lps
                )
            )
        return Generation(comps, self.count_tokens(prompt), self.cached(prompt))

    async def stream(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ):
        gen = await self.sample(
            prompt, SampleParams(**{**params.__dict__, "n": 1}), request_id, session=session
        )
        words = gen.completions[0].text.split()
        for i, w in enumerate(words):  # one whitespace token per delta
            last = i == len(words) - 1
            yield Completion(
                w if i == 0 else " " + w,
                i + 1,
                None,
                gen.completions[0].finish_reason if last else None,
            )

    async def generate(
        self,
        prompt: str,
        max_tokens: int,
        stop: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Generation:
        self.sessions[request_id] = session
        call = await self._run("generate", request_id, {"prompt": prompt, "max_tokens": max_tokens})
        text, reason = self._cut(_pick(self.generate_script, call, prompt), max_tokens, stop)
        return Generation(
            [Completion(text, self.count_tokens(text), None, reason)],
            self.count_tokens(prompt),
            self.cached(prompt),
        )

    async def score(
        self,
        prefix: str,
        continuations: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Scores:
        self.sessions[request_id] = session
        await self._run(
            "score", request_id, {"prefix": prefix, "continuations": list(continuations)}
        )
        return Scores(
            [self.scores(prefix, c) for c in continuations],
            computed_tokens=self.count_tokens(prefix),
        )

    async def check(self) -> None:
        if not self.healthy:
            raise EngineError(f"{self.name} is down")

    async def close(self) -> None:
        self.closed = True
