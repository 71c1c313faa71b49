"""`rationalyst prefilter | extract | filter`: their options and exit codes. The work
is in making/prefilter.py, making/extract.py and making/filter.py; heavy imports
happen only once a command runs. (`train` is making/train.py's COMMAND: it also runs
under `accelerate launch`.)"""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import Field, field_validator

from rationalyst.cli.flags import Command, Options, cli_field
from rationalyst.cli.options import EngineOptions


def check_shard(text: str) -> str:
    from rationalyst.making.documents import parse_shard

    parse_shard(text)  # InputError, a ValueError: the flag's usage error
    return text


class ExtractOptions(EngineOptions):
    inputs: list[str] = cli_field(
        positional=True,
        metavar="INPUT",
        description=(
            ".jsonl (a 'text' field, or 'question' + 'solution') or .txt (documents "
            "separated by blank lines)"
        ),
    )
    out: Path = Field(description="output directory")
    mode: typing.Literal["insert", "rewrite"] = Field(
        "insert",
        description=(
            "insert: write only the rationale at each sentence boundary (works on small "
            "models); rewrite: the reference's, regenerate the text with <BOT>..<EOT>"
        ),
    )
    shard: str = Field("0/1", description="i/n: this machine's share of the inputs")
    max_rationale_tokens: int = Field(48, ge=1, description="tokens per rationale, at most")
    max_boundaries: int = Field(
        0, ge=0, description=("insert: rationales per document, 0 = every boundary")
    )
    leak_threshold: float = Field(
        0.7, ge=0, le=1, description=("reject a rationale this similar (0-1) to the following text")
    )
    leak_meaning: float = Field(
        0.58,
        ge=0,
        le=1,
        description=(
            "reject a rationale whose sentence embedding (or a clause's) has this cosine "
            "with the following text; 0.58 is set for the bundled model"
        ),
    )
    leak_embedder: str = Field(
        "wordllama",
        description=(
            "embedding model of that check: 'wordllama' (bundled), a sentence-transformers "
            "directory (set --leak-meaning for it), or 'none' for the lexical rules only"
        ),
    )
    min_similarity: float = Field(
        0.9,
        ge=0,
        le=1,
        description=(
            "rewrite: keep an output only if, rationales stripped, it is this similar to the input"
        ),
    )
    model: str = Field(
        "default",
        description=(
            "model that writes the rationales: 'default' (the packaged agent model), a "
            "checkpoint directory or a hub id"
        ),
    )

    @field_validator("shard")
    @classmethod
    def _shard(cls, text: str) -> str:
        return check_shard(text)

    @field_validator("leak_embedder")
    @classmethod
    def _embedder(cls, spec: str) -> str:
        # Checked before the model loads: the guard loads its embedder on first use.
        if spec not in ("wordllama", "none") and not Path(spec).is_dir():
            raise ValueError(
                f"no such directory: {spec} (a sentence-transformers model, 'wordllama' or 'none')"
            )
        return spec


class PrefilterOptions(Options):
    inputs: list[str] = cli_field(
        positional=True, metavar="INPUT", description=("corpus: .jsonl or .txt, as extract reads")
    )
    reasoning: list[str] = cli_field(
        nargs="+",
        metavar="FILE",
        description=("reasoning data (.jsonl with 'question' + 'solution' or 'text', or .txt)"),
    )
    out: Path = Field(description="output directory")
    model: str | None = cli_field(
        None,
        metavar="PATH",
        description=(
            "embedding model: a sentence-transformers directory (the paper: MiniLM or "
            "mpnet) or 'wordllama' (bundled) [default: none, the lexical TF-IDF stand-in]"
        ),
    )
    threshold: float | None = Field(
        None,
        description=(
            "least cosine kept [default 0.3 with a --model directory, the paper's; 0.2 for "
            "wordllama and 0.1 lexical, each from one small check]"
        ),
    )
    max_chars: int = Field(2000, ge=1, description="longest kept document, in characters")
    batch_size: int = Field(256, ge=1, description="documents scored at once")
    shard: str = Field("0/1", description="i/n: this machine's share of the inputs")
    overwrite: bool = Field(
        False, description=("delete this command's earlier output in the directory first")
    )
    progress: bool = Field(True, description="show a progress bar (--no-progress: none)")

    @field_validator("shard")
    @classmethod
    def _shard(cls, text: str) -> str:
        return check_shard(text)


class FilterOptions(EngineOptions):
    dir: Path = cli_field(positional=True, metavar="DIR", description="an extract --out directory")
    min_gain: float = Field(0.0, description="keep a triple when its gain is at least this")
    decay: float = Field(
        0.9, gt=0, le=1, description="weight of the i-th following token is decay**i"
    )
    model: str = Field(
        "default",
        description=(
            "model that scores the text: 'default' (the packaged agent model), a "
            "checkpoint directory or a hub id"
        ),
    )


def extract(opts: ExtractOptions) -> int:
    from rationalyst.making import documents, extract
    from rationalyst.making.engines import guard, with_engine
    from rationalyst.making.store import open_run

    def run() -> int:
        shard = documents.parse_shard(opts.shard)
        total = documents.scan(opts.inputs, shard)  # bad input fails before the model
        docs = documents.iter_documents(opts.inputs, shard)
        cfg = extract.ExtractConfig(
            mode=opts.mode,
            max_rationale_tokens=opts.max_rationale_tokens,
            leak_threshold=opts.leak_threshold,
            min_similarity=opts.min_similarity,
            max_boundaries=opts.max_boundaries,
            leak_meaning=opts.leak_meaning,
            leak_embedder=None if opts.leak_embedder == "none" else opts.leak_embedder,
        )
        config = {
            "inputs": [str(Path(p).resolve()) for p in opts.inputs],
            "shard": opts.shard,
            "model": opts.model,
            **vars(cfg),
        }
        open_run(opts.out, "extract", config, opts.overwrite, extract.FILES)
        stats = with_engine(
            opts,
            lambda engine: extract.run(
                engine, docs, opts.out, cfg, opts.concurrency, progress=opts.progress, total=total
            ),
        )
        print(
            f"{stats['kept']}/{stats['read']} documents kept, {stats['triples']} triples "
            f"({stats['rationales_leak']} leaks rejected) -> {opts.out / 'triples.jsonl'}"
        )
        return 0

    return guard(run)


def filter_(opts: FilterOptions) -> int:
    from rationalyst.making import filter as filt
    from rationalyst.making.documents import InputError
    from rationalyst.making.engines import guard, with_engine
    from rationalyst.making.store import open_run

    def run() -> int:
        if not (opts.dir / "triples.jsonl").is_file():
            raise InputError(
                f"{opts.dir} has no triples.jsonl: run `rationalyst extract "
                f"... --out {opts.dir}` first"
            )
        config = {"model": opts.model, "min_gain": opts.min_gain, "decay": opts.decay}
        open_run(opts.dir, "filter", config, opts.overwrite, filt.FILES)
        s = with_engine(
            opts,
            lambda engine: filt.run(
                engine,
                opts.dir,
                opts.min_gain,
                opts.decay,
                opts.concurrency,
                progress=opts.progress,
            ),
        )
        print(
            f"kept {s['kept']}/{s['scored']} triples ({s['kept_fraction']:.0%}) -> "
            f"{opts.dir / 'kept.jsonl'}"
        )
        return 0

    return guard(run)


def prefilter(opts: PrefilterOptions) -> int:
    from rationalyst.making import documents, prefilter
    from rationalyst.making.engines import guard
    from rationalyst.making.store import open_run

    def run() -> int:
        shard = documents.parse_shard(opts.shard)
        total = documents.scan(opts.inputs, shard)
        reasoning = prefilter.reasoning_texts(opts.reasoning)
        threshold = (
            opts.threshold
            if opts.threshold is not None
            else prefilter.default_threshold(opts.model)
        )
        config = {
            "inputs": [str(Path(p).resolve()) for p in opts.inputs],
            "reasoning": [str(Path(p).resolve()) for p in opts.reasoning],
            "shard": opts.shard,
            "model": opts.model,
            "threshold": threshold,
            "max_chars": opts.max_chars,
        }
        open_run(opts.out, "prefilter", config, opts.overwrite, prefilter.FILES)
        scorer = prefilter.EmbeddingScorer(opts.model) if opts.model else prefilter.LexicalScorer()
        scorer.fit(reasoning)
        s = prefilter.run(
            scorer,
            documents.iter_documents(opts.inputs, shard),
            opts.out,
            threshold,
            opts.max_chars,
            opts.batch_size,
            progress=opts.progress,
            total=total,
        )
        print(
            f"kept {s['kept']}/{s['read']} documents ({s['too_long']} too long, "
            f"{s['below_threshold']} below {threshold:g}, scorer: {s['scorer']}) -> "
            f"{opts.out / 'kept.jsonl'}"
        )
        return 0

    return guard(run)


PREFILTER = Command(
    "prefilter",
    PrefilterOptions,
    prefilter,
    "keep corpus documents close to reasoning data",
    (
        "The paper's selection of unlabelled documents: keep those of at "
        "most --max-chars characters whose sentence embedding has cosine "
        ">= --threshold with the reasoning set's mean embedding. Without "
        "--model, a TF-IDF stand-in scores them."
    ),
)
EXTRACT = Command(
    "extract",
    ExtractOptions,
    extract,
    "write implicit rationales of documents as triples",
    (
        "Extract implicit rationales from documents into triples "
        "(preceding, rationale, following). Resumable: rerun with the same "
        "--out to continue."
    ),
)
FILTER = Command(
    "filter",
    FilterOptions,
    filter_,
    "keep triples whose rationale helps predict the text",
    (
        "Score each triple's following text with and without its rationale; "
        "keep it when the gain is >= --min-gain."
    ),
)
