"""The HTTP plumbing of the remote verifiers (HTTPJudge, RemotePRM): one httpx client
per API, and every way a call can fail read as an EngineError that names the host,
so the server answers 503 with something an operator can act on."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from .engine import EngineError

# How OpenAI ("maximum context length", context_length_exceeded) and vLLM ("longer than
# the maximum model length", "too long") say that the prompt does not fit.
_TOO_LONG = re.compile(r"context[ _-]?(length|window)|maximum model length|too long", re.I)


class APIError(EngineError):
    """An EngineError with the HTTP status the other end answered: None where no
    answer came (unreachable, timed out), so callers can tell a refusal from an outage."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def too_long(self) -> bool:
        """A 400 saying that the prompt exceeds the model's context."""
        return self.status == 400 and bool(_TOO_LONG.search(self.body))


class APIClient:
    def __init__(self, url: str, what: str, api_key: str | None = None, timeout_s: float = 300.0):
        self.url = url.rstrip("/")
        self.host = urlsplit(self.url).netloc or self.url
        self.what = what  # "the PRM server": how messages name the other end
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout_s, connect=10.0)
        )

    def fail(self, why: str, status: int | None = None, body: str = "") -> APIError:
        return APIError(f"{self.what} at {self.host} {why}", status, body)

    async def post_json(
        self, path: str, body: dict, parse: Callable[[Any], Any], unexpected: str
    ) -> Any:
        """POST `body`; `parse` the JSON reply. A reply `parse` cannot read (it raises
        KeyError and the like) fails as `unexpected`, with the start of the text."""
        try:
            r = await self.client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise self.fail(f"is unreachable: {type(exc).__name__}: {exc}") from exc
        if r.status_code >= 400:
            raise self.fail(
                f"answered HTTP {r.status_code}: {r.text[:200]}", r.status_code, r.text[:2000]
            )
        try:
            return parse(r.json())
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise self.fail(f"{unexpected}: {r.text[:200]!r}", r.status_code) from exc

    async def probe(self, path: str, bad_status: int) -> None:
        """GET `path` quickly; fail if unreachable or it answers `bad_status` or above."""
        try:
            r = await self.client.get(path, timeout=5.0)
        except httpx.HTTPError as exc:
            raise self.fail(f"is unreachable: {type(exc).__name__}") from exc
        if r.status_code >= bad_status:
            raise self.fail(f"answered HTTP {r.status_code}", r.status_code)

    async def close(self) -> None:
        await self.client.aclose()
