"""Python client for the rationalyst-server HTTP API: `POST /solve` and `GET /health`.

Speaks only HTTP (httpx); imports nothing from `server` or `supervisor`: requests
and results are the wire models of `rationalyst.protocol`, streams are read with
httpx-sse.

    with RationalystClient("http://127.0.0.1:8000") as client:
        result = client.solve("Tom has 3 apples and buys 4 more. How many?", max_steps=4)
        print(result.answer, [s.text for s in result.steps])

`stream_solve` yields one `Step` per SSE `step` event as it arrives, then exactly one
`SolveResult` (the `done` event) as its last item. Requests are retried on 429, 503
and connection errors (clients/retry.py: exponential backoff, or `Retry-After`
seconds, both capped); a stream is retried only before its first event, never once
a 200 has started.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError
from pydantic import ValidationError

from rationalyst.protocol import (
    DONE_EVENT,
    ERROR_EVENT,
    STEP_EVENT,
    Candidate,
    SolveRequest,
    SolveResult,
    Step,
    Timings,
    Usage,
)

from .retry import RETRY_STATUSES, retry_delay

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AsyncRationalystClient",
    "AuthenticationError",
    "BadRequestError",
    "Candidate",
    "NotFoundError",
    "RateLimitError",
    "RationalystClient",
    "RationalystError",
    "ServerError",
    "SolveRequest",
    "SolveResult",
    "Step",
    "Timings",
    "Usage",
]

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 600.0  # a CPU solve takes minutes; connecting should not
CONNECT_TIMEOUT = 5.0


# ---- errors -------------------------------------------------------------------------


class RationalystError(Exception):
    """Any failed call. `status_code` is None for transport errors and stream `error` events."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        type: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.message, self.status_code, self.type, self.param = message, status_code, type, param


class BadRequestError(RationalystError):
    """400 or 422: fix the request."""


class AuthenticationError(RationalystError):
    """401 or 403."""


class NotFoundError(RationalystError):
    """404."""


class RateLimitError(RationalystError):
    """429, after the retries."""


class ServerError(RationalystError):
    """5xx, or an engine error in a stream."""


class APIConnectionError(RationalystError):
    """The server could not be reached, or hung up."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


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
    cls = (
        BadRequestError
        if status in (400, 422)
        else AuthenticationError
        if status in (401, 403)
        else NotFoundError
        if status == 404
        else RateLimitError
        if status == 429
        else ServerError
        if status >= 500
        else RationalystError
    )
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


# ---- requests and responses: the wire models of rationalyst.protocol ----------------

_FIELDS = set(SolveRequest.model_fields) - {"question", "stream"}


def solve_body(question: str | SolveRequest, fields: dict, stream: bool) -> dict:
    """The /solve JSON: a SolveRequest, or a question and SolveRequest's fields. Unset
    fields get the protocol's defaults; None ones are left to the server. Values are
    not checked here: the server answers a bad one with a 422 naming it."""
    if isinstance(question, SolveRequest):
        if fields:
            raise TypeError("pass a SolveRequest or its fields, not both")
        fields = {k: getattr(question, k) for k in _FIELDS}
        question = question.question
    unknown = set(fields) - _FIELDS
    if unknown:
        raise TypeError(f"unknown solve field(s) {sorted(unknown)}; known: {sorted(_FIELDS)}")
    req = SolveRequest.model_construct(question=question, **fields)  # defaults, unchecked
    body = {k: getattr(req, k) for k in SolveRequest.model_fields if getattr(req, k) is not None}
    if "choices" in body:
        body["choices"] = list(body["choices"])
    return {**body, "stream": stream}


def _parse(model: type, obj: Any, what: str):
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise RationalystError(f"malformed {what} from the server: {exc}") from exc


def _item(sse: ServerSentEvent) -> Step | SolveResult | None:
    if sse.event == ERROR_EVENT:
        raise _event_error(sse.data)
    if sse.event in (STEP_EVENT, DONE_EVENT):
        try:
            obj = json.loads(sse.data)
        except ValueError as exc:
            raise RationalystError(f"malformed {sse.event!r} event from the server") from exc
        return _parse(Step if sse.event == STEP_EVENT else SolveResult, obj, f"{sse.event!r} event")
    return None


_EARLY_END = "the stream ended before the 'done' event"


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError as exc:
        raise RationalystError(
            f"the server sent invalid JSON (HTTP {r.status_code})", status_code=r.status_code
        ) from exc


@contextlib.contextmanager
def _reading(url: str):
    """Errors while reading a started stream: never retried."""
    try:
        yield
    except httpx.TransportError as exc:
        raise _transport_error(exc, url) from exc
    except SSEError as exc:
        raise RationalystError(f"the server did not answer with a stream: {exc}") from exc


class _Base:
    _http_class: type = httpx.Client

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
    ):
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, int(max_retries))
        self._timeout = (
            timeout
            if isinstance(timeout, httpx.Timeout)
            else httpx.Timeout(
                timeout,
                connect=CONNECT_TIMEOUT if timeout is None else min(CONNECT_TIMEOUT, timeout),
            )
        )
        headers = {"user-agent": "rationalyst-client/0.1"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = self._http_class(
            base_url=self.base_url, headers=headers, timeout=self._timeout
        )

    def _request(self, method: str, path: str, body: dict | None, stream: bool) -> httpx.Request:
        headers = {"accept": "text/event-stream"} if stream else None
        return self._http.build_request(method, path, json=body, headers=headers)

    def _retry_after(
        self,
        attempt: int,
        exc: httpx.TransportError | None = None,
        response: httpx.Response | None = None,
    ) -> float:
        """Seconds to wait before retrying a failed attempt; or raise its error."""
        if exc is not None:
            if attempt < self.max_retries and _retryable(exc):
                return retry_delay(attempt)
            raise _transport_error(exc, self.base_url) from exc
        if response is None:
            raise ValueError("_retry_after needs the failed attempt's error or response")
        if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
            return retry_delay(attempt, response.headers.get("retry-after"))
        raise _error_for(response.status_code, response.text)

    def _solve_result(self, r: httpx.Response) -> SolveResult:
        return _parse(SolveResult, _json(r), "response")


class RationalystClient(_Base):
    """Synchronous client. Use as a context manager, or call `close()`."""

    _http_class = httpx.Client

    def __enter__(self) -> RationalystClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(
        self, method: str, path: str, body: dict | None = None, stream: bool = False
    ) -> httpx.Response:
        """A successful response (unread if `stream`), after retries; else raise."""
        for attempt in itertools.count():
            try:
                r = self._http.send(self._request(method, path, body, stream), stream=stream)
                if r.status_code < 400:
                    return r
                try:
                    r.read()
                finally:
                    r.close()
            except httpx.TransportError as exc:
                time.sleep(self._retry_after(attempt, exc=exc))
                continue
            time.sleep(self._retry_after(attempt, response=r))
        raise AssertionError("unreachable")

    def health(self) -> dict:
        return _json(self._send("GET", "/health"))

    def solve(self, question: str | SolveRequest, **fields) -> SolveResult:
        """Solve `question` with SolveRequest's `fields` (or pass one SolveRequest)."""
        body = solve_body(question, fields, stream=False)
        return self._solve_result(self._send("POST", "/solve", body))

    def score(
        self,
        question: str,
        steps: list[str] | None = None,
        candidates: list[str] | None = None,
        **fields,
    ) -> dict:
        """POST /score: each candidate's score after `steps` (with the rationale), or
        with no candidates, each step of `steps` scored after its own prefix."""
        body = {"question": question, "steps": list(steps or []), **fields}
        if candidates is not None:
            body["candidates"] = list(candidates)
        return _json(self._send("POST", "/score", body))

    def stream_solve(self, question: str | SolveRequest, **fields) -> Iterator[Step | SolveResult]:
        """Yield each `Step` as it is chosen, then one `SolveResult` as the last item."""
        r = self._send("POST", "/solve", solve_body(question, fields, stream=True), stream=True)
        try:
            with _reading(self.base_url):
                for sse in EventSource(r).iter_sse():
                    if (item := _item(sse)) is not None:
                        yield item
                        if isinstance(item, SolveResult):
                            return
        finally:
            r.close()
        raise APIConnectionError(_EARLY_END)


class AsyncRationalystClient(_Base):
    """Asynchronous client. Use `async with`, or `await close()`. Same methods, awaited;
    `stream_solve` is an async generator (wrap it in `contextlib.aclosing` to break early)."""

    _http_class = httpx.AsyncClient

    async def __aenter__(self) -> AsyncRationalystClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(
        self, method: str, path: str, body: dict | None = None, stream: bool = False
    ) -> httpx.Response:
        for attempt in itertools.count():
            try:
                r = await self._http.send(self._request(method, path, body, stream), stream=stream)
                if r.status_code < 400:
                    return r
                try:
                    await r.aread()
                finally:
                    await r.aclose()
            except httpx.TransportError as exc:
                await asyncio.sleep(self._retry_after(attempt, exc=exc))
                continue
            await asyncio.sleep(self._retry_after(attempt, response=r))
        raise AssertionError("unreachable")

    async def health(self) -> dict:
        return _json(await self._send("GET", "/health"))

    async def solve(self, question: str | SolveRequest, **fields) -> SolveResult:
        body = solve_body(question, fields, stream=False)
        return self._solve_result(await self._send("POST", "/solve", body))

    async def stream_solve(
        self, question: str | SolveRequest, **fields
    ) -> AsyncIterator[Step | SolveResult]:
        """Yield each `Step` as it is chosen, then one `SolveResult` as the last item."""
        body = solve_body(question, fields, stream=True)
        r = await self._send("POST", "/solve", body, stream=True)
        try:
            with _reading(self.base_url):
                async for sse in EventSource(r).aiter_sse():
                    if (item := _item(sse)) is not None:
                        yield item
                        if isinstance(item, SolveResult):
                            return
        finally:
            await r.aclose()
        raise APIConnectionError(_EARLY_END)
