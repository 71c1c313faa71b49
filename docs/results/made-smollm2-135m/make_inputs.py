"""Rebuild the run's two input files from the benchmark data and the committed ids.

    python docs/results/made-smollm2-135m/make_inputs.py /work/shared/data/benchmarks OUT

writes OUT/docs_a.jsonl and OUT/docs_b.jsonl: the items of shard-a/input_ids.txt and
shard-b/input_ids.txt (StrategyQA train items and MATH items outside MATH-500), in
that order, as question + solution (+ choices) lines for `rationalyst extract`."""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(data: Path, out: Path) -> None:
    items = {}
    for name in ("strategyqa.jsonl", "math.jsonl"):
        with open(data / name, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    it = json.loads(line)
                    items[str(it["id"])] = it
    out.mkdir(parents=True, exist_ok=True)
    for shard in ("a", "b"):
        ids = (HERE / f"shard-{shard}/input_ids.txt").read_text().split()
        with open(out / f"docs_{shard}.jsonl", "w", encoding="utf-8") as f:
            for i in ids:
                it = items[i]
                f.write(
                    json.dumps(
                        {
                            "id": i,
                            "question": it["question"],
                            "choices": it.get("choices"),
                            "solution": it["solution"],
                        }
                    )
                    + "\n"
                )
        print(f"docs_{shard}.jsonl: {len(ids)} documents")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
