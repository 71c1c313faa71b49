"""Several `vllm serve` replicas of one model behind the Engine protocol.

Each solve is pinned to one replica, so that a step's prime and its N scoring
requests meet the same prefix cache, and its later steps find their trajectory
there too. The pin is a rendezvous hash of the solve id over the replicas' URLs:
every solve has its own order of replicas and uses the first one that is up. When a
replica goes down only its solves move, spread over the others, and they move back
when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Sequence

from .chat_tokens import ChatTokens
from .engine import EngineError, Generation, SampleParams, Scores
from .remote_engine import RemoteEngine, Unreachable

log = logging.getLogger(__name__)


class Replicas(ChatTokens):
    def __init__(self, engines: Sequence[RemoteEngine], retry_s: float = 5.0):
        self.replicas = list(engines)
        self.retry_s = retry_s  # how long a replica that failed is skipped
        self._down_until = {e.url: 0.0 for e in self.replicas}
        self._connected: set[str] = set()
        first = self.replicas[0]
        self.tokenizer, self.name = first.tokenizer, first.name
        self.max_model_len = 0
        self.score_from_prefix_cache = True

    @property
    def scoring(self) -> str:
        paths = {e.scoring for e in self.replicas if e.url in self._connected}
        return " / ".join(sorted(paths)) or "unknown (no replica connected)"

    async def connect(self) -> Replicas:
        """Connect every replica; start when at least one answers (the others are
        retried when used or checked). A replica of another model stops start-up."""
        results = await asyncio.gather(
            *(self._connect(e) for e in self.replicas), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Unreachable):
                raise r
        if not self._connected:
            raise EngineError("no replica is reachable: " + "; ".join(map(str, results)))
        return self

    async def _connect(self, eng: RemoteEngine) -> None:
        try:
            await eng.connect()
        except Unreachable as exc:
            self._mark_down(eng, exc)
            raise
        self._connected.add(eng.url)
        self.max_model_len = min(x.max_model_len for x in self.replicas if x.url in self._connected)

    def _mark_down(self, eng: RemoteEngine, exc: Exception) -> None:
        now = time.monotonic()
        if self._down_until[eng.url] <= now:
            log.warning("replica %s is down, its solves move to the next one: %s", eng.url, exc)
        self._down_until[eng.url] = now + self.retry_s

    def order(self, session: str) -> list[RemoteEngine]:
        """This solve's (session's) replicas, most preferred first (rendezvous hashing)."""
        return sorted(
            self.replicas, key=lambda e: zlib.crc32(f"{session}|{e.url}".encode()), reverse=True
        )

    def _candidates(self, session: str) -> list[RemoteEngine]:
        ranked = self.order(session)
        now = time.monotonic()
        up = [e for e in ranked if self._down_until[e.url] <= now]
        return up or ranked  # all marked down: try them anyway, one may be back

    async def _ready(self, eng: RemoteEngine) -> None:
        if eng.url not in self._connected:
            await self._connect(eng)
        eng.score_from_prefix_cache = self.score_from_prefix_cache

    async def _call(self, session: str, call):
        err: Exception | None = None
        for eng in self._candidates(session):
            try:
                await self._ready(eng)
                return await call(eng)
            except Unreachable as exc:
                self._mark_down(eng, exc)
                err = exc
        raise err

    # -- Engine protocol ------------------------------------------------------------
    # A call without a session is its own (pinned by its request id).
    async def sample(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ) -> Generation:
        session = session or request_id
        return await self._call(
            session, lambda e: e.sample(prompt, params, request_id, session=session)
        )

    async def generate(
        self,
        prompt: str,
        max_tokens: int,
        stop: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Generation:
        session = session or request_id
        return await self._call(
            session, lambda e: e.generate(prompt, max_tokens, stop, request_id, session=session)
        )

    async def score(
        self,
        prefix: str,
        continuations: Sequence[str],
        request_id: str,
        *,
        session: str | None = None,
    ) -> Scores:
        session = session or request_id
        return await self._call(
            session, lambda e: e.score(prefix, continuations, request_id, session=session)
        )

    async def stream(
        self, prompt: str, params: SampleParams, request_id: str, *, session: str | None = None
    ):
        session = session or request_id
        err: Exception | None = None
        for eng in self._candidates(session):
            started = False
            try:
                await self._ready(eng)
                async for item in eng.stream(prompt, params, request_id, session=session):
                    started = True
                    yield item
                return
            except Unreachable as exc:
                self._mark_down(eng, exc)
                if started:  # text already sent cannot be taken back
                    raise
                err = exc
        raise err

    async def check(self) -> None:
        """Healthy while one replica is; the down ones are noted for /health."""
        results = await asyncio.gather(
            *(self._check(e) for e in self.replicas), return_exceptions=True
        )
        if all(isinstance(r, Exception) for r in results):
            raise EngineError("; ".join(map(str, results)))

    async def _check(self, eng: RemoteEngine) -> None:
        try:
            await self._ready(eng)
            await eng.check()
        except EngineError as exc:
            self._mark_down(eng, exc)
            raise
        self._down_until[eng.url] = 0.0

    def status(self) -> list[dict]:
        now = time.monotonic()
        return [
            {
                "url": e.url,
                "up": e.url in self._connected and self._down_until[e.url] <= now,
                "scoring": e.scoring if e.url in self._connected else None,
            }
            for e in self.replicas
        ]

    async def close(self) -> None:
        for e in self.replicas:
            await e.close()
