"""A bounded number of running solves with a bounded queue in front of them."""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from .errors import APIError


class Admission:
    def __init__(self, running: int, queued: int, queue_gauge: Gauge):
        self._slots = asyncio.Semaphore(running)
        self.running, self.queued = running, queued
        self.waiting = 0
        self._gauge = queue_gauge

    async def acquire(self) -> None:
        """Wait for a slot, or raise 429 at once when the queue is full too."""
        if self._slots.locked() and self.waiting >= self.queued:
            raise APIError(
                429,
                f"the server is busy: {self.running} solves are running and "
                f"{self.waiting} are queued; retry after a few seconds",
                "rate_limit_error",
                code="server_busy",
                headers={"Retry-After": "2"},
            )
        self.waiting += 1
        self._gauge.set(self.waiting)
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
            self._gauge.set(self.waiting)

    def release(self) -> None:
        self._slots.release()
