"""`rationalyst filter`: keep a triple when its rationale makes the following text
more likely, the reference's way.

Under the system prompt "generate future text given preceding text", the following
text is the assistant's reply to the preceding text, once as it is and once with
". " + rationale appended. Score = sum over i of decay**i * log p(token i of the
following text). Keep when score_with - score_without >= min_gain.

Both requests share the system prompt and the preceding text, so they go to the
engine as ONE prefix with two continuations: `Engine.score` prefills the shared part
once (prefix cache) and computes only the rationale and following text twice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rationalyst.supervisor.concurrency import gather_or_cancel
from rationalyst.supervisor.engine import Engine, PromptTooLong

from .prompts import FILTER_SYSTEM
from .store import Appender, read_jsonl

FILES = ("kept.jsonl", "rejected.jsonl", "filter_summary.md", "gains.png")


def _messages(preceding: str) -> list[dict]:
    return [{"role": "system", "content": FILTER_SYSTEM}, {"role": "user", "content": preceding}]


def with_rationale(preceding: str, rationale: str) -> str:
    """The reference joins them as preceding + ". " + rationale."""
    return preceding.rstrip() + ". " + rationale.strip()


def split_requests(engine: Engine, triple: dict) -> tuple[str, list[str]]:
    """One shared prefix (system prompt + preceding text) and the two continuations
    (without, with the rationale), each ending with the following text."""
    without = engine.render(_messages(triple["preceding"]))
    with_r = engine.render(_messages(with_rationale(triple["preceding"], triple["rationale"])))
    n = len(os.path.commonprefix([without, with_r]))
    return without[:n], [without[n:] + triple["following"], with_r[n:] + triple["following"]]


def decayed(logprobs: Sequence[float], decay: float) -> float:
    return sum(decay**i * lp for i, lp in enumerate(logprobs))


async def score_triple(engine: Engine, triple: dict, decay: float) -> dict:
    prefix, conts = split_requests(engine, triple)
    # A document's triples share their preceding text: one replica's prefix cache.
    scores = await engine.score(
        prefix,
        conts,
        f"filter-{triple['id']}",
        session=f"filter-{triple.get('doc_id', triple['id'])}",
    )
    # The following text is the tail of each continuation (after the chat template's
    # generation prompt, which ends on a separator, so its tokens stand alone).
    n_follow = engine.count_tokens(triple["following"])
    tails = [row[-n_follow:] if n_follow else [] for row in scores.token_logprobs]
    without, with_r = (decayed(t, decay) for t in tails)
    ideal = engine.count_tokens(prefix) + sum(engine.count_tokens(c) for c in conts)
    return {
        **triple,
        "score_without": without,
        "score_with": with_r,
        "gain": with_r - without,
        "computed_tokens": scores.computed_tokens,
        "ideal_tokens": ideal,
    }


async def run(
    engine: Engine,
    run_dir: Path,
    min_gain: float = 0.0,
    decay: float = 0.9,
    concurrency: int = 8,
    progress: bool = True,
) -> dict:
    """Score every triple not yet decided; resumable like extract. Returns the summary."""
    from tqdm import tqdm

    triples = read_jsonl(run_dir / "triples.jsonl")
    done = {
        r["id"] for name in ("kept.jsonl", "rejected.jsonl") for r in read_jsonl(run_dir / name)
    }
    pending = iter([t for t in triples if t["id"] not in done])
    kept, rejected = Appender(run_dir / "kept.jsonl"), Appender(run_dir / "rejected.jsonl")
    bar = tqdm(
        total=len(triples), initial=len(done), desc="filter", unit="triple", disable=not progress
    )

    async def worker() -> None:
        for t in pending:
            try:
                row = await score_triple(engine, t, decay)
            except PromptTooLong:  # longer than the scorer's context: cannot judge it
                row = {
                    **t,
                    "score_without": None,
                    "score_with": None,
                    "gain": None,
                    "reason": "too long",
                }
            keep = row["gain"] is not None and row["gain"] >= min_gain
            (kept if keep else rejected).write([row])
            bar.update(1)

    try:
        await gather_or_cancel(*(worker() for _ in range(max(1, concurrency))))
    finally:
        bar.close()
        kept.close()
        rejected.close()
        summary = write_summary(run_dir, min_gain, decay)
    return summary


def write_summary(run_dir: Path, min_gain: float, decay: float) -> dict:
    kept = read_jsonl(run_dir / "kept.jsonl")
    rejected = read_jsonl(run_dir / "rejected.jsonl")
    gains = sorted(r["gain"] for r in kept + rejected if r.get("gain") is not None)
    scored = len(kept) + len(rejected)
    qs = {q: _quantile(gains, q) for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)}
    s = {
        "scored": scored,
        "kept": len(kept),
        "rejected": len(rejected),
        "kept_fraction": len(kept) / scored if scored else 0.0,
        "gain_quantiles": qs,
        "min_gain": min_gain,
        "decay": decay,
    }
    lines = [
        f"# Filter summary: {run_dir.name}",
        "",
        f"- triples scored: {scored}",
        f"- kept: {len(kept)} ({s['kept_fraction']:.1%}), rejected: {len(rejected)}",
        f"- criterion: gain = score(with rationale) - score(without) >= {min_gain}, "
        f"score = sum of {decay}^i x log p(token i of the following text)",
        "",
        "| quantile | gain |",
        "| --- | --- |",
    ]
    lines += [f"| {q:g} | {v:.3f} |" for q, v in qs.items() if v is not None]
    (run_dir / "filter_summary.md").write_text("\n".join(lines) + "\n")
    if gains:
        _histogram(gains, min_gain, run_dir / "gains.png")
    return s


def _quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    i = q * (len(xs) - 1)
    lo = int(i)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def _histogram(gains: list[float], min_gain: float, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the `train` extra is not installed: the summary stands
        print(
            f"rationalyst filter: matplotlib is missing, so no {path.name} "
            "(pip install 'rationalyst-server[train]')",
            file=sys.stderr,
        )
        return

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(gains, bins=min(40, max(5, len(gains) // 3)))
    ax.axvline(min_gain, color="red", linestyle="--", label=f"min gain {min_gain:g}")
    ax.set_xlabel("gain (decayed log-prob of the following text, with - without)")
    ax.set_ylabel("triples")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
