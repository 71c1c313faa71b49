"""`rationalyst import-checkpoint SRC --base BASE --out OUT`: make a fine-tuned body that
cannot be served (the published RATIONALYST is a bare `LlamaModel`, float32, with one
added pad row and no LM head) into a `*ForCausalLM` checkpoint that can.

- Body: SRC's tensors, streamed shard by shard (tensor_files.py): memory holds about
  one source shard (mapped) and one tensor, never a model.
- Head: SRC's own where it has one; else BASE's `lm_head`, or BASE's embeddings where
  BASE ties them. OUT never ties: its head and embeddings are separate tensors.
- Vocabulary rows of SRC beyond BASE's (the reference's training script added a pad
  token and resized the embeddings) are dropped, so OUT's vocabulary is BASE's and no
  id the model can emit lacks a head row (DROPPED below says why).
- Tokenizer, chat template and generation config: BASE's (SRC's tokenizer only where
  BASE has none, with the dropped tokens taken out).
- Written to a temporary folder beside OUT, checked (loaded, a few greedy tokens), then
  renamed: a failure leaves no OUT. `rationalyst_import.json` records what came from
  where, and hashes. Needs torch, transformers and safetensors; no vLLM.

    python -m rationalyst.making.import_checkpoint SRC --base BASE --out OUT  (same flags)
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from rationalyst.cli.flags import Command, Options, cli_field

from . import tensor_files as tf
from .documents import InputError
from .import_sources import (
    META_FILES,
    SRC_FILES,
    Source,
    base_head,
    causal_arch,
    embed_name,
    locate,
    read_config,
    src_weights,
)
from .import_tokenizer import copy_tokenizer, has_tokenizer

RECORD = "rationalyst_import.json"
DROPPED = (
    "dropped: OUT keeps BASE's vocabulary, so every id the model can generate "
    "has a head row. The reference added the pad token only to pad batches "
    "(attention-masked, no loss), so no text needs it."
)
_SKIP = ("rotary_emb.inv_freq",)  # buffers some old checkpoints saved; never loaded


class ImportOptions(Options):
    """The command's options; each is a typed flag (cli/flags.py)."""

    src: str = cli_field(
        positional=True,
        metavar="SRC",
        description=(
            "the checkpoint to import: a local folder or a hub id "
            "(e.g. Dongwei/Rationalyst_reasoning_datasets)"
        ),
    )
    base: str = Field(
        description=(
            "the model SRC was fine-tuned from: a folder, a hub id, or 'default' (the "
            "packaged model). Gives the LM head where SRC has none, the tokenizer, the chat "
            "template and the generation config"
        )
    )
    out: Path = Field(description="the folder to write")
    dtype: Literal["bfloat16", "float16", "float32"] = Field(
        "bfloat16", description="dtype of OUT's weights"
    )
    overwrite: bool = Field(
        False,
        description=("replace an existing OUT (the old one stays until the new one is complete)"),
    )
    shard_mb: int = Field(2000, ge=1, description="largest output shard, in MB")
    check: bool = Field(
        True,
        description=(
            "before reporting success, load OUT and generate a few greedy tokens (needs "
            "about OUT's size in memory)"
        ),
    )
    progress: bool = Field(True, description="show a progress bar")


@dataclass
class Plan:
    """Every output tensor, in the order they are read: (out name, file, source name,
    rows to keep or None), the head last."""

    items: list[tuple[str, Path, str, int | None]]
    shapes: list[tuple[str, tuple[int, ...]]]
    vocab: int
    src_vocab: int
    head_from: str


def plan(src: Source, base: Source, src_config: dict, base_config: dict) -> Plan:
    """Check SRC against BASE from headers and configs alone (nothing written yet)."""
    tensors = src_weights(src)
    embed = embed_name(tensors, "SRC", src.path)
    src_vocab, hidden = tensors[embed].shape
    arch = causal_arch(src_config)
    if "lm_head.weight" in tensors:
        head_name, head_from = "lm_head.weight", "SRC lm_head.weight"
    elif arch in (src_config.get("architectures") or []) and src_config.get("tie_word_embeddings"):
        head_name, head_from = embed, f"SRC {embed} (SRC ties its head to them)"
    else:
        head_name, head_from = None, None
    if head_name:  # BASE's sizes from its config: its weights are not needed
        head = tensors[head_name]
        vocab, base_hidden = base_config.get("vocab_size"), base_config.get("hidden_size")
        if not isinstance(vocab, int) or not isinstance(base_hidden, int):
            raise InputError(f"BASE {base.path}/config.json has no vocab_size / hidden_size")
    else:
        head_name, head, head_from = base_head(base, base_config)
        vocab, base_hidden = head.shape
    if hidden != base_hidden or head.shape[1] != hidden:
        raise InputError(
            f"SRC's hidden size ({hidden}) does not match BASE's "
            f"({base_hidden}): --base must be the model SRC was fine-tuned from"
        )
    if min(src_vocab, head.shape[0]) < vocab:
        raise InputError(
            f"SRC's vocabulary ({min(src_vocab, head.shape[0])} rows) is "
            f"smaller than BASE's ({vocab}): --base must be the model SRC was "
            "fine-tuned from"
        )
    items, shapes = [], []
    for file in sorted({t.file for t in tensors.values()}):
        for name, info in tensors.items():
            if info.file != file or name == "lm_head.weight" or name.endswith(_SKIP):
                continue
            out = name if name.startswith("model.") else "model." + name
            rows = vocab if name == embed else None
            items.append((out, file, name, rows))
            shapes.append((out, (vocab, hidden) if rows else info.shape))
    items.append(("lm_head.weight", head.file, head_name, vocab))
    shapes.append(("lm_head.weight", (vocab, hidden)))
    return Plan(items, shapes, vocab, src_vocab, head_from)


def _out_config(src_config: dict, base_config: dict, p: Plan, dtype: str) -> dict:
    config = {k: v for k, v in src_config.items() if k not in ("_name_or_path", "torch_dtype")}
    config.update(
        architectures=[causal_arch(src_config)],
        vocab_size=p.vocab,
        tie_word_embeddings=False,
        dtype=dtype,
    )
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key in base_config:
            config[key] = base_config[key]  # BASE's ids: SRC's pad may be a dropped row
        elif key == "pad_token_id" and (config.get(key) or 0) >= p.vocab:
            config.pop(key)
    return config


def _write_weights(p: Plan, writer: tf.ShardWriter, dtype: str, progress: bool) -> None:
    import torch
    from safetensors import safe_open
    from tqdm import tqdm

    target = getattr(torch, dtype)
    sizes = {name: nbytes for shard in writer.shards for name, _, nbytes in shard}
    with tqdm(
        total=writer.total_bytes,
        unit="B",
        unit_scale=True,
        desc="import",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        i = 0
        while i < len(p.items):
            file = p.items[i][1]
            # One source file open at a time: its mapping (and resident pages) goes
            # when it closes.
            with safe_open(str(file), framework="pt") as f:
                while i < len(p.items) and p.items[i][1] == file:
                    out, _, name, rows = p.items[i]
                    tensor = f.get_slice(name)[:rows] if rows else f.get_tensor(name)
                    writer.write(out, tensor.to(target))
                    del tensor
                    bar.update(sizes[out])
                    i += 1
    writer.finish()


def check_output(folder: Path, dtype: str) -> dict:
    """Load OUT as transformers would and generate a few greedy tokens."""
    try:
        return _greedy(folder, dtype)
    except InputError:
        raise
    except Exception as exc:  # whatever transformers raises: the import is not usable
        raise InputError(
            f"the imported model failed its check ({type(exc).__name__}: {exc}); nothing was kept"
        ) from None


def _greedy(folder: Path, dtype: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model, info = AutoModelForCausalLM.from_pretrained(
        folder, dtype=getattr(torch, dtype), output_loading_info=True
    )
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise InputError(f"the imported model did not load cleanly: {bad}")
    question = [{"role": "user", "content": "What is 2 + 3?"}]
    if tok.chat_template:
        ids = tok.apply_chat_template(
            question, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    else:
        ids = tok(question[0]["content"], return_tensors="pt")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.no_grad():
        out = model.generate(
            **ids,
            max_new_tokens=4,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=pad,
        )
    if not all(torch.isfinite(s).all() for s in out.scores):
        raise InputError(
            f"the imported model's logits are not finite in {dtype}: try --dtype float32"
        )
    new = out.sequences[0, ids["input_ids"].shape[1] :].tolist()
    return {
        "prompt": question[0]["content"],
        "greedy_ids": new,
        "greedy_text": tok.decode(new, skip_special_tokens=False),
    }


def run(opts: ImportOptions) -> dict:
    """Import; returns the record also written to OUT/rationalyst_import.json."""
    out = opts.out.expanduser().absolute()
    if out.exists() and (not opts.overwrite or not out.is_dir()):
        raise InputError(
            f"{out} exists: choose another --out, or --overwrite"
            if out.is_dir()
            else f"{out} exists and is not a folder"
        )
    src = locate(opts.src, "SRC", SRC_FILES)
    base = locate(opts.base, "BASE", META_FILES)
    src_config, base_config = read_config(src, "SRC"), read_config(base, "BASE")
    p = plan(src, base, src_config, base_config)
    if not (has_tokenizer(base.path) or has_tokenizer(src.path)):
        raise InputError(
            f"no tokenizer in SRC ({src.path}) or BASE ({base.path}): one of "
            "them needs tokenizer.json, tokenizer.model or vocab.json"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    writer_bytes = sum(_nbytes(s, opts.dtype) for _, s in p.shapes)
    free = shutil.disk_usage(out.parent).free
    if free < writer_bytes + (32 << 20):
        raise InputError(
            f"not enough disk space for {out}: it needs about "
            f"{writer_bytes / 1e9:.2f} GB, {free / 1e9:.2f} GB are free there"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide OUT from other users
        writer = tf.ShardWriter(tmp, p.shapes, opts.dtype, opts.shard_mb * 10**6)
        try:
            _write_weights(p, writer, opts.dtype, opts.progress)
        finally:
            writer.abort()
        config = _out_config(src_config, base_config, p, opts.dtype)
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        tokenizer = copy_tokenizer(src.path, base.path, tmp, p.vocab)
        generation = None
        for origin, where in (("BASE", base.path), ("SRC", src.path)):
            if (where / "generation_config.json").is_file():
                shutil.copyfile(where / "generation_config.json", tmp / "generation_config.json")
                generation = origin
                break
        head_file = p.items[-1][1]
        src_files = {item[1] for item in p.items[:-1]} | {src.path / "config.json"}
        base_files = {base.path / "config.json"}
        (src_files if p.head_from.startswith("SRC") else base_files).add(head_file)
        record = {
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "src": {
                **src.describe(),
                "architectures": src_config.get("architectures"),
                "vocab_size": p.src_vocab,
                "sha256": _hashes(src_files),
            },
            "base": {**base.describe(), "sha256": _hashes(base_files)},
            "out": {
                "architectures": config["architectures"],
                "dtype": opts.dtype,
                "vocab_size": p.vocab,
                "sha256": writer.sha256,
            },
            "from": {
                "body": "SRC",
                "lm_head": p.head_from,
                **tokenizer,
                "generation_config": generation,
            },
            "extra_vocab_rows": {
                "count": p.src_vocab - p.vocab,
                "ids": list(range(p.vocab, p.src_vocab))[:16],
                "decision": DROPPED,
            },
        }
        if opts.check:
            record["check"] = check_output(tmp, opts.dtype)
        (tmp / RECORD).write_text(json.dumps(record, indent=1) + "\n")
        _replace(tmp, out)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InputError(
                f"disk full while writing {out}; nothing was kept: free about "
                f"{writer_bytes / 1e9:.2f} GB there and rerun"
            ) from None
        raise InputError(f"cannot write {out}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


def _hashes(files) -> dict[str, str]:
    return {f.name: tf.sha256_file(f) for f in sorted(files)}


def _nbytes(shape, dtype: str) -> int:
    n = tf.ITEM_BYTES[tf.DTYPE_CODES[dtype]]
    for dim in shape:
        n *= dim
    return n


def _replace(tmp: Path, out: Path) -> None:
    """tmp -> out; an old out (--overwrite) is removed only once tmp is in its place."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{tmp.name}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


# ---- the command ----------------------------------------------------------------

HELP = "make a checkpoint without an LM head (the published RATIONALYST) servable"


def cmd_import(opts: ImportOptions) -> int:
    try:
        record = run(opts)
    except InputError as exc:
        print(f"rationalyst: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rationalyst: interrupted; {opts.out} was not written", file=sys.stderr)
        return 130
    extra = record["extra_vocab_rows"]["count"]
    print(
        f"imported {opts.src} -> {opts.out} ({record['out']['architectures'][0]}, "
        f"{opts.dtype}, vocabulary {record['out']['vocab_size']}"
        + (f", {extra} extra SRC row(s) dropped" if extra else "")
        + f"; head: {record['from']['lm_head']})"
    )
    if "check" in record:
        print(f"check: greedy {record['check']['greedy_text']!r}")
    print(f"serve it: RATIONALYST_RATIONALE_MODEL={opts.out} rationalyst serve")
    return 0


COMMAND = Command(
    "import-checkpoint",
    ImportOptions,
    cmd_import,
    HELP,
    (
        "Import a fine-tuned body without an LM head (such as the published "
        "RATIONALYST, a bare LlamaModel) as a *ForCausalLM checkpoint: BASE's head, "
        "tokenizer, chat template and generation config; rows SRC added to BASE's "
        "vocabulary dropped. Streams shard by shard."
    ),
)


def main(argv=None) -> int:
    """`python -m rationalyst.making.import_checkpoint`: for machines without vLLM."""
    from rationalyst.cli import flags

    return flags.main(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
