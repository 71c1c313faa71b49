"""Scoring N continuations of one prefix through a prefix cache, for any backend
that can prime a prefix and report how many prompt tokens a request read from it
(in-process vLLM, or `vllm serve` through its token route).

vLLM skips its prefix cache for prompt-log-prob requests unless asked not to, and
then returns garbage log-probs at the cached positions, so only positions past the
cache hit are read (docs/performance.md, "Scoring").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from .concurrency import gather_or_cancel
from .engine import Scores

# (name, continuation ids, read the cache?) -> (its log-probs, None where unusable;
# prompt tokens the backend computed)
ScoreOne = Callable[[str, list[int], bool], Awaitable[tuple[list[float | None], int]]]


def usable(
    logprob: Callable[[int, int], float], p: int, cont: Sequence[int], cached: int | None
) -> list[float | None]:
    """The continuation's log-probs from a prompt of prefix (p tokens) + cont, None at
    positions the cache hit covered (the first valid entry is at cached + 1).
    `logprob(i, t)` reads token t's log-prob at prompt position i; `cached` None means
    the backend did not say how many tokens it read from the cache, so none is
    trusted."""
    if cached is None:
        return [None] * len(cont)
    return [logprob(p + j, t) if p + j > cached else None for j, t in enumerate(cont)]


async def _none() -> tuple[list[float | None], int]:
    return [], 0


def _each(conts: list[list[int]], one: ScoreOne, cached: bool):
    return (one(str(i), c, cached) if c else _none() for i, c in enumerate(conts))


async def score_uncached(conts: list[list[int]], one: ScoreOne) -> Scores:
    """The naive way: every continuation prefills the whole prefix again."""
    results = await gather_or_cancel(*_each(conts, one, False))
    return Scores([lp for lp, _ in results], sum(n for _, n in results))


async def score_cached(
    conts: list[list[int]], prime: Callable[[], Awaitable[int]], one: ScoreOne
) -> Scores:
    """Prime the prefix once (`prime` returns the tokens it prefilled), score every
    continuation reading the cache, then fill what the cache hid."""
    computed = await prime()
    results = await gather_or_cancel(*_each(conts, one, True))
    rows = [lp for lp, _ in results]
    computed += sum(n for _, n in results)
    # A cache hit reaching into a continuation came from a sibling that starts with
    # the same tokens and was computed a moment earlier: its log-probs there have
    # the same context, so they are the same. Re-score only what no sibling covers.
    for i, row in enumerate(rows):
        for j, lp in enumerate(row):
            if lp is None:
                row[j] = next(
                    (
                        o[j]
                        for o, c in zip(rows, conts)
                        if c[: j + 1] == conts[i][: j + 1] and o[j] is not None
                    ),
                    None,
                )
    redo = [i for i, row in enumerate(rows) if None in row]
    for i, (row, n) in zip(
        redo, await gather_or_cancel(*(one(f"{i}-full", conts[i], False) for i in redo))
    ):
        rows[i] = row
        computed += n
    return Scores(rows, computed)
