"""Prometheus collectors, one registry per app, and the solve wrapper that feeds them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rationalyst.supervisor.engine import EngineError
from rationalyst.supervisor.types import Result, Step, Usage

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "rationalyst_requests", "HTTP requests", ["endpoint", "strategy", "status"], registry=r
        )
        self.solve_seconds = Histogram(
            "rationalyst_solve_seconds",
            "wall time of a solve",
            ["strategy"],
            buckets=_SECONDS,
            registry=r,
        )
        self.step_seconds = Histogram(
            "rationalyst_step_phase_seconds",
            "time per step by phase",
            ["phase"],
            buckets=_SECONDS,
            registry=r,
        )
        self.candidates = Histogram(
            "rationalyst_candidates_per_step",
            "candidates per step",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16),
            registry=r,
        )
        self.margin = Histogram(
            "rationalyst_score_margin",
            "chosen candidate's score minus the runner-up's",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=r,
        )
        self.tokens = Counter("rationalyst_tokens", "tokens by kind", ["kind"], registry=r)
        self.in_flight = Gauge("rationalyst_solves_in_flight", "solves running", registry=r)
        self.queue_depth = Gauge("rationalyst_queue_depth", "solves waiting for a slot", registry=r)
        self.engine_errors = Counter(
            "rationalyst_engine_errors", "solves ended by an engine failure", registry=r
        )
        self.aborted = Counter(
            "rationalyst_aborted",
            "requests cancelled before the end (client gone, queued or running)",
            registry=r,
        )

    def observe_step(self, step: Step) -> None:
        t = step.timings
        for phase, ms in (
            ("sample", t.sample_ms),
            ("rationale", t.rationale_ms),
            ("score", t.score_ms),
            ("total", t.total_ms),
        ):
            self.step_seconds.labels(phase).observe(ms / 1e3)
        self.candidates.observe(len(step.candidates))
        scores = sorted((c.score for c in step.candidates if c.score is not None), reverse=True)
        if len(scores) > 1:
            self.margin.observe(scores[0] - scores[1])

    def observe_result(self, result: Result) -> None:
        self.solve_seconds.labels(result.strategy).observe(result.timings.total_ms / 1e3)
        self.observe_usage(result.usage)

    def observe_usage(self, u: Usage) -> None:
        """A solve's or a /score call's tokens, by kind: the figures of its `usage`
        (scored: the scoring prefill; cached: prompt tokens read from a prefix cache;
        reasoning: generated tokens not in the chosen steps)."""
        for kind, n in (
            ("agent_prompt", u.agent_prompt_tokens),
            ("agent_completion", u.agent_completion_tokens),
            ("rationale_prompt", u.rationale_prompt_tokens),
            ("rationale", u.rationale_tokens),
            ("scored", u.scored_tokens),
            ("verifier_prompt", u.verifier_prompt_tokens),
            ("verifier_completion", u.verifier_completion_tokens),
            ("cached", u.cached_tokens),
            ("reasoning", u.reasoning_tokens),
        ):
            self.tokens.labels(kind).inc(n)

    async def track(
        self, events: AsyncIterator[Step | Result], on_start: Callable[[], None] = lambda: None
    ) -> AsyncIterator[Step | Result]:
        """Pass a solve's events through, recording them. A solve closed or cancelled
        before its Result counts as aborted; one closed after it (a JSON response
        stops reading at the Result) does not."""
        on_start()
        self.in_flight.inc()
        finished = False
        try:
            async for ev in events:
                if isinstance(ev, Result):
                    finished = True
                    self.observe_result(ev)
                else:
                    self.observe_step(ev)
                yield ev
        except EngineError:
            self.engine_errors.inc()
            raise
        except (asyncio.CancelledError, GeneratorExit):
            if not finished:
                self.aborted.inc()
            raise
        finally:
            self.in_flight.dec()
