"""The rank run's figures: top-1 rate of the gold step per source with a 95% Wilson
interval, chance (mean 1/candidates), paired wins against `none` and against `blank`
(the layout control), and trained against the stand-in, summary.md and a plot. Only
finished items count, items a training input holds are left out (excluded.json), and
every source is scored on the same steps.

Paired tests are given twice: over steps, and clustered by item (an item's net wins
over its steps, then a sign test over items). The steps of one item share its
question and trajectory, so they are not independent; the item-level test is the one
to trust."""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import rank_exclude
from .rank import DECAYS, SOURCES, merge_trained
from .store import read_jsonl


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate k/n (k may be fractional: ties)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of wins vs losses (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def load(out: Path) -> list[dict]:
    """Steps of finished items, less the excluded items'."""
    done = {r["item"] for r in read_jsonl(out / "items.jsonl")}
    done -= set(rank_exclude.load(out)["items"])
    return merge_trained(out, [r for r in read_jsonl(out / "steps.jsonl") if r["item"] in done])


def paired(steps: list[dict], decay: str, src: str, base: str) -> dict:
    """Steps where `src` ranks the gold step higher than `base` does, and the reverse;
    `items`: the same clustered by item (items whose net wins over their steps are
    positive, negative)."""
    pairs = [(s["top1"][src][decay], s["top1"][base][decay]) for s in steps]
    wins, losses = sum(a > b for a, b in pairs), sum(a < b for a, b in pairs)
    net: dict[str, float] = {}
    for s, (a, b) in zip(steps, pairs):
        net[s["item"]] = net.get(s["item"], 0.0) + a - b
    iw, il = sum(v > 0 for v in net.values()), sum(v < 0 for v in net.values())
    return {
        "wins": wins,
        "losses": losses,
        "p": sign_test(wins, losses),
        "items": {"wins": iw, "losses": il, "p": sign_test(iw, il)},
    }


def _rows(steps: list[dict], decay: str, sources: list[str]) -> list[dict]:
    rows = []
    for src in sources:
        hits = [s["top1"][src][decay] for s in steps]
        n, k = len(hits), sum(hits)
        lo, hi = wilson(k, n)
        row = {"source": src, "n": n, "top1": k / n if n else float("nan"), "lo": lo, "hi": hi}
        if src != "none":
            row.update(paired(steps, decay, src, "none"))
        if src not in ("none", "blank") and "blank" in sources:
            row["vs_blank"] = paired(steps, decay, src, "blank")
        # Gold's mean score margin over the best other candidate (log-prob units).
        row["margin"] = (
            (sum(s["scores"][src][decay][0] - max(s["scores"][src][decay][1:]) for s in steps) / n)
            if n
            else float("nan")
        )
        rows.append(row)
    return rows


def summarize(out: Path) -> dict:
    all_steps = load(out)
    steps = [s for s in all_steps if "skipped" not in s]
    # A source counts only where it scored every step (a trained model added later).
    sources = [s for s in SOURCES if steps and all(s in st["scores"] for st in steps)]
    groups = {
        ds: [s for s in steps if s["dataset"] == ds]
        for ds in dict.fromkeys(s["dataset"] for s in steps)
    }
    if len(groups) > 1:
        groups["all"] = steps
    excluded = rank_exclude.load(out)
    result = {
        "items": len({s["item"] for s in all_steps}),
        "steps": len(all_steps),
        "excluded": excluded,
        "skipped_steps": len(all_steps) - len(steps),
        "sources": sources,
        "groups": {},
    }
    for name, g in groups.items():
        chance = sum(1 / len(s["candidates"]) for s in g) / len(g) if g else float("nan")
        clean = [s for s in g if not s["oracle_leak"]]
        result["groups"][name] = {
            "steps": len(g),
            "items": len({s["item"] for s in g}),
            "chance": chance,
            "candidates_mean": sum(len(s["candidates"]) for s in g) / max(1, len(g)),
            "oracle_leaks": len(g) - len(clean),
            "by_decay": {d: _rows(g, d, sources) for d in map(str, DECAYS)},
            # Every source on the steps whose oracle does not restate the gold step:
            # those steps are harder for all, so the oracle is compared on the same ones.
            "steps_no_leak": len(clean),
            "no_leak": {d: _rows(clean, d, sources) if clean else [] for d in map(str, DECAYS)},
        }
        if "trained" in sources:  # the question: does training beat the stand-in?
            result["groups"][name]["trained_vs_stand_in"] = {
                d: paired(g, d, "trained", "stand-in") for d in map(str, DECAYS)
            }
    dropped = {
        k: sum(s["dropped"][k] for s in all_steps) for k in ("equal_gold", "duplicate", "empty")
    }
    result["dropped_samples"] = dropped
    result["scored_tokens"] = {src: sum(s["scored_tokens"][src] for s in steps) for src in sources}
    result["candidate_tokens"] = sum(sum(s["candidate_tokens"]) for s in steps)
    return result


def _wl(v: dict | None) -> str:
    return f"{v['wins']} / {v['losses']} (p={v['p']:.3g})" if v else "-"


def _table(rows: list[dict]) -> list[str]:
    lines = [
        "| source | steps | top-1 | 95% interval | vs none: steps | vs none: items "
        "| vs blank: steps | vs blank: items | gold margin |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        none = r if "wins" in r else None
        blank = r.get("vs_blank")
        lines.append(
            f"| {r['source']} | {r['n']} | {r['top1']:.3f} | "
            f"[{r['lo']:.3f}, {r['hi']:.3f}] | {_wl(none)} | "
            f"{_wl(none and none['items'])} | {_wl(blank)} | "
            f"{_wl(blank and blank['items'])} | {r['margin']:+.3f} |"
        )
    return lines


def write_markdown(out: Path, summary: dict, config: dict, timing: dict) -> Path:
    lines = [
        f"# Gold-step ranking: {config.get('name', out.name)}",
        "",
        f"Agent and scorer: `{config.get('agent_model')}`; stand-in rationale model: "
        f"the agent model; trained: `{config.get('rationale_model') or 'not run'}`.",
        f"{summary['items']} items, {summary['steps']} gold steps "
        f"({summary['skipped_steps']} skipped: every sample equalled the gold step). "
        f"Candidates: the gold step + {config['num_candidates'] - 1} samples "
        f"(temperature {config['temperature']}, seed {config['seed']} + item index, "
        f"profile `{config['profile']}`), samples equal to the gold step, empty or "
        f"repeated dropped: {summary['dropped_samples']}.",
        "Top-1: the gold step scores highest (a tie with t others counts 1/(1+t)). "
        "Interval: Wilson 95%. Wins / losses (exact sign test p) against `none` and "
        "against `blank` (the scorer's layout with an empty rationale): *steps*, "
        "where the source puts the gold step first and the other does not, and the "
        "reverse; *items*, the same clustered by item (items whose net wins over "
        "their steps are positive, negative), which is the test to trust since an "
        "item's steps share its question. Gold margin: mean of gold score - best "
        "other score.",
        "",
        *_excluded_lines(summary["excluded"]),
        "",
    ]
    for name, g in summary["groups"].items():
        lines += [
            f"## {name}: {g['items']} items, {g['steps']} steps, "
            f"{g['candidates_mean']:.2f} candidates on average, chance "
            f"{g['chance']:.3f}",
            "",
        ]
        for d, rows in g["by_decay"].items():
            lines += [f"score_decay {d}:", "", *_table(rows), ""]
        if "trained_vs_stand_in" in g:
            lines += [
                "Trained against stand-in, paired on the same steps: "
                + "; ".join(
                    f"decay {d}: steps {_wl(v)}, items {_wl(v['items'])}"
                    for d, v in g["trained_vs_stand_in"].items()
                )
                + ".",
                "",
            ]
        lines += [
            f"Oracle rationales that restate the gold step (leak guard "
            f"{config.get('leak_threshold', 0.7)}): {g['oracle_leaks']} of "
            f"{g['steps']}. Every source on the other {g['steps_no_leak']} steps:",
            "",
        ]
        for d, rows in g["no_leak"].items():
            if rows:
                lines += [f"score_decay {d}, no oracle leak:", "", *_table(rows), ""]
    lines += [
        "## Cost",
        "",
        "Prompt tokens the engine really prefilled to score (prefix-cache hits "
        "excluded), per source: "
        + ", ".join(f"{k} {v:,}" for k, v in summary["scored_tokens"].items())
        + f"; candidate tokens scored per source: {summary['candidate_tokens']:,}.",
        "Wall time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timing.items()) + ".",
        "",
    ]
    path = out / "summary.md"
    path.write_text("\n".join(lines))
    return path


def _excluded_lines(excluded: dict) -> list[str]:
    items = excluded.get("items") or {}
    if not excluded.get("inputs"):
        return ["Excluded items: none (no training input was named with `--exclude-inputs`)."]
    listed = ", ".join(f"`{k}` ({v})" for k, v in items.items()) or "none matched"
    return [
        f"Excluded items (found in a training input, matched by "
        f"{excluded.get('matched_by', 'id and question')}; their steps are left out "
        f"of every figure): {listed}. Inputs: "
        + ", ".join(f"`{p}`" for p in excluded["inputs"])
        + "."
    ]


def plot(out: Path, summary: dict) -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(summary["groups"].items())
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False)
    for ax, (name, g) in zip(axes[0], groups):
        for j, (d, rows) in enumerate(g["by_decay"].items()):
            xs = [i + (j - 0.5) * 0.38 for i in range(len(rows))]
            ys = [r["top1"] for r in rows]
            err = [[y - r["lo"] for y, r in zip(ys, rows)], [r["hi"] - y for y, r in zip(ys, rows)]]
            ax.bar(xs, ys, 0.36, yerr=err, capsize=3, label=f"decay {d}")
        ax.axhline(g["chance"], color="k", ls="--", lw=1, label="chance")
        ax.set_xticks(range(len(g["by_decay"]["1.0"])))
        ax.set_xticklabels([r["source"] for r in g["by_decay"]["1.0"]], rotation=20)
        ax.set_ylim(0, 1)
        ax.set_title(f"{name} ({g['steps']} steps)")
        ax.set_ylabel("gold step ranked first")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = out / "summary.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(out: Path) -> dict:
    config = json.loads((out / "config.json").read_text())
    timing = json.loads((out / "timing.json").read_text()) if (out / "timing.json").exists() else {}
    summary = summarize(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_markdown(out, summary, config, timing)
    plot(out, summary)
    return summary
