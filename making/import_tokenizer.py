"""The tokenizer of an imported checkpoint: BASE's, copied file for file (so its chat
template comes along), or SRC's where BASE has none, with the tokens SRC added beyond
BASE's vocabulary taken out (their rows are dropped from the weights). Either way its
ids must fit OUT's vocabulary, which is checked by loading it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .documents import InputError

FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)
TEMPLATES = ("chat_template.jinja", "chat_template.json")
_CORE = ("tokenizer.json", "tokenizer.model", "vocab.json")  # one of them: a tokenizer


def has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _CORE)


def _has_template(folder: Path) -> bool:
    if any((folder / name).is_file() for name in TEMPLATES):
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template"))
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def copy_tokenizer(src: Path, base: Path, out: Path, vocab: int) -> dict:
    """Write the tokenizer into `out`; what came from where, for the import record."""
    origin = "BASE" if has_tokenizer(base) else "SRC" if has_tokenizer(src) else None
    if origin is None:
        raise InputError(
            f"no tokenizer in SRC ({src}) or BASE ({base}): one of them needs "
            "tokenizer.json, tokenizer.model or vocab.json"
        )
    folder = base if origin == "BASE" else src
    for name in FILES + TEMPLATES:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, out / name)
    removed: list[str] = []
    template = origin if _has_template(folder) else None
    if origin == "SRC":
        removed = _drop_added_tokens(out, vocab)
        if _has_template(base):  # the chat template the base model was tuned with
            for name in TEMPLATES:
                if (base / name).is_file():
                    shutil.copyfile(base / name, out / name)
            template = "BASE"
    size = _loaded_size(out)
    if size > vocab:
        raise InputError(
            f"the {origin} tokenizer has {size} tokens but OUT's vocabulary has "
            f"{vocab} rows: its ids would not match the weights"
        )
    return {"tokenizer": origin, "chat_template": template, "tokens_removed": removed}


def _drop_added_tokens(out: Path, vocab: int) -> list[str]:
    """Take tokens with ids >= vocab out of the copied tokenizer files."""
    removed: set[str] = set()
    path = out / "tokenizer.json"
    if path.is_file():
        data = json.loads(path.read_text())
        keep = [t for t in data.get("added_tokens") or [] if t["id"] < vocab]
        removed |= {t["content"] for t in data.get("added_tokens") or [] if t["id"] >= vocab}
        data["added_tokens"] = keep
        path.write_text(json.dumps(data, ensure_ascii=False))
    path = out / "added_tokens.json"
    if path.is_file():
        data = json.loads(path.read_text())
        removed |= {t for t, i in data.items() if i >= vocab}
        path.write_text(json.dumps({t: i for t, i in data.items() if i < vocab}))
    path = out / "tokenizer_config.json"
    if path.is_file():
        data = json.loads(path.read_text())
        decoder = data.get("added_tokens_decoder") or {}
        removed |= {v.get("content") for k, v in decoder.items() if int(k) >= vocab}
        if decoder:
            data["added_tokens_decoder"] = {k: v for k, v in decoder.items() if int(k) < vocab}
        _drop_special(data, removed)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    path = out / "special_tokens_map.json"
    if path.is_file():
        data = json.loads(path.read_text())
        _drop_special(data, removed)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    return sorted(t for t in removed if t)


def _drop_special(data: dict, removed: set[str]) -> None:
    """Unset special tokens (pad_token, ...) that name a removed token."""
    for key in [k for k in data if k.endswith("_token")]:
        value = data[key]
        content = value.get("content") if isinstance(value, dict) else value
        if content in removed:
            del data[key]


def _loaded_size(folder: Path) -> int:
    from transformers import AutoTokenizer

    try:
        return len(AutoTokenizer.from_pretrained(folder))
    except Exception as exc:  # whatever the tokenizer's own loader raises
        raise InputError(f"the tokenizer does not load ({type(exc).__name__}: {exc})") from None
