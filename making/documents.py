"""Input documents for `rationalyst extract`: JSONL (`text`, or `question` + `solution`
as in our benchmark files) and plain text (one document per blank-line-separated
block). Bad input fails before any model is loaded, naming the file and line."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rationalyst.supervisor import prompts
from rationalyst.supervisor.types import Problem

from . import render


class InputError(ValueError):
    """Input the user must fix; the CLI prints it and exits 2."""


@dataclass(frozen=True)
class Document:
    id: str
    text: str | None  # None when the bytes were not UTF-8
    source: str
    # A question/answer item: the Problem the server would pose and its solution as
    # the agent's steps (render.py); `text` is then their rendered trajectory.
    problem: Problem | None = None
    steps: tuple[str, ...] = ()


def qa_document(doc_id: str, obj: dict, where: str) -> Document:
    """A question + solution object (choices and dataset optional) as the server
    renders it (render.py)."""
    choices = obj.get("choices")
    if choices is not None and not (
        isinstance(choices, list) and all(isinstance(c, str) for c in choices)
    ):
        raise InputError(f"{where}: 'choices' must be a list of strings")
    dataset = render.dataset_of(doc_id, obj["solution"], obj.get("dataset"))
    problem = render.qa_problem(obj["question"], choices, dataset)
    steps = render.qa_steps(obj["solution"], dataset)
    return Document(doc_id, prompts.trajectory(problem, steps), where, problem, steps)


def _jsonl(path: Path, mine: Callable[[], bool]) -> Iterator[Document]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip() or not mine():  # another shard's line: not even parsed
                continue
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield Document(where, None, where)
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{where}: expected a JSON object per line")
            doc_id = str(obj.get("id") or where)
            if isinstance(obj.get("text"), str):
                yield Document(doc_id, obj["text"], where)
            elif isinstance(obj.get("question"), str) and isinstance(obj.get("solution"), str):
                yield qa_document(doc_id, obj, where)
            else:
                raise InputError(
                    f"{where}: no 'text' field (nor 'question' + 'solution'); "
                    "each line must be an object with a 'text' string"
                )


def _txt(path: Path, mine: Callable[[], bool]) -> Iterator[Document]:
    """Blocks between blank lines, read line by line; only this shard's are kept."""
    block: list[bytes] | None = None  # this shard's block being read
    start, in_block = 0, False
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip(b" \t\r\n"):
                if not in_block:
                    in_block, start = True, lineno
                    block = [] if mine() else None
                if block is not None:
                    block.append(line)
                continue
            if block is not None:
                yield _txt_doc(path, start, block)
            block, in_block = None, False
    if block is not None:
        yield _txt_doc(path, start, block)


def _txt_doc(path: Path, lineno: int, lines: list[bytes]) -> Document:
    where = f"{path}:{lineno}"
    try:
        text = b"".join(lines).decode("utf-8").strip()
    except UnicodeDecodeError:
        text = None
    return Document(where, text, where)


def check_paths(paths: Sequence[str]) -> list[Path]:
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InputError(f"no such file: {p}")
        if path.suffix not in (".jsonl", ".txt"):
            raise InputError(
                f"{p}: unsupported input; use .jsonl (text, or question + "
                "solution) or .txt (blank-line-separated documents)"
            )
        out.append(path)
    return out


def iter_documents(paths: Sequence[str], shard: tuple[int, int] = (0, 1)) -> Iterator[Document]:
    """This shard's documents, streamed: the i-th of n takes documents i, i+n, i+2n...
    of the inputs in order. Other shards' documents are counted, never parsed or
    kept, so a shard's memory and validation do not grow with the others' share."""
    i, n = shard
    seen = itertools.count()

    def mine() -> bool:
        return next(seen) % n == i

    for path in check_paths(paths):
        yield from (_jsonl(path, mine) if path.suffix == ".jsonl" else _txt(path, mine))


def scan(paths: Sequence[str], shard: tuple[int, int] = (0, 1)) -> int:
    """Validate this shard's documents before any model loads (bad JSON, no text,
    duplicate ids: resume keys on them) and count them; keeps only their ids."""
    seen: set[str] = set()
    for d in iter_documents(paths, shard):
        if d.id in seen:
            raise InputError(f"{d.source}: duplicate document id {d.id!r}")
        seen.add(d.id)
    return len(seen)


def read_documents(paths: Sequence[str], shard: tuple[int, int] = (0, 1)) -> list[Document]:
    """This shard's documents as a list (small inputs, tests), validated by scan."""
    scan(paths, shard)
    return list(iter_documents(paths, shard))


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not m or int(m[2]) < 1 or int(m[1]) >= int(m[2]):
        raise InputError(f"--shard must be i/n with 0 <= i < n, got {text!r}")
    return int(m[1]), int(m[2])
