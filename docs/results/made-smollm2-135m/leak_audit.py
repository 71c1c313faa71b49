"""Draw a sample of a run's guarded triples for a reader's verdict on leaks.

    python docs/results/made-smollm2-135m/leak_audit.py RUN_DIR [RUN_DIR ...]
        [--seed 2] [--out leak_audit_heldout.jsonl] [--exclude leak_audit.jsonl]

Writes OUT here: a seeded sample of 120 triples not in the --exclude samples, with
"restates" left for the reader (null until read; true, "partly" or false). Two
samples exist:
- leak_audit.jsonl (seed 1, of the 558 triples before the meaning rule): the sample
  the meaning rule's threshold was set on;
- leak_audit_heldout.jsonl (seed 2, of the triples every rule keeps, none of the
  first sample): read without the guard's scores, the figure for issue 25's bar.
tests/test_making_done_when.py re-checks both. Also prints how many triples a looser
lexical bar (similarity 0.6, half the content words) flags, and the longest
rationales in tokens (a rationale cut at the 48-token cap has 48)."""

import argparse
import json
import random
from pathlib import Path

from rationalyst.making import split

HERE = Path(__file__).resolve().parent
SAMPLE = 120


def loose_leak(rationale: str, following: str) -> bool:
    if split.is_leak(rationale, following, 0.6):
        return True
    wanted = split.content_words(following)
    return len(wanted) >= split.MIN_CONTENT_WORDS and len(
        wanted & split.content_words(rationale)
    ) >= 0.5 * len(wanted)


def main(dirs: list[str], seed: int, out: str, exclude: list[str]) -> None:
    seen = set()
    for path in exclude:
        seen |= {json.loads(x)["id"] for x in (HERE / path).read_text().splitlines() if x.strip()}
    rows = []
    for d in dirs:
        with open(Path(d) / "triples.jsonl", encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    for r in rows:
        r["loose_leak"] = loose_leak(r["rationale"], r["following"])
    flagged = sum(r["loose_leak"] for r in rows)
    print(
        f"triples {len(rows)}, flagged by the looser bar {flagged} "
        f"({flagged / max(1, len(rows)):.1%})"
    )
    pool = [r for r in rows if r["id"] not in seen]
    sample = random.Random(seed).sample(pool, min(SAMPLE, len(pool)))
    with open(HERE / out, "w", encoding="utf-8") as f:
        for r in sample:
            keys = ("id", "preceding", "rationale", "following", "loose_leak")
            f.write(json.dumps({**{k: r[k] for k in keys}, "restates": None}) + "\n")
    print(f"sample {len(sample)}: flagged {sum(r['loose_leak'] for r in sample)}")
    try:
        from transformers import AutoTokenizer

        from rationalyst.supervisor.models import build_default, default_cache_dir

        tok = AutoTokenizer.from_pretrained(build_default(default_cache_dir()))
        lens = sorted(len(tok.encode(r["rationale"], add_special_tokens=False)) for r in rows)
        print(
            f"rationale tokens: median {lens[len(lens) // 2]}, max {lens[-1]}, "
            f">= 46: {sum(n >= 46 for n in lens)}"
        )
    except Exception as exc:  # the audit of leaks stands without it
        print(f"no token counts ({exc})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--out", default="leak_audit_heldout.jsonl")
    ap.add_argument("--exclude", nargs="*", default=["leak_audit.jsonl"])
    a = ap.parse_args()
    main(a.dirs, a.seed, a.out, a.exclude)
