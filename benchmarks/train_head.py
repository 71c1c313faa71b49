"""Head repair against LoRA on the CPU default model: held-out loss before and after,
and steps/s of the training steps alone (no evaluation or checkpoint writes).

The pairs are written in the reference's training-file format (`preceeding`,
`rationale`) and read by `rationalyst train` as a user's copy of the published
rationales would be. They are a proxy: GSM8K training items, preceding = the question
and the solution's first i lines, "rationale" = line i + 1 (no rationale corpus ships
with the repository). Both runs see the same pairs, split, batches and step count.

    .venv/bin/python benchmarks/train_head.py [--pairs 160] [--steps 8] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rationalyst.clients.datasets import default_data_dir

# head-only-no-norm: the head alone, the final norm frozen too (is the norm worth it?)
NO_NORM = """
import sys
from rationalyst.making import train
freeze = train.freeze_body
def head_alone(model):
    freeze(model)
    model.base_model.norm.weight.requires_grad_(False)
train.freeze_body = head_alone
from rationalyst.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def write_pairs(path: Path, n: int) -> None:
    train = default_data_dir().parent / "fewshot" / "gsm8k_train.jsonl"
    rows = []
    with open(train) as f:
        for line in f:
            item = json.loads(line)
            steps = [
                re.sub(r"<<[^>]*>>", "", s).strip()
                for s in item["solution"].split("\n")
                if s.strip() and not s.startswith("####")
            ]
            for i, step in enumerate(steps):
                rows.append(
                    {
                        "preceeding": f"Question: {item['question']}\nAnswer: "
                        + " ".join(steps[:i]),
                        "rationale": step,
                    }
                )
            if len(rows) >= n:
                break
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:n]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=160)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument(
        "--modes", default="head-only,lora", help="of head-only, lora, head-only-no-norm"
    )
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="train-head-"))
    data = root / "llm_training_data_train.jsonl"
    write_pairs(data, args.pairs)
    rows = []
    for mode in args.modes.split(","):
        out = root / mode
        runner = ["-c", NO_NORM] if mode == "head-only-no-norm" else ["-m", "rationalyst.cli"]
        cmd = [
            sys.executable,
            *runner,
            "train",
            str(data),
            "--base",
            "default",
            "--out",
            str(out),
            "--max-steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
            "--max-length",
            str(args.max_length),
            "--eval-fraction",
            "0.1",
            "--logging-steps",
            "1",
        ]
        cmd += ["--head-only"] if mode.startswith("head-only") else []
        load = os.getloadavg()[0]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = json.loads((out / "train_summary.json").read_text())
        rows.append(
            {
                "mode": mode,
                "eval_loss_before": round(s["eval_loss_before"], 4),
                "eval_loss_after": round(s["eval_loss"], 4),
                "steps": s["steps"],
                "steps_per_s_training": s["steps_per_s_training"],
                "wall_s": s["seconds"],
                "load_avg_at_start": round(load, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(
        f"\n{args.pairs} pairs (10% held out), {args.steps} steps of batch "
        f"{args.batch_size}, max length {args.max_length}, default lr per mode"
    )
    print("| mode | held-out loss before | after | steps/s (steps only) | load avg |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['eval_loss_before']} | {r['eval_loss_after']} | "
            f"{r['steps_per_s_training']} | {r['load_avg_at_start']} |"
        )
    lora = [r for r in rows if r["mode"] == "lora"]
    for r in rows:
        if lora and r is not lora[0]:
            print(
                f"steps/s {r['mode']} / lora: "
                f"{r['steps_per_s_training'] / lora[0]['steps_per_s_training']:.2f}"
            )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
