"""`rationalyst rank`: argument parsing; the work is in rank.py and rank_report.py."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

HELP = "how often the scorer ranks the gold next step first, per rationale source"


def add_parser(sub) -> None:
    p = sub.add_parser("rank", help=HELP, description=(
        "Gold-step ranking: at each step of gold solutions, score the gold step against "
        "the agent's own samples with no rationale, a blank one, the stand-in "
        "rationale model, a trained one (--rationale-model) and an oracle written from "
        "the gold step; report the gold step's top-1 rate per source. Resumable: rerun "
        "with the same --out to continue."))
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--gsm8k", type=int, default=100, help="first N GSM8K test items [100]")
    p.add_argument("--math", type=int, default=20,
                   help="MATH test items outside MATH-500, drawn with --seed [20]")
    p.add_argument("--max-steps", type=int, default=8, help="gold steps per item, at most [8]")
    p.add_argument("--num-candidates", type=int, default=4,
                   help="the gold step + N-1 samples [4]")
    p.add_argument("--temperature", type=float, default=0.7, help="[0.7]")
    p.add_argument("--seed", type=int, default=14, help="item i samples with seed + i [14]")
    p.add_argument("--profile", choices=("generic", "reference"), default="generic", help=(
        "the agent's prompt profile [generic: short shots without calculator "
        "annotations, like the gold steps]"))
    p.add_argument("--model", default="default",
                   help="agent, scorer and stand-in rationale model [default]")
    p.add_argument("--rationale-model", default=None, metavar="CKPT", help=(
        "a trained rationale model (`rationalyst train --out`): adds the 'trained' "
        "source"))
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="benchmark folder [RATIONALYST_DATA_DIR or ../shared/data/benchmarks]")
    p.add_argument("--concurrency", type=int, default=4, help="items in flight [4]")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite summary.md/.json/.png from the finished items")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_rank)


def cmd_rank(args: argparse.Namespace) -> int:
    from rationalyst.clients.datasets import default_data_dir
    from rationalyst.supervisor.engine import EngineError
    from rationalyst.supervisor.models import ModelError, default_cache_dir, resolve

    from . import rank, rank_report
    from .engines import open_engine

    out: Path = args.out
    if args.report_only:
        if not (out / "config.json").is_file():
            print(f"rationalyst: {out} has no rank run (config.json)", file=sys.stderr)
            return 2
        _print(rank_report.report(out))
        return 0
    cfg = rank.RankConfig(num_candidates=args.num_candidates, temperature=args.temperature,
                          seed=args.seed, profile=args.profile)
    if cfg.num_candidates < 2:
        print("rationalyst: --num-candidates must be at least 2", file=sys.stderr)
        return 2
    data = args.data_dir or default_data_dir()
    try:
        items = rank.load_items(data, args.gsm8k, args.math, args.seed, args.max_steps)
        cache = default_cache_dir()
        agent_path = resolve(args.model, cache)
        if args.rationale_model:
            resolve(args.rationale_model, cache)  # fails fast on a bad checkpoint
    except (OSError, ModelError) as exc:
        print(f"rationalyst: {exc}", file=sys.stderr)
        return 2
    config = rank.config_record(cfg, name=out.name, agent_model=args.model,
                                rationale_model=args.rationale_model, gsm8k=args.gsm8k,
                                math=args.math, max_steps=args.max_steps,
                                leak_threshold=rank.LEAK_THRESHOLD)
    old = out / "config.json"
    if old.is_file():
        # A trained model may be added to a finished run (same steps and candidates).
        before = json.loads(old.read_text())
        if before.get("rationale_model") and args.rationale_model not in (
                None, before["rationale_model"]):
            print(f"rationalyst: {out} already holds trained scores of "
                  f"{before['rationale_model']}; use another --out", file=sys.stderr)
            return 2
        config["rationale_model"] = args.rationale_model or before.get("rationale_model")
        if {**before, "rationale_model": None} != {**config, "rationale_model": None}:
            print(f"rationalyst: {out} holds a run with other settings; use another --out",
                  file=sys.stderr)
            return 2
    out.mkdir(parents=True, exist_ok=True)
    old.write_text(json.dumps(config, indent=1) + "\n")

    def opener(path: str):
        return lambda: open_engine(path, None, cache_dir=cache,
                                   max_model_len=args.max_model_len)

    try:
        asyncio.run(rank.run(items, out, cfg, opener(agent_path),
                             opener(resolve(config["rationale_model"], cache))
                             if config["rationale_model"] else None, args.concurrency,
                             progress=not args.no_progress))
    except (EngineError, ModelError) as exc:
        print(f"rationalyst: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rationalyst: interrupted; finished items are saved: rerun the same "
              "command to continue", file=sys.stderr)
        return 130
    _print(rank_report.report(out))
    print(f"-> {out / 'summary.md'}")
    return 0


def _print(summary: dict) -> None:
    for name, g in summary["groups"].items():
        for d, rows in g["by_decay"].items():
            cells = "  ".join(f"{r['source']} {r['top1']:.3f}" for r in rows)
            print(f"{name:6s} decay {d}: {g['steps']} steps, chance {g['chance']:.3f}  {cells}")
