"""Which rank items a trained model may have seen: every item whose id, or whose
question text, appears in a training input the run names (`--exclude-inputs`).

Training inputs are read as they come: JSONL (documents, triples or kept pairs: the
fields `id` and `doc_id` are matched as ids, every string field is searched for the
question) or text (one id per line, as a made run's `input_ids.txt`; any other text
file is searched for the question). The result is kept in the run directory as
excluded.json, so that later reports and phases leave the same items out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .documents import InputError

FILE = "excluded.json"
MIN_QUESTION_CHARS = 20  # shorter questions would match by chance inside other text


def _norm(text: str) -> str:
    return " ".join(text.split())


class TrainingInputs:
    """The ids and the text of training inputs, streamed file by file."""

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [Path(p) for p in paths]
        self.ids: set[str] = set()
        self.texts: list[str] = []
        for path in self.paths:
            if not path.is_file():
                raise InputError(f"--exclude-inputs: no such file: {path}")
            if path.suffix == ".jsonl":
                self._jsonl(path)
            else:
                self._text(path)

    def _jsonl(self, path: Path) -> None:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise InputError(f"{path}:{n}: not valid JSON") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{n}: expected a JSON object per line")
                self.ids.update(str(row[k]) for k in ("id", "doc_id") if row.get(k))
                self.texts.append(_norm(" ".join(v for v in row.values() if isinstance(v, str))))

    def _text(self, path: Path) -> None:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        if lines and all(len(ln.split()) == 1 for ln in lines):  # an id list
            self.ids.update(lines)
        else:
            self.texts.append(_norm(" ".join(lines)))

    def match(self, item_id: str, question: str | None) -> str | None:
        """'id', 'question' or None."""
        if item_id in self.ids:
            return "id"
        q = _norm(question or "")
        if len(q) >= MIN_QUESTION_CHARS and any(q in t for t in self.texts):
            return "question"
        return None


def find(items: Mapping[str, str | None], paths: Sequence[str | Path]) -> tuple[dict, str]:
    """{item id: how it matched} over `items` (id -> question, None when unknown), and
    what could be matched: 'id and question', or 'id only' (id lists, or no question
    known)."""
    inputs = TrainingInputs(paths)
    found = {}
    for item_id, question in items.items():
        how = inputs.match(item_id, question)
        if how:
            found[item_id] = how
    by_question = inputs.texts and all(q is not None for q in items.values())
    return found, "id and question" if by_question else "id only"


def save(out: Path, paths: Iterable[str | Path], found: dict, matched_by: str) -> dict:
    record = {
        "inputs": [str(p) for p in paths],
        "items": dict(sorted(found.items())),
        "matched_by": matched_by,
    }
    (out / FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


def load(out: Path) -> dict:
    path = out / FILE
    return json.loads(path.read_text()) if path.is_file() else {"inputs": [], "items": {}}
