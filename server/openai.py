"""OpenAI-compatible /v1/chat/completions and /v1/models.

Supervised model names run a solve; the agent's own name is a plain chat
pass-through with real token streaming."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

from fastapi import APIRouter, Request, Response
from sse_starlette.sse import EventSourceResponse

from rationalyst.protocol import (DEFAULT_TEMPERATURE, DEFAULT_TOP_P, SUPERVISED_MODELS,
                                  ErrorResponse, check_category, pick_task)
from rationalyst.supervisor.engine import SampleParams
from rationalyst.supervisor.loop import check_fits
from rationalyst.supervisor.types import Problem, Result, Usage

from .errors import APIError, engine_error_body
from .openai_protocol import (AssistantMessage, ChatCompletion, ChatCompletionChunk,
                              ChatCompletionRequest, ChunkChoice, CompletionChoice,
                              CompletionUsage, ModelCard, ModelList, now)
from .solve import (admitted, final_result, request_params, run_solve, solve_params,
                    sse_response)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")

# Statuses any /v1 route may answer with (auth and the body-size limit are middleware).
_COMMON = {401: {"model": ErrorResponse, "description": "missing or wrong API key"},
           413: {"model": ErrorResponse, "description": "request body too large"}}


def model_names(request: Request) -> list[str]:
    return [*SUPERVISED_MODELS, request.app.state.info.agent]


@router.get("/models", response_model=ModelList, responses=_COMMON)
async def list_models(request: Request):
    created = now()
    return ModelList(object="list", data=[
        ModelCard(id=m, object="model", created=created, owned_by="rationalyst-server")
        for m in model_names(request)])


def _usage(prompt: int, completion: int) -> CompletionUsage:
    return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion,
                           total_tokens=prompt + completion)


def solve_usage(u: Usage) -> CompletionUsage:
    # Prompt side: agent prompts plus scorer prefill; completion side: steps + rationales.
    return _usage(u.agent_prompt_tokens + u.scored_tokens,
                  u.agent_completion_tokens + u.rationale_tokens)


@dataclass
class _Chunks:
    """Builds the chat.completion.chunk events of one response."""
    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=now)

    def __call__(self, delta: dict | None, finish: str | None = None, **extra) -> dict:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        return {"data": ChatCompletionChunk(id=self.id, created=self.created, model=self.model,
                                            choices=choices, **extra).sparse_json()}


def _completion(model: str, content: str, finish: str, usage: CompletionUsage,
                **extra) -> Response:
    body = ChatCompletion(
        id="chatcmpl-" + uuid.uuid4().hex, model=model, usage=usage, **extra,
        choices=[CompletionChoice(index=0, finish_reason=finish,
                                  message=AssistantMessage(role="assistant", content=content))])
    return Response(body.sparse_json(), media_type="application/json")


async def _stream(events, request: Request) -> EventSourceResponse:
    async def wrapped():
        try:
            async for ev in events:
                yield ev
        except Exception as exc:  # after the first byte, errors travel in the stream
            log.warning("chat stream failed: %s", exc)
            yield {"data": json.dumps(engine_error_body(exc))}
        yield {"data": "[DONE]"}
    return await sse_response(request, wrapped())


@router.post("/chat/completions", responses={
    200: {"model": ChatCompletion, "content": {"text/event-stream": {}},
          "description": "a chat.completion, or SSE chat.completion.chunk events"},
    400: {"model": ErrorResponse, "description": "invalid request (OpenAI uses 400)"},
    **_COMMON,
    404: {"model": ErrorResponse, "description": "no such model"},
    422: {"model": ErrorResponse, "description": "timeout_s over the server's maximum"},
    429: {"model": ErrorResponse, "description": "busy: retry after Retry-After seconds"},
    503: {"model": ErrorResponse, "description": "a model engine failed"}})
async def chat_completions(req: ChatCompletionRequest, request: Request):
    if req.model in SUPERVISED_MODELS:
        return await _supervised(req, request)
    if req.model == request.app.state.info.agent:
        return await _passthrough(req, request)
    raise APIError(404, f"The model '{req.model}' does not exist. Available models: "
                        f"{', '.join(model_names(request))}", "NotFoundError", "model",
                   "model_not_found")


async def _supervised(req: ChatCompletionRequest, request: Request):
    engines = request.app.state.engines
    try:
        task = pick_task(req.task, req.choices)
        check_category(req.profile, task, req.choices, req.category)
    except ValueError as exc:
        raise APIError(400, str(exc), param="task") from exc
    problem = Problem(question=req.question().strip(), task=task,
                      choices=tuple(req.choices) if req.choices else None,
                      system=req.system(), profile=req.profile, category=req.category)
    params = solve_params(
        request, req.token_budget, req.timeout_s, req.profile,
        **{**request_params(req), "strategy": SUPERVISED_MODELS[req.model],
           "temperature": DEFAULT_TEMPERATURE if req.temperature is None else req.temperature,
           "top_p": req.top_p or DEFAULT_TOP_P})
    check_fits(problem, params, engines)
    solve_id = "solve-" + uuid.uuid4().hex

    def finish(result: Result) -> str:  # max_steps, budget and timeout all cut it short
        return "stop" if result.finish_reason == "answer" else "length"

    events = run_solve(request, problem, params, solve_id)
    if not req.stream:
        async with admitted(request):
            result = await final_result(events)
        content = "\n".join(s.text for s in result.steps)
        return _completion(req.model, content, finish(result), solve_usage(result.usage),
                           rationalyst=result)

    chunk = _Chunks(req.model)

    async def chunks():
        async for ev in events:
            if isinstance(ev, Result):
                yield chunk({}, finish(ev))
                if req.include_usage:
                    yield chunk(None, usage=solve_usage(ev.usage))
            else:
                delta = {"content": ev.text if ev.index == 0 else "\n" + ev.text}
                if ev.index == 0:
                    delta = {"role": "assistant", **delta}
                yield chunk(delta, rationalyst=ev)
    return await _stream(chunks(), request)


async def _passthrough(req: ChatCompletionRequest, request: Request):
    agent = request.app.state.engines.agent
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in req.messages]
    prompt = agent.render(messages)
    n_prompt = agent.count_tokens(prompt)
    room = agent.max_model_len - n_prompt
    if room < 1:
        raise APIError(400, f"the messages take {n_prompt} tokens, the whole context of "
                            f"{agent.name} ({agent.max_model_len}): shorten them",
                       param="messages", code="context_length_exceeded")
    budget = req.token_budget or request.app.state.settings.max_tokens
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or ())
    params = SampleParams(n=1, temperature=1.0 if req.temperature is None else req.temperature,
                          top_p=req.top_p or 1.0, max_tokens=min(budget, room),
                          stop=tuple(stop), seed=req.seed)
    rid = "chat-" + uuid.uuid4().hex

    def finish(reason: str | None) -> str:
        return "length" if reason == "length" else "stop"

    if not req.stream:
        async with admitted(request):
            comp = (await agent.sample(prompt, params, rid)).completions[0]
        return _completion(req.model, comp.text, finish(comp.finish_reason),
                           _usage(n_prompt, comp.num_tokens))

    chunk = _Chunks(req.model)

    async def events():
        yield chunk({"role": "assistant", "content": ""})
        n_tokens, reason = 0, None
        async for delta in agent.stream(prompt, params, rid):
            n_tokens, reason = delta.num_tokens, delta.finish_reason or reason
            if delta.text:
                yield chunk({"content": delta.text})
        yield chunk({}, finish(reason))
        if req.include_usage:
            yield chunk(None, usage=_usage(n_prompt, n_tokens))
    return await _stream(events(), request)
