"""OpenAI-compatible /v1/chat/completions and /v1/models.

Supervised model names run a solve; the agent's own name is a plain chat
pass-through with real token streaming."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field

from fastapi import APIRouter, Request, Response
from sse_starlette.sse import EventSourceResponse

from rationalyst.protocol import (
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    SUPERVISED_MODELS,
    ErrorResponse,
    check_category,
    check_sampling,
    pick_task,
)
from rationalyst.supervisor.engine import SampleParams
from rationalyst.supervisor.loop import STEP_JOIN, check_fits, cut_at_stop
from rationalyst.supervisor.strategies import REGISTRY
from rationalyst.supervisor.types import Problem, Result, Usage

from . import chat_fields, errors
from .errors import APIError, engine_error_body, error_body
from .openai_protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    CompletionChoice,
    CompletionUsage,
    ModelCard,
    ModelList,
    now,
)
from .solve import (
    SHUTDOWN_MESSAGE,
    TOKENIZE,
    admitted,
    fits,
    json_solve,
    request_params,
    run_solve,
    solve_params,
    sse_response,
    unless_disconnected,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", route_class=errors.route_class(errors.V1_STATUS))
MAX_MESSAGES_CHARS = 100_000

# Statuses any /v1 route may answer with (auth and the body-size limit are middleware).
_COMMON = {
    401: {"model": ErrorResponse, "description": "missing or wrong API key"},
    413: {"model": ErrorResponse, "description": "request body too large"},
}


def model_names(request: Request) -> list[str]:
    """The registry's strategies under their /v1 names, then the agent's pass-through;
    `prm` only with a reward model configured."""
    engines = request.app.state.engines
    has_prm = engines is not None and engines.prm is not None
    by_strategy = {s: m for m, s in SUPERVISED_MODELS.items()}
    return [
        *(by_strategy[s] for s in REGISTRY if s != "prm" or has_prm),
        request.app.state.info.agent,
    ]


@router.get("/models", response_model=ModelList, responses=_COMMON)
async def list_models(request: Request):
    created = now()
    return ModelList(
        object="list",
        data=[
            ModelCard(id=m, object="model", created=created, owned_by="rationalyst-server")
            for m in model_names(request)
        ],
    )


def _no_model(request: Request, model: str) -> APIError:
    return APIError(
        404,
        f"The model '{model}' does not exist. Available models: {', '.join(model_names(request))}",
        "NotFoundError",
        "model",
        "model_not_found",
    )


@router.get(
    "/models/{model:path}",
    response_model=ModelCard,
    responses={**_COMMON, 404: {"model": ErrorResponse}},
)
async def retrieve_model(model: str, request: Request):
    if model not in model_names(request):
        raise _no_model(request, model)
    return ModelCard(id=model, object="model", created=now(), owned_by="rationalyst-server")


# OpenAI parameters a supervised model cannot honour: refused, never silently dropped.
# Tools and functions merely offered (chat UIs such as Open WebUI send their built-in
# ones with every request) are allowed: OpenAI's default tool_choice "auto" lets a model
# answer without a call, as a solve does. Only a forced call is refused.
_UNSUPPORTED = {
    "logprobs": "log-probs of a supervised solve are in rationalyst.steps",
    "top_logprobs": "log-probs of a supervised solve are in rationalyst.steps",
    "response_format": "a solve writes free-text steps",
    "tool_choice": "a solve calls no tools, so it cannot be made to call one",
    "function_call": "a solve calls no tools, so it cannot be made to call one",
}
_NOT_A_CALL = (None, False, [], {"type": "text"}, "auto", "none")


def check_messages(req: ChatCompletionRequest) -> None:
    """Content parts must carry string text: 400 naming the part, not a TypeError."""
    for i, m in enumerate(req.messages):
        if not isinstance(m.content, list):
            continue
        for j, part in enumerate(m.content):
            where = f"messages.{i}.content.{j}"
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise APIError(400, f"{where} must be an object with a 'type'", param=where)
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise APIError(
                    400,
                    f"{where}.text must be a string (got {type(part.get('text')).__name__})",
                    param=f"{where}.text",
                )
    if sum(len(m.text()) for m in req.messages) > MAX_MESSAGES_CHARS:
        raise APIError(
            400,
            f"the messages hold over {MAX_MESSAGES_CHARS} characters, this "
            "server's limit: shorten them",
            param="messages",
            code="context_length_exceeded",
        )


def _usage(prompt: int, completion: int) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


@dataclass
class _Chunks:
    """Builds the chat.completion.chunk events of one response."""

    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=now)

    def __call__(self, delta: dict | None, finish: str | None = None, **extra) -> dict:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        return {
            "data": ChatCompletionChunk(
                id=self.id, created=self.created, model=self.model, choices=choices, **extra
            ).sparse_json()
        }


def _completion(
    model: str,
    content: str,
    finish: str,
    usage: CompletionUsage,
    reasoning: str | None = None,
    **extra,
) -> Response:
    message = AssistantMessage(
        role="assistant", content=content, reasoning=reasoning, reasoning_content=reasoning
    )
    body = ChatCompletion(
        id="chatcmpl-" + uuid.uuid4().hex,
        model=model,
        usage=usage,
        **extra,
        choices=[CompletionChoice(index=0, finish_reason=finish, message=message)],
    )
    return Response(body.sparse_json(), media_type="application/json")


async def _stream(events, request: Request, start=None) -> EventSourceResponse:
    async def wrapped():
        try:
            async for ev in events:
                yield ev
        except Exception as exc:  # after the first byte, errors travel in the stream
            log.warning("chat stream failed: %s", exc)
            yield {"data": json.dumps(engine_error_body(exc))}
        yield {"data": "[DONE]"}

    farewell = [
        {"data": json.dumps(error_body(SHUTDOWN_MESSAGE, "server_shutdown", code="shutting_down"))},
        {"data": "[DONE]"},
    ]
    return await sse_response(request, wrapped(), farewell, start)


@router.post(
    "/chat/completions",
    responses={
        200: {
            "model": ChatCompletion,
            "content": {"text/event-stream": {}},
            "description": "a chat.completion, or SSE chat.completion.chunk events",
        },
        400: {"model": ErrorResponse, "description": "invalid request (OpenAI uses 400)"},
        **_COMMON,
        404: {"model": ErrorResponse, "description": "no such model"},
        429: {"model": ErrorResponse, "description": "busy: retry after Retry-After seconds"},
        503: {"model": ErrorResponse, "description": "a model engine failed"},
    },
)
async def chat_completions(req: ChatCompletionRequest, request: Request):
    check_messages(req)
    if req.model in SUPERVISED_MODELS:
        return await _supervised(req, request)
    if req.model == request.app.state.info.agent:
        return await _passthrough(req, request)
    raise _no_model(request, req.model)


async def _supervised(req: ChatCompletionRequest, request: Request):
    engines = request.app.state.engines
    try:
        task = pick_task(req.task, req.choices)
    except ValueError as exc:
        raise APIError(400, str(exc), param="task") from exc
    try:
        check_category(req.profile, task, req.choices, req.category)
    except ValueError as exc:
        raise APIError(400, str(exc), param="category") from exc
    extra = req.model_extra or {}
    for name, why in _UNSUPPORTED.items():
        if extra.get(name) not in _NOT_A_CALL:
            raise APIError(
                400,
                f"{name} is not supported by supervised model {req.model!r}: {why}",
                param=name,
                code="unsupported_parameter",
            )
    if not req.question().strip():
        raise APIError(
            400, "the last user message is the question, and it has no text", param="messages"
        )
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or ())
    temperature = DEFAULT_TEMPERATURE if req.temperature is None else req.temperature
    settings = request.app.state.settings
    fmt = chat_fields.reasoning_format(extra, settings.reasoning_format)
    seed = req.seed
    sampling = chat_fields.zero_temperature(
        SUPERVISED_MODELS[req.model],
        temperature,
        req.num_candidates,
        req.seed,
        req.model_dump(mode="json", exclude_unset=True),
        settings,
    )
    if sampling:  # temperature 0 (lm-evaluation-harness's default): run it seeded
        temperature, seed = sampling["temperature"], sampling["seed"]
    try:
        check_sampling(SUPERVISED_MODELS[req.model], temperature, req.num_candidates)
    except ValueError as exc:
        raise APIError(400, str(exc), param="temperature") from exc
    problem = Problem(
        question=req.question().strip(),
        task=task,
        choices=tuple(req.choices) if req.choices else None,
        system=req.system(),
        profile=req.profile,
        category=req.category,
        dataset=req.dataset,
    )
    params = solve_params(
        request,
        req.token_budget,
        req.timeout_s,
        req.profile,
        **{
            **request_params(req),
            "strategy": SUPERVISED_MODELS[req.model],
            "temperature": temperature,
            "seed": seed,
            "stop": tuple(stops),
            "top_p": req.top_p or DEFAULT_TOP_P,
        },
    )
    await fits(check_fits, problem, params, engines)
    solve_id = "solve-" + uuid.uuid4().hex

    def finish(result: Result) -> str:  # max_steps, budget, timeout, length cut it short
        return "stop" if result.finish_reason in ("answer", "stop") else "length"

    events = run_solve(request, problem, params, solve_id)
    reasoning_mode = fmt == "reasoning"

    def usage(u: Usage, content: str) -> CompletionUsage:
        return CompletionUsage(
            **chat_fields.openai_usage(u, engines.agent.count_tokens(content) if content else 0)
        )

    if not req.stream:
        result = await unless_disconnected(request, json_solve(request, events))
        if isinstance(result, Response):
            return result  # the client went away
        # The loop cut the step; a stop that spans two steps is cut here.
        content, stopped = cut_at_stop(STEP_JOIN.join(s.text for s in result.steps), stops)
        reasoning = None
        if reasoning_mode and stopped:  # cut by a stop string: no answer step is whole
            reasoning, content = content, ""
        elif reasoning_mode:
            reasoning, content = chat_fields.split_steps(
                problem, [s.text for s in result.steps], STEP_JOIN
            )
        return _completion(
            req.model,
            content,
            "stop" if stopped else finish(result),
            usage(result.usage, content),
            reasoning=reasoning,
            rationalyst=result,
            rationalyst_sampling=sampling,
        )

    chunk = _Chunks(req.model)

    async def chunks():
        sent, stopped, answer = "", False, ""
        async for ev in events:
            if isinstance(ev, Result):
                yield chunk({}, "stop" if stopped else finish(ev))
                if req.include_usage:
                    yield chunk(None, usage=usage(ev.usage, answer if reasoning_mode else sent))
            elif not stopped:
                text = ev.text if ev.index == 0 else STEP_JOIN + ev.text
                cut, stopped = cut_at_stop(sent + text, stops)
                piece = cut[len(sent) :]
                sent = cut
                if not reasoning_mode:
                    delta = {"content": piece}
                elif not stopped and chat_fields.is_answer_step(problem, ev.text):
                    answer = piece.removeprefix(STEP_JOIN)
                    delta = {"content": answer}
                else:
                    delta = chat_fields.reasoning_delta(piece)
                first = {"rationalyst_sampling": sampling} if ev.index == 0 else {}
                if ev.index == 0:
                    delta = {"role": "assistant", **delta}
                yield chunk(delta, rationalyst=ev, **first)

    return await unless_disconnected(request, _stream(chunks(), request))


async def _passthrough(req: ChatCompletionRequest, request: Request):
    agent = request.app.state.engines.agent
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in req.messages
    ]

    def tokenize() -> tuple[str, int]:
        prompt = agent.render(messages)
        return prompt, agent.count_tokens(prompt)

    prompt, n_prompt = await asyncio.get_running_loop().run_in_executor(TOKENIZE, tokenize)
    room = agent.max_model_len - n_prompt
    if room < 1:
        raise APIError(
            400,
            f"the messages take {n_prompt} tokens, the whole context of "
            f"{agent.name} ({agent.max_model_len}): shorten them",
            param="messages",
            code="context_length_exceeded",
        )
    budget = req.token_budget or request.app.state.settings.max_tokens
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or ())
    params = SampleParams(
        n=1,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=req.top_p or 1.0,
        max_tokens=min(budget, room),
        stop=tuple(stop),
        seed=req.seed,
        extra=req.vllm_extra(),
    )
    rid = "chat-" + uuid.uuid4().hex

    def finish(reason: str | None) -> str:
        return "length" if reason == "length" else "stop"

    async def one() -> object:
        async with admitted(request):
            return (await agent.sample(prompt, params, rid)).completions[0]

    if not req.stream:
        comp = await unless_disconnected(request, one())
        if isinstance(comp, Response):
            return comp  # the client went away
        return _completion(
            req.model, comp.text, finish(comp.finish_reason), _usage(n_prompt, comp.num_tokens)
        )

    chunk = _Chunks(req.model)
    # Called here: an engine that checks its parameters on the call (vLLM's) refuses
    # one with a 400, before the 200 of the stream.
    deltas = agent.stream(prompt, params, rid)
    first: list = []

    async def first_delta() -> None:
        # vLLM checks some only as the request enters the engine (logit_bias's token
        # ids): the stream starts with its first token, so those are a 400 too.
        try:
            first.append(await anext(deltas))
        except StopAsyncIteration:
            pass
        except BaseException:
            await deltas.aclose()
            raise

    async def all_deltas():
        for delta in first:
            yield delta
        async for delta in deltas:
            yield delta

    async def events():
        yield chunk({"role": "assistant", "content": ""})
        n_tokens, reason = 0, None
        async for delta in all_deltas():
            n_tokens, reason = delta.num_tokens, delta.finish_reason or reason
            if delta.text:
                yield chunk({"content": delta.text})
        yield chunk({}, finish(reason))
        if req.include_usage:
            yield chunk(None, usage=_usage(n_prompt, n_tokens))

    return await unless_disconnected(request, _stream(events(), request, first_delta))
