"""summary.md and summary.png of a `rationalyst eval` output folder."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from rationalyst.clients.datasets import wilson


def read_records(path: Path) -> dict[tuple[str, str, str], dict]:
    """The latest record per (dataset, strategy, id); a torn last line is ignored."""
    out: dict[tuple[str, str, str], dict] = {}
    if not path.exists():
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
                out[(r["dataset"], r["strategy"], str(r["id"]))] = r
            except (ValueError, KeyError, TypeError):
                continue
    return out


@dataclass
class Row:
    dataset: str
    strategy: str
    n: int  # graded items (server errors excluded)
    correct: int
    no_answer: int
    errors: int
    tokens: float  # mean per graded item
    time_s: float  # mean server time per graded item
    profile: str = "generic"
    grading: str = "lenient"  # records from before grading modes were the server's answer

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.correct, self.n)


def rows(out: Path) -> list[Row]:
    """One row per (dataset, strategy) in items.jsonl, in first-seen order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for (dataset, strategy, _), r in read_records(out / "items.jsonl").items():
        groups.setdefault((dataset, strategy), []).append(r)
    result = []
    for (dataset, strategy), recs in groups.items():
        ok = [r for r in recs if not r.get("error")]
        n = len(ok)
        result.append(
            Row(
                dataset,
                strategy,
                n,
                sum(bool(r["correct"]) for r in ok),
                sum(bool(r["no_answer"]) for r in ok),
                len(recs) - n,
                sum(r["tokens"] for r in ok) / n if n else 0.0,
                sum(r["time_s"] for r in ok) / n if n else 0.0,
                "/".join(sorted({r.get("profile", "generic") for r in recs})),
                "/".join(sorted({r.get("grading", "lenient") for r in recs})),
            )
        )
    return result


def markdown(table: list[Row]) -> str:
    gradings = sorted({r.grading for r in table})
    lines = [
        "# rationalyst eval",
        "",
        f"Grading: {', '.join(gradings) or '-'} (reference: answers re-read from the "
        "steps by the reference code's rules; lenient: the server's own answer).",
        "",
        "| dataset | strategy | n | accuracy | 95% CI (Wilson) | no answer | errors "
        "| tokens / item | s / item | profile |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in table:
        lo, hi = r.interval
        lines.append(
            f"| {r.dataset} | {r.strategy} | {r.n} | {r.accuracy:.3f} | "
            f"[{lo:.3f}, {hi:.3f}] | {r.no_answer} | {r.errors} | "
            f"{r.tokens:.0f} | {r.time_s:.2f} | {r.profile} |"
        )
    lines += [
        "",
        'n: items graded. A missing answer counts as wrong ("no answer"). Items '
        "the server failed on are listed under errors, left out of n and accuracy, "
        "and retried when the run is resumed. Under reference grading an MMLU-Pro item "
        "with nothing parsed gets the reference's random letter (seeded; `guessed` in "
        "items.jsonl): it counts under no answer and may still be right. Tokens: agent prompt + completion + "
        "rationale + scored (+ judge/PRM verifier) tokens. Time: the server's total time per solve.",
        "",
    ]
    return "\n".join(lines)


def chart(table: list[Row], path: Path) -> bool:
    """A grouped bar chart of accuracy with Wilson error bars; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "rationalyst eval: matplotlib is missing, so no summary.png "
            "(pip install 'rationalyst-server[eval]')",
            file=sys.stderr,
        )
        return False
    names = list(dict.fromkeys(r.dataset for r in table))
    strategies = list(dict.fromkeys(r.strategy for r in table))
    width = 0.8 / max(1, len(strategies))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(names) + 1), 3.6))
    for j, s in enumerate(strategies):
        xs, ys, errs = [], [], [[], []]
        for i, d in enumerate(names):
            r = next((r for r in table if r.dataset == d and r.strategy == s), None)
            if r is None:
                continue
            lo, hi = r.interval
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(r.accuracy)
            errs[0].append(r.accuracy - lo)
            errs[1].append(hi - r.accuracy)
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=s)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% Wilson CI)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write(out: Path) -> list[Row]:
    table = rows(out)
    (out / "summary.md").write_text(markdown(table), encoding="utf-8")
    chart(table, out / "summary.png")
    return table
