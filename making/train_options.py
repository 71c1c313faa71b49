"""`rationalyst train`'s options and its evaluation and checkpoint schedule: the
command's flags are TrainOptions' fields (cli/flags.py). Kept apart from train.py so
that the schedule's arithmetic (docs/making-at-scale.md) reads on its own."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import Field, model_validator

from rationalyst.cli.flags import Options, cli_field

# Evaluation scales with the run, not with a fixed step count: a capped subset of the
# held-out pairs, about 10 times per run. See docs/making-at-scale.md for its share of
# compute at the paper's scale.
EVAL_MAX, EVAL_EVERY, SAVE_EVERY = 256, 0.1, 0.25


def schedule(total_steps: int, eval_every: float, save_every: float) -> tuple[int, int]:
    """Steps between evaluations, and between checkpoints: fractions of the run."""
    return (
        max(1, math.ceil(eval_every * total_steps)),
        max(1, math.ceil(save_every * total_steps)),
    )


def eval_share(pairs_trained: float, n_eval: int, evaluations: int) -> float:
    """Evaluation's share of the run's compute, counted in forward passes over pairs
    of the same mean length: a pair trained on costs about 3 (forward and backward),
    an evaluated pair 1. `pairs_trained`: epochs x training pairs; `evaluations`
    counts the one before and the one after."""
    done = evaluations * n_eval
    return done / (done + 3 * pairs_trained) if done else 0.0


def evaluations(total_steps: int, eval_steps: int) -> int:
    return total_steps // eval_steps + 2  # the scheduled ones, before, after


class TrainOptions(Options):
    dirs: list[Path] = cli_field(
        positional=True,
        metavar="DIR",
        description=(
            "filter directories (their kept.jsonl), or JSONL files in the reference's "
            "training format ('preceeding' and 'rationale' per line); all are concatenated"
        ),
    )
    base: str = Field("default", description="base checkpoint")
    out: Path = Field(description="checkpoint directory")
    full: bool = Field(
        False,
        description=(
            "full fine-tune with the reference's settings (lr 2e-5, cosine, warm-up 3%, "
            "batch 2 x 8 accumulation) instead of LoRA"
        ),
    )
    head_only: bool = Field(
        False,
        description=(
            "freeze the body; train only the LM head and the final norm (lr 1e-3): gives "
            "an imported body whose head was never published a head tuned to it"
        ),
    )
    epochs: float = Field(1.0, gt=0, description="passes over the training pairs")
    max_steps: int = Field(-1, description="stop after this many steps (-1: no cap)")
    lr: float | None = Field(
        None, gt=0, description=("learning rate [default 2e-4 LoRA, 2e-5 --full, 1e-3 --head-only]")
    )
    batch_size: int = Field(2, ge=1, description="per device")
    grad_accum: int | None = Field(
        None, ge=1, description=("gradient accumulation steps [default 1 LoRA, 8 --full]")
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha")
    max_length: int = Field(
        1024, ge=1, description=("tokens per pair; longer preceding text is cut from the front")
    )
    gradient_checkpointing: bool = Field(
        True, description="recompute activations in the backward pass: far less memory"
    )
    eval_fraction: float = Field(0.05, ge=0, lt=1, description="held out")
    eval_max: int = Field(
        EVAL_MAX, ge=0, description=("held-out pairs evaluated each time, at most (a fixed subset)")
    )
    eval_every: float = Field(
        EVAL_EVERY,
        gt=0,
        le=1,
        description=(
            "evaluate every this fraction of the run's steps, and before and after (0.1: 10 times)"
        ),
    )
    save_every: float = Field(
        SAVE_EVERY,
        gt=0,
        le=1,
        description=(
            "checkpoint (to resume a stopped run) every this fraction of the run's steps; "
            "the model is saved at the end"
        ),
    )
    logging_steps: int = Field(5, ge=1, description="log the loss every N steps")
    seed: int = Field(0, ge=0, description="shuffle and split seed")
    overwrite: bool = Field(False, description="replace an existing --out")

    @model_validator(mode="after")
    def _one_mode(self) -> TrainOptions:
        if self.full and self.head_only:
            raise ValueError("--full and --head-only exclude each other")
        return self
