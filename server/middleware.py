"""Request context as plain ASGI middleware (streams pass through untouched):
request id, bearer-key auth, one JSON access-log line and the request counter."""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid

from starlette.exceptions import HTTPException

from .errors import error_body
from .metrics import Metrics

access_log = logging.getLogger("rationalyst.access")

# Open without a key: probes, metrics, and the static viewer page (it holds no data
# and must load so that a user can type a key into it).
OPEN_PATHS = frozenset({"/health", "/metrics", "/", "/ui"})
# The request counter's label for a path no route matches: random paths (scanners,
# typos) must not grow /metrics without bound.
UNMATCHED = "unmatched"


def key_matches(given: str, keys: list[str]) -> bool:
    # Compare with every key in constant time, never stopping at the first match.
    ok = False
    for k in keys:
        ok |= hmac.compare_digest(given.encode(), k.encode())
    return ok


class RequestContext:
    def __init__(
        self, app, metrics: Metrics, api_keys: list[str], max_body_bytes: int, routes: list = ()
    ):
        self.app, self.metrics, self.api_keys = app, metrics, api_keys
        self.max_body_bytes = max_body_bytes
        self.routes = routes  # the app's (filled after this is built)

    def _endpoint(self, scope) -> str:
        """The route template that served the request (/v1/models/{model}), never the
        raw path; a path answered before routing (401, 413) by its literal route."""
        route = scope.get("route")
        if route is not None and getattr(route, "path", None):
            return route.path
        path = scope["path"]
        literal = any(getattr(r, "path", None) == path and "{" not in path for r in self.routes)
        return path if literal else UNMATCHED

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        raw = [
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])
        ]
        headers = dict(raw)
        request_id = headers.get("x-request-id", "")[:128] or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path = scope["path"]
        status = {"code": 500}
        t0 = time.perf_counter()
        head = scope["method"] == "HEAD" and path in OPEN_PATHS
        if head:  # probes and load balancers send HEAD: answer as GET, without the body
            scope = {**scope, "method": "GET"}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            length = headers.get("content-length")
            keyed = self.api_keys and path not in OPEN_PATHS
            if keyed and (n := sum(k == "authorization" for k, _ in raw)) > 1:
                # Which one would count is a guess (here the last won): refuse.
                await _send_json(
                    send_with_id,
                    400,
                    error_body(
                        f"send one Authorization header, not {n}",
                        "invalid_request_error",
                        "Authorization",
                    ),
                )
            elif keyed and not self._authorized(headers):
                await self._unauthorized(send_with_id, headers)
            elif length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                await _send_json(
                    send_with_id, 413, error_body(self._too_large(length), "invalid_request_error")
                )
            else:
                if length is None:  # a chunked body: count it as it arrives
                    receive = self._limited(receive)
                await self.app(scope, receive, send_with_id)
        finally:
            if state.get("client_gone"):  # a stream whose client left (server/solve.py)
                status["code"] = 499
            strategy = state.get("strategy", "none")
            self.metrics.requests.labels(self._endpoint(scope), strategy, str(status["code"])).inc()
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": path,
                    "status": status["code"],
                    "strategy": strategy,
                    "duration_ms": round((time.perf_counter() - t0) * 1e3, 1),
                },
            )

    def _too_large(self, length: str | None) -> str:
        size = "" if length is None else f"{length} bytes, "  # None: a chunked body
        return f"the request body is {size}over this server's limit of {self.max_body_bytes}"

    def _limited(self, receive):
        """`receive` that stops a body without Content-Length at the size limit; the
        413 travels as an HTTPException, which FastAPI re-raises from body parsing."""
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise HTTPException(413, self._too_large(None))
            return message

        return limited

    def _authorized(self, headers: dict) -> bool:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and key_matches(key.strip(), self.api_keys)

    async def _unauthorized(self, send, headers: dict) -> None:
        given = "authorization" in headers
        msg = "invalid API key" if given else "missing API key: send 'Authorization: Bearer <key>'"
        await _send_json(
            send,
            401,
            error_body(msg, "authentication_error", None, "invalid_api_key"),
            [(b"www-authenticate", b"Bearer")],
        )


async def _send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
