"""Judge replies whose shape is forced, so every candidate gets a reward (issue 27).

- In-process vLLM engine: vLLM structured outputs, a choice of "Reward: 0".."Reward: 3".
- OpenAI-compatible verifier: `response_format: json_schema` ({"reward": 0-3}); where
  the server refuses it (a 4xx) or the reply does not parse, the free-text request of
  verifiers.HTTPJudge, and the judge remembers which of the two worked.
- Any other engine (scripted, `vllm serve` agent): the free-text AgentJudge.
- `free_text=True`: the reference's mode, the reply given room to reason first
  (FREE_TEXT_MAX_TOKENS, the reference's 1,000) before its "Reward:".
"""

from __future__ import annotations

import json

from .engine import Engine, SampleParams
try:  # issue 26's layout: the judge lives in the strategies package
    from .strategies.judge import (JUDGE_MAX_TOKENS, AgentJudge, HTTPJudge, Rating,
                                   _rating, parse_reward)
except ImportError:  # before it: verifiers.py, imported through strategies (a cycle)
    from . import strategies  # noqa: F401
    from .verifiers import (JUDGE_MAX_TOKENS, AgentJudge, HTTPJudge, Rating, _rating,
                            parse_reward)

REWARDS = [f"Reward: {n}" for n in range(4)]
FREE_TEXT_MAX_TOKENS = 1000
REWARD_SCHEMA = {"type": "object", "properties": {"reward": {"type": "integer", "minimum": 0,
                                                             "maximum": 3}},
                 "required": ["reward"], "additionalProperties": False}


class StructuredAgentJudge(AgentJudge):
    """The agent as its own verifier, its reply constrained to one of REWARDS."""

    def __init__(self, engine: Engine, free_text: bool = False):
        super().__init__(engine)
        self.free_text = free_text

    def structured(self) -> bool:
        return not self.free_text and hasattr(self.engine, "_prepare") and hasattr(
            self.engine, "_run")

    async def rate(self, messages: list[dict], request_id: str,
                   free_text: bool = False, **kw) -> Rating:
        # **kw: what the judge passes through (issue 26's `session`).
        eng = self.engine
        prompt = eng.render(messages)
        if self.free_text or free_text:
            gen = await eng.generate(prompt, FREE_TEXT_MAX_TOKENS, (), request_id, **kw)
        elif self.structured():  # the in-process vLLM engine
            from vllm.sampling_params import StructuredOutputsParams
            ids, sp = eng._prepare(prompt, SampleParams(n=1, temperature=0.0,
                                                        max_tokens=JUDGE_MAX_TOKENS),
                                   structured_outputs=StructuredOutputsParams(choice=REWARDS))
            gen = eng._generation(len(ids), await eng._run(ids, sp, request_id))
        else:
            return await super().rate(messages, request_id, **kw)
        reply = gen.completions[0].text
        return Rating(parse_reward(reply), reply, gen.prompt_tokens, gen.completion_tokens)


def _json_rating(data: dict) -> Rating:
    r = _rating(data)
    try:
        value = json.loads(r.reply)["reward"]
    except (ValueError, KeyError, TypeError):
        value = None
    ok = isinstance(value, int) and 0 <= value <= 3
    return Rating(value if ok else parse_reward(r.reply), r.reply, r.prompt_tokens,
                  r.completion_tokens)


class StructuredHTTPJudge(HTTPJudge):
    """HTTPJudge asking for a JSON-schema reply first; remembers whether it worked."""

    def __init__(self, *args, free_text: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.free_text = free_text
        self.mode: str | None = None  # "json_schema" or "text", once known

    async def rate(self, messages: list[dict], request_id: str,
                   free_text: bool = False, **kw) -> Rating:
        if self.free_text or free_text:
            body = {"model": self.model, "messages": messages, "temperature": 0.0,
                    "max_tokens": FREE_TEXT_MAX_TOKENS}
            return await self.api.post_json("/chat/completions", body, _rating,
                                            "sent a reply that is not an OpenAI chat "
                                            "completion")
        if self.mode != "text":
            body = {"model": self.model, "messages": messages, "temperature": 0.0,
                    "max_tokens": 32, "response_format": {
                        "type": "json_schema",
                        "json_schema": {"name": "reward", "strict": True,
                                        "schema": REWARD_SCHEMA}}}
            try:
                rating = await self.api.post_json(
                    "/chat/completions", body, _json_rating,
                    "sent a reply that is not an OpenAI chat completion")
            except Exception:  # refused (4xx) or garbled: today's free-text request
                rating = None
            if rating is not None and rating.reward is not None:
                self.mode = "json_schema"
                return rating
            if self.mode is None:
                self.mode = "text"
        return await super().rate(messages, request_id, **kw)
