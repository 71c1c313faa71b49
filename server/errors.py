"""One error shape everywhere, OpenAI's: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from rationalyst.protocol import ErrorBody, ErrorResponse
from rationalyst.supervisor.engine import BadParam, BadRequest, InvalidParams, ServiceUnavailable

log = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type_,
            param,
            code,
        )
        self.headers = headers


# Each router's wire format: the status of each error family, the most specific
# class first found along the exception's MRO. A request that fails validation is
# FastAPI's RequestValidationError.
SOLVE_STATUS: dict[type, int] = {
    RequestValidationError: 422,
    BadParam: 422,
    BadRequest: 400,
    ServiceUnavailable: 503,
}
V1_STATUS: dict[type, int] = {
    RequestValidationError: 400,
    BadRequest: 400,  # OpenAI's
    ServiceUnavailable: 503,
}


def route_class(statuses: dict[type, int]) -> type[APIRoute]:
    """The route class of a router whose errors answer with `statuses`."""
    return type("Route", (APIRoute,), {"error_statuses": statuses})


def status_of(request: Request, exc: Exception) -> int:
    """The status the router that took `request` gives `exc` (/solve's format for
    routes outside a router: the health, metrics and viewer pages)."""
    statuses = getattr(request.scope.get("route"), "error_statuses", SOLVE_STATUS)
    return next(statuses[c] for c in type(exc).__mro__ if c in statuses)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return ErrorResponse(
        error=ErrorBody(message=message, type=type_, param=param, code=code)
    ).model_dump()


def engine_error_body(exc: Exception) -> dict:
    """The body for an exception raised while a solve runs (JSON or stream)."""
    if isinstance(exc, InvalidParams):
        return error_body(
            f"the model engine refused a parameter: {exc}", "invalid_request_error", exc.param
        )
    if isinstance(exc, BadRequest):
        return error_body(str(exc), "invalid_request_error", exc.param)
    if isinstance(exc, ServiceUnavailable):
        return error_body(f"the model engine failed: {exc}", "engine_error")
    return error_body("internal error; see the server log", "internal_error")


def _json(status: int, body: dict, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


_SHOWN_CHARS = 80  # an input echoed back in a message is cut to this


def _got(value) -> str:
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return f" (got {len(value)} characters)"  # never echo a 50 KB input back
    return f" (got {value!r})"


def _model_param(msg: str, fields) -> str | None:
    # A whole-model check names its parameter first ("temperature 0 is ...").
    first = msg.split(" ", 1)[0].strip("'\"`:,")
    return first if first in fields else None


def _is_branch(part: str) -> bool:
    """A union's branch in an error location ('str', 'list[str]', 'function-after[..]'),
    which pydantic adds after the field: never a field the client sent."""
    return part in _BRANCHES or "[" in part


_BRANCHES = frozenset({"str", "int", "float", "bool", "none", "dict", "list", "bytes"})


def validation_message(exc: RequestValidationError, fields=()) -> tuple[str, str | None]:
    parts, param = [], None
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return "the request body is not valid JSON", "body"
        # stop.str -> stop, stop.list[str].0 -> stop.0: name what the client sent
        loc = [str(x) for x in err.get("loc", ()) if x != "body" and not _is_branch(str(x))]
        where = ".".join(loc)
        msg = err.get("msg", "invalid value").removeprefix("Value error, ")
        if not loc and err.get("loc") == ("body",) and err.get("type") == "missing":
            msg, where = "the request body is empty: send a JSON object", ""
            param = param or "body"
        param = param or where or _model_param(msg, fields) or None
        shown = loc and "input" in err and not isinstance(err["input"], (dict, list))
        got = _got(err["input"]) if shown else ""
        if where and parts and parts[-1][0] == where:  # another branch of one field
            parts[-1][1] += f", or {msg[:1].lower()}{msg[1:]}"
        else:
            parts.append([where, f"{where}: {msg}" if where else msg, got])
    return "; ".join(text + got for _, text, got in parts), param


_JSON_ONLY = (
    "the request body must be JSON sent with 'Content-Type: application/json' "
    "({}; with curl add -H 'Content-Type: application/json')"
)


def _not_json(request: Request, exc: RequestValidationError) -> str | None:
    """Why a body was not read as JSON: its Content-Type (curl -d sends a form), or
    none at all (FastAPI then reads the body as bytes, not JSON)."""
    ctype = request.headers.get("content-type", "")
    kind = ctype.split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return None
    if kind:
        return _JSON_ONLY.format(f"got Content-Type {ctype!r}")
    sent = any(
        e.get("loc") == ("body",) and e.get("type") != "missing" for e in exc.errors()
    )  # a body that is there, but was not parsed
    return _JSON_ONLY.format("no Content-Type was sent") if sent else None


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        fields = ()
        route = request.scope.get("route")
        body_field = getattr(route, "body_field", None)
        if body_field is not None:  # the body model: its field names become `param`
            annotation = getattr(getattr(body_field, "field_info", None), "annotation", None)
            fields = getattr(annotation, "model_fields", ())
        message, param = validation_message(exc, fields)
        # A body that is not JSON is a 400 (docs/api.md's), a bad field in one a 422.
        bad_json = message.endswith("not valid JSON")
        if (why := _not_json(request, exc)) is not None:
            message, param, bad_json = why, "Content-Type", True
        status = 400 if bad_json else status_of(request, exc)
        return _json(status, error_body(message, "invalid_request_error", param))

    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError):
        return _json(
            exc.status, error_body(exc.message, exc.type, exc.param, exc.code), exc.headers
        )

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest):
        return _json(status_of(request, exc), engine_error_body(exc))

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable):
        log.error("engine error: %s", exc)
        return _json(status_of(request, exc), engine_error_body(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return _json(exc.status_code, error_body(str(exc.detail), "invalid_request_error"))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return _json(500, engine_error_body(exc))
