"""Python client for the rationalyst-server HTTP API: `POST /solve` and `GET /health`.

Speaks only HTTP (httpx); imports nothing from `server` or `supervisor`.

    with RationalystClient("http://127.0.0.1:8000") as client:
        result = client.solve("Tom has 3 apples and buys 4 more. How many?", max_steps=4)
        print(result.answer, [s.text for s in result.steps])

`stream_solve` yields one `Step` per SSE `step` event as it arrives, then exactly one
`SolveResult` (the `done` event) as its last item. Requests are retried on 429, 503
and connection errors (exponential backoff, or `Retry-After` seconds, both capped);
a stream is retried only before its first event, never once a 200 has started.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from dataclasses import dataclass, field, fields
from typing import Any, AsyncIterator, Iterator

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 600.0  # a CPU solve takes minutes; connecting should not
CONNECT_TIMEOUT = 5.0
RETRY_STATUSES = (429, 503)
BACKOFF_BASE, BACKOFF_CAP, RETRY_AFTER_CAP = 0.5, 8.0, 60.0


# ---- errors -------------------------------------------------------------------------

class RationalystError(Exception):
    """Any failed call. `status_code` is None for transport errors and stream `error` events."""

    def __init__(self, message: str, *, status_code: int | None = None,
                 type: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message, self.status_code, self.type, self.param = message, status_code, type, param


class BadRequestError(RationalystError): """400 or 422: fix the request."""
class AuthenticationError(RationalystError): """401 or 403."""
class NotFoundError(RationalystError): """404."""
class RateLimitError(RationalystError): """429, after the retries."""
class ServerError(RationalystError): """5xx, or an engine error in a stream."""
class APIConnectionError(RationalystError): """The server could not be reached, or hung up."""
class APITimeoutError(APIConnectionError): """The request timed out."""


def _error_for(status: int, text: str) -> RationalystError:
    message, type_, param = text.strip() or f"HTTP {status}", None, None
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and "message" in err:
            message, type_, param = str(err["message"]), err.get("type"), err.get("param")
        elif "detail" in body:
            message = str(body["detail"])
    cls = (BadRequestError if status in (400, 422) else
           AuthenticationError if status in (401, 403) else
           NotFoundError if status == 404 else RateLimitError if status == 429 else
           ServerError if status >= 500 else RationalystError)
    return cls(message, status_code=status, type=type_, param=param)


def _event_error(data: str) -> RationalystError:
    try:
        err = json.loads(data).get("error", {})
    except (ValueError, AttributeError):
        err = {}
    message = str(err.get("message") or data or "the server reported an error")
    cls = BadRequestError if err.get("type") == "invalid_request_error" else ServerError
    return cls(message, type=err.get("type"), param=err.get("param"))


def _transport_error(exc: httpx.TransportError, url: str) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request to {url} timed out ({type(exc).__name__})")
    return APIConnectionError(f"connection to {url} failed: {exc or type(exc).__name__}")


def _retryable(exc: httpx.TransportError) -> bool:
    return isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ConnectTimeout))


# ---- results ------------------------------------------------------------------------

def _known(cls: type, d: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}  # unknown keys: newer server


@dataclass
class Candidate:
    text: str
    score: float | None  # mean token log-prob; None for greedy
    chosen: bool


@dataclass
class Step:
    index: int
    text: str
    rationale: str | None
    candidates: list[Candidate]
    elapsed_ms: float
    raw: dict = field(default_factory=dict, repr=False, compare=False)  # the JSON as sent

    @classmethod
    def from_dict(cls, d: dict) -> "Step":
        return cls(**{**_known(cls, d), "raw": d,
                      "candidates": [Candidate(**_known(Candidate, c)) for c in d["candidates"]]})


@dataclass
class Usage:
    agent_prompt_tokens: int
    agent_completion_tokens: int
    rationale_tokens: int
    scored_tokens: int


@dataclass
class Timings:
    sample_ms: float
    rationale_ms: float
    score_ms: float
    total_ms: float


@dataclass
class SolveResult:
    id: str
    strategy: str
    seed: int
    answer: str | None
    finish_reason: str  # "answer", "max_steps" or "budget"
    steps: list[Step]
    usage: Usage
    timings: Timings
    raw: dict = field(default_factory=dict, repr=False, compare=False)  # the JSON as sent

    @classmethod
    def from_dict(cls, d: dict) -> "SolveResult":
        return cls(**{**_known(cls, d), "raw": d,
                      "steps": [Step.from_dict(s) for s in d["steps"]],
                      "usage": Usage(**_known(Usage, d["usage"])),
                      "timings": Timings(**_known(Timings, d["timings"]))})


# ---- shared plumbing ----------------------------------------------------------------

def _body(args: dict, stream: bool) -> dict:
    """The request JSON from a method's locals(); None means the server default."""
    body = {k: v for k, v in args.items() if k != "self" and v is not None}
    if "choices" in body:
        body["choices"] = list(body["choices"])
    return {**body, "stream": stream}


class _SSE:
    """Incremental Server-Sent Events parser: feed lines, get (event, data) per event."""

    def __init__(self) -> None:
        self.event, self.data = "message", []

    def feed(self, line: str) -> tuple[str, str] | None:
        if not line:
            out = (self.event, "\n".join(self.data)) if self.data else None
            self.event, self.data = "message", []
            return out
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None  # comments (": ping") and unknown fields


def _item(event: str, data: str) -> Step | SolveResult | None:
    if event == "error":
        raise _event_error(data)
    if event in ("step", "done"):
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise RationalystError(f"malformed {event!r} event from the server") from exc
        return Step.from_dict(obj) if event == "step" else SolveResult.from_dict(obj)
    return None


_EARLY_END = "the stream ended before the 'done' event"


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError as exc:
        raise RationalystError(f"the server sent invalid JSON (HTTP {r.status_code})",
                               status_code=r.status_code) from exc


class _Base:
    _http_class: type = httpx.Client

    def __init__(self, base_url: str = DEFAULT_URL, *, api_key: str | None = None,
                 timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT, max_retries: int = 2):
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, int(max_retries))
        self._timeout = (timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(
            timeout, connect=CONNECT_TIMEOUT if timeout is None else min(CONNECT_TIMEOUT, timeout)))
        headers = {"user-agent": "rationalyst-client/0.1"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = self._http_class(base_url=self.base_url, headers=headers,
                                      timeout=self._timeout)

    @staticmethod
    def _delay(attempt: int, response: httpx.Response | None = None) -> float:
        """`Retry-After` seconds if given (capped), else jittered exponential backoff."""
        try:
            after = float(response.headers["retry-after"]) if response is not None else None
        except (KeyError, ValueError):
            after = None
        if after is not None and math.isfinite(after):
            return min(max(after, 0.0), RETRY_AFTER_CAP)
        return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt) * (0.5 + random.random() / 2)


class RationalystClient(_Base):
    """Synchronous client. Use as a context manager, or call `close()`."""

    _http_class = httpx.Client

    def __enter__(self) -> "RationalystClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, body: dict | None = None,
              stream: bool = False) -> httpx.Response:
        """A successful response (unread if `stream`), after retries; else raise."""
        headers = {"accept": "text/event-stream"} if stream else None
        for attempt in range(self.max_retries + 1):
            request = self._http.build_request(method, path, json=body, headers=headers)
            try:
                r = self._http.send(request, stream=stream)
                if r.status_code < 400:
                    return r
                try:
                    text = r.read().decode("utf-8", "replace")
                finally:
                    r.close()
            except httpx.TransportError as exc:
                if attempt < self.max_retries and _retryable(exc):
                    time.sleep(self._delay(attempt))
                    continue
                raise _transport_error(exc, self.base_url) from exc
            if r.status_code in RETRY_STATUSES and attempt < self.max_retries:
                time.sleep(self._delay(attempt, r))
                continue
            raise _error_for(r.status_code, text)
        raise AssertionError("unreachable")

    def health(self) -> dict:
        return _json(self._send("GET", "/health"))

    def solve(self, question: str, *, choices: list[str] | None = None, task: str | None = None,
              strategy: str = "rationalyst", num_candidates: int = 3, max_steps: int = 15,
              temperature: float = 0.7, top_p: float = 1.0, seed: int | None = None,
              max_tokens: int | None = None) -> SolveResult:
        body = _body(locals(), stream=False)
        return SolveResult.from_dict(_json(self._send("POST", "/solve", body)))

    def stream_solve(self, question: str, *, choices: list[str] | None = None,
                     task: str | None = None, strategy: str = "rationalyst",
                     num_candidates: int = 3, max_steps: int = 15, temperature: float = 0.7,
                     top_p: float = 1.0, seed: int | None = None,
                     max_tokens: int | None = None) -> Iterator[Step | SolveResult]:
        """Yield each `Step` as it is chosen, then one `SolveResult` as the last item."""
        body = _body(locals(), stream=True)
        r, sse = self._send("POST", "/solve", body, stream=True), _SSE()
        try:
            for line in r.iter_lines():
                if (ev := sse.feed(line)) and (item := _item(*ev)) is not None:
                    yield item
                    if isinstance(item, SolveResult):
                        return
        except httpx.TransportError as exc:  # mid-stream: never retried
            raise _transport_error(exc, self.base_url) from exc
        finally:
            r.close()
        raise APIConnectionError(_EARLY_END)


class AsyncRationalystClient(_Base):
    """Asynchronous client. Use `async with`, or `await close()`. Same methods, awaited;
    `stream_solve` is an async generator (wrap it in `contextlib.aclosing` to break early)."""

    _http_class = httpx.AsyncClient

    async def __aenter__(self) -> "AsyncRationalystClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, body: dict | None = None,
                    stream: bool = False) -> httpx.Response:
        headers = {"accept": "text/event-stream"} if stream else None
        for attempt in range(self.max_retries + 1):
            request = self._http.build_request(method, path, json=body, headers=headers)
            try:
                r = await self._http.send(request, stream=stream)
                if r.status_code < 400:
                    return r
                try:
                    text = (await r.aread()).decode("utf-8", "replace")
                finally:
                    await r.aclose()
            except httpx.TransportError as exc:
                if attempt < self.max_retries and _retryable(exc):
                    await asyncio.sleep(self._delay(attempt))
                    continue
                raise _transport_error(exc, self.base_url) from exc
            if r.status_code in RETRY_STATUSES and attempt < self.max_retries:
                await asyncio.sleep(self._delay(attempt, r))
                continue
            raise _error_for(r.status_code, text)
        raise AssertionError("unreachable")

    async def health(self) -> dict:
        return _json(await self._send("GET", "/health"))

    async def solve(self, question: str, *, choices: list[str] | None = None,
                    task: str | None = None, strategy: str = "rationalyst",
                    num_candidates: int = 3, max_steps: int = 15, temperature: float = 0.7,
                    top_p: float = 1.0, seed: int | None = None,
                    max_tokens: int | None = None) -> SolveResult:
        body = _body(locals(), stream=False)
        return SolveResult.from_dict(_json(await self._send("POST", "/solve", body)))

    async def stream_solve(self, question: str, *, choices: list[str] | None = None,
                           task: str | None = None, strategy: str = "rationalyst",
                           num_candidates: int = 3, max_steps: int = 15,
                           temperature: float = 0.7, top_p: float = 1.0, seed: int | None = None,
                           max_tokens: int | None = None) -> AsyncIterator[Step | SolveResult]:
        """Yield each `Step` as it is chosen, then one `SolveResult` as the last item."""
        body = _body(locals(), stream=True)
        r, sse = await self._send("POST", "/solve", body, stream=True), _SSE()
        try:
            async for line in r.aiter_lines():
                if (ev := sse.feed(line)) and (item := _item(*ev)) is not None:
                    yield item
                    if isinstance(item, SolveResult):
                        return
        except httpx.TransportError as exc:
            raise _transport_error(exc, self.base_url) from exc
        finally:
            await r.aclose()
        raise APIConnectionError(_EARLY_END)
