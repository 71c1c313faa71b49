"""`rationalyst eval`: run benchmarks against a running server and grade the answers.

Speaks only HTTP through `clients.client`. Writes, under --out:
- items.jsonl: one record per (dataset, strategy, item), with the full response;
- summary.md: accuracy (95% Wilson interval), no-answer count, tokens and time per item;
- summary.png: a grouped bar chart (needs matplotlib: the `eval` extra).
The run resumes: items already graded in items.jsonl are skipped; errored ones retried.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import typing
from pathlib import Path

from pydantic import Field, create_model, field_validator

from rationalyst.cli.flags import Command, borrow, given_fields
from rationalyst.cli.local_server import LocalServer, ServerStartError
from rationalyst.cli.options import ServerClientOptions
from rationalyst.clients import datasets, grading
from rationalyst.clients.client import AsyncRationalystClient, RationalystError
from rationalyst.clients.eval_report import read_records
from rationalyst.protocol import DEFAULT_STRATEGY, STRATEGIES, Profile, SolveRequest, StrategyName

HELP = "grade strategies on benchmark files against a running server (HTTP client)"
DESCRIPTION = (
    "Run each (dataset, strategy) over the first N items of the benchmark files and grade "
    "the server's answers: a running one (--url; start it with `make serve`), or with "
    "--in-process a private one this command starts and stops, configured by "
    "RATIONALYST_* like `rationalyst serve`. Interrupted runs resume: rerun with the "
    "same --out."
)


# Request fields every solve of the run shares, as flags of the request model.
REQUEST_FLAGS = [
    "max_steps",
    "num_candidates",
    "temperature",
    "max_tokens",
    "timeout_s",
    "score_decay",
]


Grading = typing.Literal[grading.GRADINGS]  # type: ignore[valid-type]


class _EvalFlags(ServerClientOptions):
    dataset: list[str] = Field(description=f"comma-separated: {', '.join(datasets.BENCHMARKS)}")
    strategies: list[StrategyName] = Field(  # type: ignore[valid-type]
        [DEFAULT_STRATEGY, "greedy", "random"],
        min_length=1,
        description=f"comma-separated, of {', '.join(STRATEGIES)}",
    )
    limit: int = Field(50, ge=0, description="first N items of each dataset, 0 for all")
    concurrency: int = Field(4, ge=1, description="requests in flight")
    in_process: bool = Field(
        False,
        description=(
            "start a server for this run (models from RATIONALYST_* settings, its log in "
            "OUT/server.log) and stop it at the end"
        ),
    )
    out: Path | None = Field(None, description="output folder [default out/eval-<timestamp>]")
    data_dir: Path = Field(
        default_factory=datasets.default_data_dir,
        description=(
            "benchmark JSONL folder [env RATIONALYST_DATA_DIR, default "
            "../shared/data/benchmarks beside the repo]"
        ),
    )
    profile: Profile = Field(
        "reference",
        description=(
            "prompt profile sent with each item (with the item's `dataset`); strategyqa, "
            "which has no reference prompt, always goes as generic"
        ),
    )
    grading: Grading = Field(
        "reference",
        description=(
            "reference: re-read each answer from the steps by the reference code's "
            "parsing, quirks included (see clients/grading.py), against its normalised "
            "gold; lenient: the server's own answer"
        ),
    )
    seed: int = Field(0, ge=0, description="item i is solved with seed N+i")
    timeout: float = Field(1800.0, gt=0, description="seconds to wait for one solve")

    @field_validator("dataset")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        for name in names:
            datasets.get(name)  # ValueError: unknown dataset, with the known ones
        if not names:
            raise ValueError("name at least one dataset")
        return names


EvalOptions = create_model(
    "EvalOptions", __base__=_EvalFlags, **borrow(SolveRequest, REQUEST_FLAGS)
)


def request_fields(opts) -> dict:
    """The request fields given on the command line (the rest: the server's defaults)."""
    return given_fields(opts, REQUEST_FLAGS)


# ---- records ----------------------------------------------------------------------


def _tokens(usage: dict) -> int:
    # Every *_tokens count (a verifier's too), not counts of other things.
    return sum(
        int(v) for k, v in usage.items() if k.endswith("_tokens") and isinstance(v, (int, float))
    )


async def solve_one(
    client: AsyncRationalystClient,
    bench: datasets.Benchmark,
    item: dict,
    strategy: str,
    seed: int,
    args,
) -> dict:
    record = {
        "dataset": bench.name,
        "strategy": strategy,
        "id": str(item["id"]),
        "profile": bench.profile(args.profile),
        "grading": args.grading,
        "gold": bench.gold(item),
        "prediction": None,
        "correct": False,
        "no_answer": False,
        "tokens": 0,
        "time_s": 0.0,
        "error": None,
        "trace": None,
    }
    start = time.perf_counter()
    try:
        result = await client.solve(
            **bench.request(item, args.profile),
            strategy=strategy,
            seed=seed,
            **request_fields(args),
        )
    except RationalystError as exc:
        status = f"HTTP {exc.status_code}: " if exc.status_code else ""
        record.update(error=status + exc.message, time_s=time.perf_counter() - start)
        return record
    request = bench.request(item)
    answer = grading.prediction(
        args.grading, bench.dataset or "arc_challenge", result.raw, request, seed
    )
    if args.grading == "reference":
        gold = grading.reference_gold(bench.dataset, item) if bench.dataset else bench.gold(item)
        correct, record["gold"] = answer is not None and answer == gold, gold
    else:
        correct = bench.correct(item, answer)
    record.update(
        prediction=answer,
        server_answer=result.answer,
        correct=correct,
        no_answer=answer is None or isinstance(answer, grading.Guess),
        guessed=isinstance(answer, grading.Guess),
        tokens=_tokens(result.raw.get("usage", {})),
        time_s=result.timings.total_ms / 1e3,
        wall_s=time.perf_counter() - start,
        trace=result.raw,
    )
    return record


# ---- the run ----------------------------------------------------------------------


Loaded = list[tuple[datasets.Benchmark, list[dict]]]


def load(args) -> Loaded | None:
    """Each dataset's items, read before any server is contacted or started; None (and
    one line naming the file) when a file is missing or is not JSON lines with ids."""
    loaded = []
    for name in args.dataset:
        bench = datasets.get(name)
        path = Path(args.data_dir) / bench.file
        try:
            items = datasets.load_items(bench, args.data_dir, args.limit or None)
            problem = next((i for i, it in enumerate(items) if "id" not in it), None)
        except OSError as exc:
            problem = exc.strerror or str(exc)
        except (ValueError, AttributeError) as exc:  # JSON, encoding, or a line not an object
            problem = f"not JSON lines of objects ({exc})"
        else:
            if problem is not None:
                problem = f"item {problem} has no id"
        if problem is not None:
            print(f"rationalyst eval: {path}: {problem} (--data-dir)", file=sys.stderr)
            return None
        loaded.append((bench, items))
    return loaded


async def run_async(args, out: Path, loaded: Loaded) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    path = out / "items.jsonl"
    prior = read_records(path)
    done = {k for k, r in prior.items() if not r.get("error")}
    async with AsyncRationalystClient(
        args.url, api_key=args.api_key, timeout=args.timeout
    ) as client:
        try:
            await client.health()
        except RationalystError as exc:
            print(
                f"rationalyst eval: no server at {args.url} ({exc.message}); start one "
                "with `make serve` or `rationalyst serve`",
                file=sys.stderr,
            )
            return 1
        needs_newline = (
            path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        )
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "acc {task.fields[acc]}  no-answer {task.fields[none]}  errors {task.fields[err]}"
            ),
            TimeElapsedColumn(),
        )
        with open(path, "a", encoding="utf-8") as f, Progress(*columns) as progress:
            if needs_newline:
                f.write("\n")  # after a torn line from an interrupted run
            sem = asyncio.Semaphore(args.concurrency)
            for bench, items in loaded:
                for strategy in args.strategies:
                    graded = [
                        prior[k]
                        for it in items
                        if (k := (bench.name, strategy, str(it["id"]))) in done
                    ]
                    stats = {
                        "n": len(graded),
                        "ok": sum(r["correct"] for r in graded),
                        "none": sum(r["no_answer"] for r in graded),
                        "err": 0,
                    }

                    def fields() -> dict:
                        acc = f"{stats['ok'] / stats['n']:.3f}" if stats["n"] else "-"
                        return {"acc": acc, "none": stats["none"], "err": stats["err"]}

                    task = progress.add_task(
                        f"{bench.name}/{strategy}",
                        total=len(items),
                        completed=len(graded),
                        **fields(),
                    )

                    async def one(i: int, item: dict) -> None:
                        async with sem:
                            r = await solve_one(client, bench, item, strategy, args.seed + i, args)
                        f.write(json.dumps(r, ensure_ascii=False) + "\n")
                        f.flush()
                        if r["error"]:
                            stats["err"] += 1
                        else:
                            stats["n"] += 1
                            stats["ok"] += r["correct"]
                            stats["none"] += r["no_answer"]
                        progress.update(task, advance=1, **fields())

                    await asyncio.gather(
                        *(
                            one(i, it)
                            for i, it in enumerate(items)
                            if (bench.name, strategy, str(it["id"])) not in done
                        )
                    )
    return 0


def run(args) -> int:
    """The run `args` (EvalOptions) describe; its exit status."""
    loaded = load(args)
    if loaded is None:
        return 2
    out = args.out or Path("out") / time.strftime("eval-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    print(f"rationalyst eval: writing to {out} (rerun with --out {out} to resume)", file=sys.stderr)
    try:
        if args.in_process:
            print(
                "rationalyst eval: starting a server for this run (loading models; "
                f"log in {out / 'server.log'})",
                file=sys.stderr,
            )
            with LocalServer(out / "server.log") as args.url:
                status = asyncio.run(run_async(args, out, loaded))
        else:
            status = asyncio.run(run_async(args, out, loaded))
    except ServerStartError as exc:
        print(f"rationalyst eval: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rationalyst eval: interrupted; resume with --out {out}", file=sys.stderr)
        return 130
    if status == 0:
        from rationalyst.clients import eval_report

        eval_report.write(out)
        print((out / "summary.md").read_text())
    return status


COMMAND = Command("eval", EvalOptions, run, HELP, DESCRIPTION)


def main(argv: typing.Sequence[str] | None = None) -> int:
    """`rationalyst eval ARGS` (tests call it in-process)."""
    from rationalyst.cli import flags

    return flags.main(COMMAND, argv)
