"""`rationalyst train`: fine-tune a rationale model on kept triples.

Input: `filter` directories (their kept.jsonl), or JSONL files in the format the
reference's fine-tuning script reads (`preceeding`, so spelt, and `rationale` per line).
Chat pairs: user = preceding text, assistant = rationale, built by
`supervisor.prompts.rationale_chat`, the function that builds the server's rationale
prompt, so training and serving cannot drift. Loss on the rationale tokens only.
transformers Trainer with peft LoRA (merged at the end), `--full`, or `--head-only`
(body frozen: repairs the head of an imported body, see import_checkpoint.py). Imports
no vLLM (GPU machines may lack it) and runs under `accelerate launch` (DDP; FSDP for
--full).

    python -m rationalyst.making.train DIR --base MODEL --out CKPT   (same flags)

TrainOptions is the command's options: a flag is one field (cli/flags.py).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

from rationalyst.cli.flags import Command
from rationalyst.supervisor.prompts import rationale_chat

from .documents import InputError
from .engines import guard
from .train_batch import RationaleCollator, rationale_loss
from .train_options import (
    TrainOptions,
    eval_share,
    evaluations,
    schedule,
)

FILES = ("train_log.jsonl", "loss.png", "train_summary.json", "config.json")


def load_pairs(dirs) -> list[dict]:
    """Pairs from filter directories' kept.jsonl, or from JSONL files in the reference's
    training format (`preceeding` or `preceding`, and `rationale`)."""
    pairs = []
    for d in dirs:
        path = Path(d) / "kept.jsonl" if Path(d).is_dir() else Path(d)
        if not path.is_file():
            raise InputError(
                f"{d} has no kept.jsonl: run `rationalyst filter {d}` first"
                if Path(d).is_dir()
                else f"{d}: no such file or directory"
            )
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    preceding = row["preceding"] if "preceding" in row else row["preceeding"]
                    if not (isinstance(preceding, str) and isinstance(row["rationale"], str)):
                        raise TypeError
                    pairs.append(
                        {
                            "preceding": preceding,
                            "rationale": row["rationale"],
                            "doc": row.get("doc_id"),
                        }
                    )
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise InputError(
                        f"{path}:{n}: not a rationale pair (preceding or the "
                        "reference's preceeding, and rationale)"
                    ) from None
    if not pairs:
        raise InputError(f"no kept triples in {', '.join(map(str, dirs))}: nothing to train on")
    return pairs


def encode_pair(tokenizer, preceding: str, rationale: str, max_length: int) -> dict:
    """input_ids and labels of one pair; labels are -100 except on the rationale (and
    the end-of-turn that stops it). Too long: drop whole sentences from the front."""
    while True:
        msgs = rationale_chat(preceding)
        prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(
            msgs + [{"role": "assistant", "content": rationale}], tokenize=False
        )
        if not full.startswith(prompt):
            raise ValueError("the chat template renders the prompt differently with a reply")
        p_ids = tokenizer.encode(prompt, add_special_tokens=False)
        t_ids = tokenizer.encode(full[len(prompt) :].rstrip("\n"), add_special_tokens=False)
        if len(p_ids) + len(t_ids) <= max_length or len(preceding) < 16:
            break
        cut = preceding.find(" ", len(preceding) // 4)
        preceding = preceding[cut + 1 :] if cut > 0 else preceding[len(preceding) // 4 :]
    ids = (p_ids + t_ids)[:max_length]
    labels = ([-100] * len(p_ids) + t_ids)[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def split_eval(pairs: list[dict], fraction: float, seed: int) -> tuple[list, list]:
    """(train, held-out), split by document: the pairs of one document (its "doc",
    the triple's doc_id) are all on one side, so held-out pairs share no prefix with
    training pairs. Whole documents are held out until `fraction` of the pairs is.
    A pair with no doc is a document of its own."""
    docs: dict = {}
    for i, p in enumerate(pairs):
        docs.setdefault(p.get("doc") or ("#pair", i), []).append(p)
    groups = list(docs.values())
    random.Random(seed).shuffle(groups)
    n_eval = 0 if fraction <= 0 or len(pairs) < 2 else max(1, round(fraction * len(pairs)))
    held: list = []
    while groups and len(held) < n_eval and len(groups) > 1:
        held.extend(groups.pop())
    return [p for g in groups for p in g], held


def _training_args(args, out: Path, n_train: int, has_eval: bool, use_bf16: bool):
    import dataclasses

    import torch
    from transformers import TrainingArguments

    grad_accum = args.grad_accum or (8 if args.full else 1)
    lr = args.lr or (2e-5 if args.full else 1e-3 if getattr(args, "head_only", False) else 2e-4)
    # Processes under accelerate/torchrun (their env): each step takes a batch on each.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps = (
        args.max_steps
        if args.max_steps > 0
        else math.ceil(args.epochs * n_train / (args.batch_size * grad_accum * world))
    )
    eval_steps, save_steps = schedule(steps, args.eval_every, args.save_every)
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    warmup = (
        {"warmup_ratio": 0.03} if "warmup_ratio" in names else {"warmup_steps": 0.03}
    )  # transformers >= 5 takes a ratio here
    return TrainingArguments(
        output_dir=str(out / ".trainer"),
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        logging_steps=args.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        # Only the loss is read: otherwise Trainer keeps every held-out token's logits
        # (vocabulary-wide, fp32) until the evaluation ends.
        prediction_loss_only=True,
        # Activations of every layer for a batch of long prompts are most of the memory
        # left (docs/making.md); recomputing them costs a fraction of a step.
        # FSDP's own activation checkpointing (accelerate launch
        # --fsdp_activation_checkpointing) excludes Trainer's: Trainer refuses both.
        gradient_checkpointing=args.gradient_checkpointing
        and os.environ.get("FSDP_ACTIVATION_CHECKPOINTING", "false") != "true",
        gradient_checkpointing_kwargs={"use_reentrant": False},
        # Checkpoints under --out/.trainer let a stopped run continue (Trainer's own
        # resume); the last one is removed with the folder once the model is saved.
        # A few per run: with --full each one gathers the whole model.
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,
        report_to=[],
        bf16=use_bf16,
        seed=args.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        # Launched as several processes (torchrun sets MASTER_ADDR) with no GPU: DDP over
        # gloo. Without it accelerate sees no distributed setup and each process trains
        # alone, into the same --out.
        use_cpu=world > 1 and "MASTER_ADDR" in os.environ and not torch.cuda.is_available(),
        **warmup,
    )


def plot_loss(log: list[dict], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:  # GPU images may lack it: the log still has every figure
        print("matplotlib missing: no loss.png (train_log.jsonl has the losses)")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (("loss", "train"), ("eval_loss", "eval")):
        pts = [(r["step"], r[key]) for r in log if key in r]
        if pts:
            ax.plot(*zip(*pts), marker="o" if key == "eval_loss" else None, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (rationale tokens)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(args: TrainOptions) -> int:
    out: Path = args.out
    resume = None if args.overwrite else _stopped_run(out)
    ours = {out / ".trainer"}  # all a stopped run leaves: rerunning continues it
    if out.exists() and set(out.iterdir()) - ours and not args.overwrite:
        raise InputError(f"{out} is not empty: choose another --out, or --overwrite")
    if args.overwrite:
        shutil.rmtree(out / ".trainer", ignore_errors=True)
    pairs = load_pairs(args.dirs)
    base = _resolve_base(args.base)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    train_rows, eval_rows = split_eval(pairs, args.eval_fraction, args.seed)
    held_out, eval_rows = len(eval_rows), eval_rows[: max(0, args.eval_max)]
    train_ds = [
        encode_pair(tok, r["preceding"], r["rationale"], args.max_length) for r in train_rows
    ]
    eval_ds = [encode_pair(tok, r["preceding"], r["rationale"], args.max_length) for r in eval_rows]
    cuda = torch.cuda.is_available()
    use_bf16 = cuda and torch.cuda.is_bf16_supported()
    base_dtype = (
        json.loads((Path(base) / "config.json").read_text()).get("torch_dtype") or "float32"
    )
    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.bfloat16 if use_bf16 else torch.float32
    )
    head_only = getattr(args, "head_only", False)
    if head_only:
        freeze_body(model)
    elif not args.full:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=args.lora_r,
                lora_alpha=args.lora_alpha,
                lora_dropout=0.05,
                target_modules="all-linear",
                task_type="CAUSAL_LM",
            ),
        )
    targs = _training_args(args, out, len(train_ds), bool(eval_ds), use_bf16)
    per_step = args.batch_size * targs.gradient_accumulation_steps * targs.world_size
    n_steps = (
        targs.max_steps
        if targs.max_steps > 0
        else math.ceil(args.epochs * len(train_ds) / per_step)
    )
    n_evals = evaluations(n_steps, targs.eval_steps) if eval_ds else 0
    pairs_trained = n_steps * per_step if targs.max_steps > 0 else args.epochs * len(train_ds)
    share = eval_share(pairs_trained, len(eval_ds), n_evals)
    print(
        f"{n_steps} steps; evaluation of {len(eval_ds)} of {held_out} held-out pairs "
        f"every {targs.eval_steps} steps ({n_evals} in all, about {share:.1%} of the "
        f"compute); checkpoint every {targs.save_steps} steps"
    )
    step_timer = _StepTimer()
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=train_ds,
        eval_dataset=eval_ds or None,
        callbacks=[step_timer],
        data_collator=RationaleCollator(tok.pad_token_id),
        compute_loss_func=rationale_loss,
    )
    # Held-out loss before any step: what the run changed (skipped when resuming).
    before = trainer.evaluate() if eval_ds and not resume else {}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if resume:
        print(f"resuming from {resume}")
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - t0
    final_eval = trainer.evaluate() if eval_ds else {}
    _save(trainer, tok, out, "full" if args.full else "head" if head_only else "lora", base_dtype)
    if trainer.is_world_process_zero():
        log = trainer.state.log_history
        with open(out / "train_log.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in log)
        plot_loss(log, out / "loss.png")
        summary = {
            "base": str(base),
            "mode": "full" if args.full else "head-only" if head_only else "lora",
            "pairs": len(pairs),
            "train": len(train_ds),
            "held_out": held_out,
            "eval": len(eval_ds),
            "eval_steps": targs.eval_steps,
            "evaluations": n_evals,
            "eval_share": round(share, 4),
            "save_steps": targs.save_steps,
            "steps": trainer.state.global_step,
            "seconds": round(seconds, 1),
            "steps_per_s": round(trainer.state.global_step / seconds, 3),
            # steps only: no evaluation or checkpoint writes, which differ by mode
            "steps_per_s_training": round(step_timer.steps / step_timer.seconds, 3)
            if step_timer.seconds
            else None,
            "train_loss": result.training_loss,
            "eval_loss_before": before.get("eval_loss"),
            "eval_loss": final_eval.get("eval_loss"),
            "world_size": targs.world_size,
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "peak_gpu_mem_gib": (
                round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None
            ),
        }
        (out / "train_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps(summary))
    return 0


class _StepTimer:
    """Seconds spent in optimizer steps (forward, backward, update), for steps/s that
    compare modes fairly. A TrainerCallback by duck typing: imports stay lazy."""

    def __init__(self):
        self.seconds, self.steps, self._t = 0.0, 0, None

    def __getattr__(self, name):  # every other Trainer event: nothing to do
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_step_begin(self, *args, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, *args, **kwargs):
        if self._t is not None:
            self.seconds += time.perf_counter() - self._t
            self.steps += 1


def freeze_body(model) -> None:
    """Only the LM head and the final norm learn. A head tied to the input embeddings
    is untied first: training it must not move what the body reads."""
    import torch

    head = model.get_output_embeddings()
    if head.weight is model.get_input_embeddings().weight:
        model.config.tie_word_embeddings = False
        head.weight = torch.nn.Parameter(head.weight.detach().clone())
    for p in model.parameters():
        p.requires_grad_(False)
    head.weight.requires_grad_(True)
    model.base_model.norm.weight.requires_grad_(True)


def _save(trainer, tok, out: Path, mode: str, dtype: str) -> None:
    """A merged checkpoint of the base's causal-LM class, with its tokenizer."""
    import torch

    if mode == "full":
        # Trainer gathers FSDP shards into a full state dict on the main process.
        trainer.save_model(str(out))
    elif mode == "head":
        model = trainer.accelerator.unwrap_model(trainer.model)
        if trainer.is_world_process_zero():
            if dtype in ("bfloat16", "float16"):
                model = model.to(getattr(torch, dtype))
            model.save_pretrained(str(out))
    else:
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        if trainer.is_world_process_zero():
            if dtype in ("bfloat16", "float16"):
                merged = merged.to(getattr(torch, dtype))
            merged.save_pretrained(str(out))
    if trainer.is_world_process_zero():
        tok.save_pretrained(str(out))

        shutil.rmtree(out / ".trainer", ignore_errors=True)


def _stopped_run(out: Path) -> Path | None:
    """The last Trainer checkpoint of a run that stopped before saving its model (a
    finished --out holds more than .trainer, and main refuses it before this matters)."""
    ckpts = sorted(
        (out / ".trainer").glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1])
    )
    return ckpts[-1] if ckpts else None


def _resolve_base(spec: str) -> str:
    """The packaged default or a directory, checked like the server checks models."""
    from rationalyst.supervisor.models import default_cache_dir, resolve

    return resolve(spec, default_cache_dir())


COMMAND = Command(
    "train",
    TrainOptions,
    lambda opts: guard(lambda: main(opts)),
    "fine-tune a rationale model on kept triples",
    (
        "Fine-tune on kept triples as chat pairs (user = preceding, "
        "assistant = rationale), LoRA by default; --full, or --head-only to "
        "repair an imported head. Runs under `accelerate launch` for several "
        "GPUs."
    ),
)


if __name__ == "__main__":  # `accelerate launch -m rationalyst.making.train ...`
    from rationalyst.cli import flags

    sys.exit(flags.main(COMMAND, prog="rationalyst"))
