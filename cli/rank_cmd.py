"""`rationalyst rank`: its options and exit codes; the work is in making/rank.py and
making/rank_report.py."""

from __future__ import annotations

import asyncio
import json
import sys
import typing
from pathlib import Path

from pydantic import Field

from rationalyst.cli.flags import Command, cli_field
from rationalyst.cli.options import ModelOptions

HELP = "how often the scorer ranks the gold next step first, per rationale source"


class RankOptions(ModelOptions):
    out: Path = Field(description="output directory")
    gsm8k: int = Field(100, ge=0, description="first N GSM8K test items")
    math: int = Field(20, ge=0, description="MATH test items outside MATH-500, drawn with --seed")
    max_steps: int = Field(8, ge=1, description="gold steps per item, at most")
    num_candidates: int = Field(4, ge=2, description="the gold step + N-1 samples")
    temperature: float = Field(0.7, ge=0, le=2, description="sampling temperature")
    seed: int = Field(14, ge=0, description="item i samples with seed + i")
    profile: typing.Literal["generic", "reference"] = Field(
        "generic",
        description=(
            "the agent's prompt profile (generic: short shots without calculator "
            "annotations, like the gold steps)"
        ),
    )
    model: str = Field("default", description="agent, scorer and stand-in rationale model")
    rationale_model: str | None = cli_field(
        None,
        metavar="CKPT",
        description=(
            "a trained rationale model (`rationalyst train --out`): adds the 'trained' source"
        ),
    )
    replace_trained: bool = Field(
        False,
        description=(
            "drop the run's trained source (its rationales and scores) and score "
            "--rationale-model in its place on the same steps and candidates; the other "
            "sources are not run again"
        ),
    )
    exclude_inputs: list[Path] = cli_field(
        [],
        nargs="+",
        metavar="FILE",
        description=(
            "training inputs of the trained model (documents .jsonl, triples, kept pairs, or "
            "a list of ids such as a made run's input_ids.txt): items whose id or question "
            "appears in them are left out, and listed in the report; kept for later runs "
            "and reports of this --out"
        ),
    )
    data_dir: Path | None = Field(
        None,
        description=(
            "benchmark folder [default RATIONALYST_DATA_DIR or ../shared/data/benchmarks]"
        ),
    )
    concurrency: int = Field(4, ge=1, description="items in flight")
    report_only: bool = Field(
        False, description="rewrite summary.md/.json/.png from the finished items"
    )


def rank_(args: RankOptions) -> int:
    from rationalyst.clients.datasets import default_data_dir
    from rationalyst.making import rank, rank_exclude, rank_report
    from rationalyst.making.documents import InputError
    from rationalyst.making.engines import open_engine
    from rationalyst.making.store import read_jsonl
    from rationalyst.supervisor.engine import EngineError
    from rationalyst.supervisor.models import ModelError, default_cache_dir, resolve

    out: Path = args.out
    if args.report_only:
        if not (out / "config.json").is_file():
            print(f"rationalyst: {out} has no rank run (config.json)", file=sys.stderr)
            return 2
        if args.exclude_inputs:
            try:
                _exclude_finished(out, args)
            except InputError as exc:
                print(f"rationalyst: {exc}", file=sys.stderr)
                return 2
        _print(rank_report.report(out))
        return 0
    cfg = rank.RankConfig(
        num_candidates=args.num_candidates,
        temperature=args.temperature,
        seed=args.seed,
        profile=args.profile,
    )
    data = args.data_dir or default_data_dir()
    if args.replace_trained and not args.rationale_model:
        print("rationalyst: --replace-trained needs --rationale-model", file=sys.stderr)
        return 2
    try:
        items = rank.load_items(data, args.gsm8k, args.math, args.seed, args.max_steps)
        cache = default_cache_dir()
        agent_path = resolve(args.model, cache)
        if args.rationale_model:
            resolve(args.rationale_model, cache)  # fails fast on a bad checkpoint
        if args.exclude_inputs:
            found, matched_by = rank_exclude.find(
                {it.id: it.question for it in items}, args.exclude_inputs
            )
    except (OSError, ModelError, InputError) as exc:
        print(f"rationalyst: {exc}", file=sys.stderr)
        return 2
    config = rank.config_record(
        cfg,
        name=out.name,
        agent_model=args.model,
        rationale_model=args.rationale_model,
        gsm8k=args.gsm8k,
        math=args.math,
        max_steps=args.max_steps,
        leak_threshold=rank.LEAK_THRESHOLD,
    )
    old = out / "config.json"
    if old.is_file():
        # A trained model may be added to a finished run (same steps and candidates),
        # or replace the one it holds (--replace-trained).
        before = json.loads(old.read_text())
        if (
            before.get("rationale_model")
            and args.rationale_model not in (None, before["rationale_model"])
            and not args.replace_trained
        ):
            print(
                f"rationalyst: {out} already holds trained scores of "
                f"{before['rationale_model']}; use another --out, or "
                "--replace-trained",
                file=sys.stderr,
            )
            return 2
        config["rationale_model"] = args.rationale_model or before.get("rationale_model")
        # The name is the folder's (a display label): a moved run is the same run.
        ignored = {"rationale_model": None, "name": None}
        if {**before, **ignored} != {**config, **ignored}:
            print(
                f"rationalyst: {out} holds a run with other settings; use another --out",
                file=sys.stderr,
            )
            return 2
        config["name"] = before.get("name", config["name"])
    out.mkdir(parents=True, exist_ok=True)
    if args.replace_trained:
        try:  # before anything is deleted
            rank.check_golds(read_jsonl(out / "steps.jsonl"), {it.id: it for it in items})
        except InputError as exc:
            print(f"rationalyst: {exc}", file=sys.stderr)
            return 2
        rank.drop_trained(out)
    old.write_text(json.dumps(config, indent=1) + "\n")
    if args.exclude_inputs:
        rank_exclude.save(out, args.exclude_inputs, found, matched_by)
    left_out = set(rank_exclude.load(out)["items"])
    items = [it for it in items if it.id not in left_out]

    def opener(path: str):
        return lambda: open_engine(path, None, cache_dir=cache, max_model_len=args.max_model_len)

    try:
        asyncio.run(
            rank.run(
                items,
                out,
                cfg,
                opener(agent_path),
                opener(resolve(config["rationale_model"], cache))
                if config["rationale_model"]
                else None,
                args.concurrency,
                progress=args.progress,
            )
        )
    except (EngineError, ModelError, InputError) as exc:
        print(f"rationalyst: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "rationalyst: interrupted; finished items are saved: rerun the same "
            "command to continue",
            file=sys.stderr,
        )
        return 130
    _print(rank_report.report(out))
    print(f"-> {out / 'summary.md'}")
    return 0


def _exclude_finished(out: Path, args: RankOptions) -> None:
    """--report-only --exclude-inputs: match the run's items by id, and by question
    where the benchmark files that the run read are at hand."""
    from rationalyst.clients.datasets import default_data_dir
    from rationalyst.making import rank, rank_exclude
    from rationalyst.making.store import read_jsonl

    cfg = json.loads((out / "config.json").read_text())
    ids = {r["item"]: None for r in read_jsonl(out / "items.jsonl")}
    try:
        items = rank.load_items(
            args.data_dir or default_data_dir(),
            cfg["gsm8k"],
            cfg["math"],
            cfg["seed"],
            cfg["max_steps"],
        )
        ids.update({it.id: it.question for it in items if it.id in ids})
    except (OSError, KeyError):  # no benchmark files (or settings): ids only, said so
        pass
    rank_exclude.save(out, args.exclude_inputs, *rank_exclude.find(ids, args.exclude_inputs))


def _print(summary: dict) -> None:
    if summary["excluded"]["items"]:
        print("excluded (in a training input): " + ", ".join(summary["excluded"]["items"]))
    for name, g in summary["groups"].items():
        for d, rows in g["by_decay"].items():
            cells = "  ".join(f"{r['source']} {r['top1']:.3f}" for r in rows)
            print(f"{name:6s} decay {d}: {g['steps']} steps, chance {g['chance']:.3f}  {cells}")


COMMAND = Command(
    "rank",
    RankOptions,
    rank_,
    HELP,
    (
        "Gold-step ranking: at each step of gold solutions, score the gold step against "
        "the agent's own samples with no rationale, a blank one, the stand-in "
        "rationale model, a trained one (--rationale-model) and an oracle written from "
        "the gold step; report the gold step's top-1 rate per source. Resumable: rerun "
        "with the same --out to continue."
    ),
)
