"""Re-check a run's triples with the final leak guard (making/split.py), before train.

    python docs/results/made-smollm2-135m/reguard.py RUN_DIR [RUN_DIR ...]

The rerun's extraction ran with the guard's first three rules (similar, contains,
content words); the answer and new-number rules were added after a read of its output,
and the meaning rule (making/leak.py) after a read of a sample of what was left: one
pass each.
A triple is judged on its own (rationale, following, preceding) text, so checking it
afterwards is the same as checking it during extraction: flagged triples are moved to
reguard_rejected.jsonl (appended) and out of triples.jsonl, kept.jsonl and rejected.jsonl, and
extract_stats.json gets the counts (under "reguard", and added to the leak figures).
The filter summary is rewritten for what is left."""

import json
import sys
from collections import Counter
from pathlib import Path

from rationalyst.making import filter as filt
from rationalyst.making import split
from rationalyst.making.extract import ExtractConfig
from rationalyst.making.leak import LeakGuard

CFG = ExtractConfig()
GUARD = LeakGuard(CFG.leak_threshold, CFG.leak_meaning, CFG.leak_embedder)


def jl(path: Path) -> list[dict]:
    return (
        [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    )


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main(run: Path) -> None:
    triples = jl(run / "triples.jsonl")
    why = {t["id"]: GUARD.reason(t["rationale"], t["following"], t["preceding"]) for t in triples}
    out = {i for i, w in why.items() if w}
    with open(run / "reguard_rejected.jsonl", "a", encoding="utf-8") as f:  # passes add up
        f.writelines(
            json.dumps({**t, "leak": why[t["id"]]}) + "\n" for t in triples if t["id"] in out
        )
    write(run / "triples.jsonl", [t for t in triples if t["id"] not in out])
    for name in ("kept.jsonl", "rejected.jsonl"):
        if (run / name).exists():
            write(run / name, [t for t in jl(run / name) if t["id"] not in out])
    reasons = Counter(why[i] for i in out)
    stats = json.loads((run / "extract_stats.json").read_text())
    # One entry per pass: the answer/new-number rules, then the meaning rule.
    passes = stats.get("reguard", [])
    passes = [passes] if isinstance(passes, dict) else passes
    this = {"checked": len(triples), "rejected": len(out), "by_reason": dict(reasons)}
    stats["reguard"] = [*passes, this]
    stats["rationales_leak"] += len(out)
    for k in split.LEAK_REASONS:
        stats["rationales_leak_by_reason"][k] = stats["rationales_leak_by_reason"].get(
            k, 0
        ) + reasons.get(k, 0)
    left = [t for t in triples if t["id"] not in out]
    stats["triples"] = len(left)
    this["documents_emptied"] = stats["kept"] - len({t["doc_id"] for t in left})
    stats["kept"] = len({t["doc_id"] for t in left})
    (run / "extract_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    if (run / "kept.jsonl").exists():
        filt.write_summary(run, 0.0, 0.9)
    print(f"{run}: {len(out)} of {len(triples)} triples rejected {dict(reasons)}")


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(Path(d))
