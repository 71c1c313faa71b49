"""`rationalyst prefilter | extract | filter | train`: argument parsing and exit codes.
The work is in prefilter.py, extract.py, filter.py and train.py; heavy imports happen
only once a command runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def _engine_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--model", default="default", help=(
        f"model that {what}: 'default' (the packaged agent model), a checkpoint "
        "directory or a hub id [default: default]"))
    p.add_argument("--url", default=None, help=(
        "a `vllm serve` of that model (OpenAI-compatible) instead of loading it "
        "in-process, or several replicas of it, comma-separated (the work is spread "
        "over them, as `serve` does); --model names the checkpoint it runs (for its "
        "tokenizer)"))
    p.add_argument("--api-key", default=None, help="bearer key for --url")
    p.add_argument("--max-model-len", type=int, default=None,
                   help="context length of the in-process engine [model's own]")
    p.add_argument("--concurrency", type=int, default=8,
                   help="documents (extract) or triples (filter) in flight [8]")
    p.add_argument("--overwrite", action="store_true",
                   help="delete this command's earlier output in the directory first")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parsers(sub) -> None:
    ex = sub.add_parser("extract", help="write implicit rationales of documents as triples",
                        description=(
                            "Extract implicit rationales from documents into triples "
                            "(preceding, rationale, following). Resumable: rerun with "
                            "the same --out to continue."))
    ex.add_argument("inputs", nargs="+", metavar="INPUT", help=(
        ".jsonl (a 'text' field, or 'question' + 'solution') or .txt (documents "
        "separated by blank lines)"))
    ex.add_argument("--out", required=True, type=Path, help="output directory")
    ex.add_argument("--mode", choices=("insert", "rewrite"), default="insert", help=(
        "insert: write only the rationale at each sentence boundary (works on small "
        "models); rewrite: the reference's, regenerate the text with <BOT>..<EOT> "
        "[insert]"))
    ex.add_argument("--shard", default="0/1", help="i/n: this machine's share of the inputs")
    ex.add_argument("--max-rationale-tokens", type=int, default=48)
    ex.add_argument("--max-boundaries", type=int, default=0,
                    help="insert: rationales per document, 0 = every boundary [0]")
    ex.add_argument("--leak-threshold", type=float, default=0.7, help=(
        "reject a rationale this similar (0-1) to the following text [0.7]"))
    ex.add_argument("--min-similarity", type=float, default=0.9, help=(
        "rewrite: keep an output only if, rationales stripped, it is this similar to "
        "the input [0.9]"))
    _engine_flags(ex, "writes the rationales")
    ex.set_defaults(func=cmd_extract)

    fi = sub.add_parser("filter", help="keep triples whose rationale helps predict the text",
                        description=(
                            "Score each triple's following text with and without its "
                            "rationale; keep it when the gain is >= --min-gain."))
    fi.add_argument("dir", type=Path, metavar="DIR", help="an extract --out directory")
    fi.add_argument("--min-gain", type=float, default=0.0, help="[0]")
    fi.add_argument("--decay", type=float, default=0.9,
                    help="weight of the i-th following token is decay**i [0.9]")
    _engine_flags(fi, "scores the text")
    fi.set_defaults(func=cmd_filter)

    pf = sub.add_parser("prefilter", help="keep corpus documents close to reasoning data",
                        description=(
                            "The paper's selection of unlabelled documents: keep those "
                            "of at most --max-chars characters whose sentence embedding "
                            "has cosine >= --threshold with the reasoning set's mean "
                            "embedding. Without --model, a TF-IDF stand-in scores them."))
    pf.add_argument("inputs", nargs="+", metavar="INPUT", help="corpus: .jsonl or .txt, as "
                    "extract reads")
    pf.add_argument("--reasoning", nargs="+", required=True, metavar="FILE", help=(
        "reasoning data (.jsonl with 'question' + 'solution' or 'text', or .txt)"))
    pf.add_argument("--out", required=True, type=Path, help="output directory")
    pf.add_argument("--model", default=None, metavar="PATH", help=(
        "a sentence-transformers model directory (the paper: MiniLM or mpnet) [none: "
        "the lexical TF-IDF stand-in]"))
    pf.add_argument("--threshold", type=float, default=None, help=(
        "least cosine kept [0.3 with --model, the paper's; 0.1 lexical, from one small "
        "check]"))
    pf.add_argument("--max-chars", type=int, default=2000, help="longest kept document [2000]")
    pf.add_argument("--batch-size", type=int, default=256, help="documents scored at once")
    pf.add_argument("--shard", default="0/1", help="i/n: this machine's share of the inputs")
    pf.add_argument("--overwrite", action="store_true",
                    help="delete this command's earlier output in the directory first")
    pf.add_argument("--no-progress", action="store_true", help="no progress bar")
    pf.set_defaults(func=cmd_prefilter)

    tr = sub.add_parser("train", help="fine-tune a rationale model on kept triples",
                        description=(
                            "Fine-tune on kept triples as chat pairs (user = preceding, "
                            "assistant = rationale), LoRA by default; --full, or "
                            "--head-only to repair an imported head. Runs under "
                            "`accelerate launch` for several GPUs."))
    tr.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help=(
        "filter directories (their kept.jsonl), or JSONL files in the reference's "
        "training format ('preceeding' and 'rationale' per line); all are concatenated"))
    tr.add_argument("--base", default="default", help="base checkpoint [default]")
    tr.add_argument("--out", required=True, type=Path, help="checkpoint directory")
    from .train import add_train_flags

    add_train_flags(tr)
    tr.set_defaults(func=cmd_train)


def _fail(msg: str, code: int = 2) -> int:
    print(f"rationalyst: {msg}", file=sys.stderr)
    return code


def _with_engine(args, work):
    """Open the engine the flags name, run `await work(engine)` on it, and close it."""
    from rationalyst.supervisor.models import default_cache_dir

    from .engines import open_engine

    async def go():
        engine = await open_engine(args.model, args.url, cache_dir=default_cache_dir(),
                                   api_key=args.api_key, max_model_len=args.max_model_len,
                                   max_concurrency=max(1, args.concurrency) * 8)
        try:
            return await work(engine)
        finally:
            await engine.close()

    return asyncio.run(go())


def guard(run):
    """Map the errors a user can fix to one line and exit 2; Ctrl-C to 130."""
    from rationalyst.supervisor.engine import EngineError
    from rationalyst.supervisor.models import ModelError

    from .documents import InputError

    try:
        return run()
    except (InputError, ModelError, EngineError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; finished work is saved: rerun the same command to "
                     "continue", 130)


def cmd_extract(args: argparse.Namespace) -> int:
    from . import documents, extract
    from .store import open_run

    def run() -> int:
        shard = documents.parse_shard(args.shard)
        total = documents.scan(args.inputs, shard)  # bad input fails before the model
        docs = documents.iter_documents(args.inputs, shard)
        cfg = extract.ExtractConfig(args.mode, args.max_rationale_tokens, args.leak_threshold,
                                    args.min_similarity, args.max_boundaries)
        config = {"inputs": [str(Path(p).resolve()) for p in args.inputs],
                  "shard": args.shard, "model": args.model, **vars(cfg)}
        open_run(args.out, "extract", config, args.overwrite, extract.FILES)
        stats = _with_engine(args, lambda engine: extract.run(
            engine, docs, args.out, cfg, args.concurrency, progress=not args.no_progress,
            total=total))
        print(f"{stats['kept']}/{stats['read']} documents kept, {stats['triples']} triples "
              f"({stats['rationales_leak']} leaks rejected) -> {args.out / 'triples.jsonl'}")
        return 0

    return guard(run)


def cmd_filter(args: argparse.Namespace) -> int:
    from . import filter as filt
    from .documents import InputError
    from .store import open_run

    def run() -> int:
        if not (args.dir / "triples.jsonl").is_file():
            raise InputError(f"{args.dir} has no triples.jsonl: run `rationalyst extract "
                             f"... --out {args.dir}` first")
        config = {"model": args.model, "min_gain": args.min_gain, "decay": args.decay}
        open_run(args.dir, "filter", config, args.overwrite, filt.FILES)
        s = _with_engine(args, lambda engine: filt.run(
            engine, args.dir, args.min_gain, args.decay, args.concurrency,
            progress=not args.no_progress))
        print(f"kept {s['kept']}/{s['scored']} triples ({s['kept_fraction']:.0%}) -> "
              f"{args.dir / 'kept.jsonl'}")
        return 0

    return guard(run)


def cmd_prefilter(args: argparse.Namespace) -> int:
    from . import documents, prefilter
    from .store import open_run

    def run() -> int:
        if args.max_chars < 1 or args.batch_size < 1:
            raise documents.InputError("--max-chars and --batch-size must be at least 1")
        shard = documents.parse_shard(args.shard)
        total = documents.scan(args.inputs, shard)
        reasoning = prefilter.reasoning_texts(args.reasoning)
        threshold = args.threshold if args.threshold is not None else (
            prefilter.EMBEDDING_THRESHOLD if args.model else prefilter.LEXICAL_THRESHOLD)
        config = {"inputs": [str(Path(p).resolve()) for p in args.inputs],
                  "reasoning": [str(Path(p).resolve()) for p in args.reasoning],
                  "shard": args.shard, "model": args.model, "threshold": threshold,
                  "max_chars": args.max_chars}
        open_run(args.out, "prefilter", config, args.overwrite, prefilter.FILES)
        scorer = (prefilter.EmbeddingScorer(args.model) if args.model
                  else prefilter.LexicalScorer())
        scorer.fit(reasoning)
        s = prefilter.run(scorer, documents.iter_documents(args.inputs, shard), args.out,
                          threshold, args.max_chars, args.batch_size,
                          progress=not args.no_progress, total=total)
        print(f"kept {s['kept']}/{s['read']} documents ({s['too_long']} too long, "
              f"{s['below_threshold']} below {threshold:g}, scorer: {s['scorer']}) -> "
              f"{args.out / 'kept.jsonl'}")
        return 0

    return guard(run)


def cmd_train(args: argparse.Namespace) -> int:
    from . import train

    return guard(lambda: train.main(args))
