"""`rationalyst prompts`: the first step's three prompts for one benchmark item, exactly
as the server builds them, so the protocol can be audited without a model.

Prints the agent's chat messages, RATIONALYST's (the trajectory as one user turn) and
the scorer's (with a placeholder rationale, and a placeholder candidate as the turn
whose tokens are scored), plus where a step ends and the caps a server with the
current settings (RATIONALYST_*) applies. The messages are the exact strings sent to
the chat template; --render also shows the agent model's rendering of each.
"""

from __future__ import annotations

import json
import sys
import typing

from pydantic import Field

from rationalyst.cli.flags import Command, Options
from rationalyst.clients import datasets
from rationalyst.protocol import (
    DATASETS,
    DEFAULT_MAX_STEPS,
    DEFAULT_NUM_CANDIDATES,
    DEFAULT_SCORE_DECAY,
    DEFAULT_TEMPERATURE,
    Profile,
    SolveRequest,
    default_step_end,
)

HELP = "show the first step's agent, RATIONALYST and scorer prompts for a benchmark item"
RATIONALE_PLACEHOLDER = "<rationale>"
CANDIDATE_PLACEHOLDER = "<candidate step>"
# The benchmark file each dataset name reads (MATH: the full test set, as the paper).
FILES = {"math": "math_full"}


class PromptsOptions(Options):
    """The command's options; each is a typed flag (cli/flags.py)."""

    dataset: typing.Literal[DATASETS] = Field(  # type: ignore[valid-type]
        description="the benchmark whose item and prompt are shown"
    )
    profile: Profile = Field("reference", description="prompt profile")
    index: int = Field(0, ge=0, description="0-based item of the dataset's benchmark file")
    json: bool = Field(False, description="print one JSON object")
    render: bool = Field(
        False,
        description=(
            "also render each prompt with the agent model's chat template (loads its tokenizer)"
        ),
    )


def build(opts: PromptsOptions) -> dict:
    """The JSON the command prints (without renderings)."""
    from rationalyst.server.settings import ServerSettings
    from rationalyst.supervisor import profiles, prompts
    from rationalyst.supervisor.types import Problem

    settings = ServerSettings()
    profiles.configure(settings.fewshot_dir, settings.benchmark_dir)
    bench = datasets.get(FILES.get(opts.dataset, opts.dataset))
    items = datasets.load_items(bench, settings.benchmark_dir, opts.index + 1)
    if opts.index >= len(items):
        raise ValueError(f"{bench.file} has {len(items)} items; --index must be below that")
    item = items[opts.index]
    req = SolveRequest(**bench.request(item, opts.profile))
    problem = Problem(
        question=req.question.strip(),
        task=req.task,
        choices=tuple(req.choices) if req.choices else None,
        profile=req.profile,
        category=req.category,
        dataset=req.dataset,
    )
    step_end = default_step_end(req.profile)
    turn = step_end == "turn"
    scorer = prompts.scorer_messages(problem, [], RATIONALE_PLACEHOLDER)
    return {
        "dataset": opts.dataset,
        "file": bench.file,
        "index": opts.index,
        "id": str(item["id"]),
        "profile": req.profile,
        "task": req.task,
        "step_end": step_end,
        "caps": {
            "step_max_tokens": settings.turn_max_tokens if turn else settings.step_max_tokens,
            "rationale_max_tokens": (
                settings.turn_max_tokens if turn else settings.rationale_max_tokens
            ),
            "max_tokens": None if req.profile == "reference" else settings.max_tokens,
            "max_steps": DEFAULT_MAX_STEPS,
            "num_candidates": DEFAULT_NUM_CANDIDATES,
            "temperature": DEFAULT_TEMPERATURE,
            "score_decay": DEFAULT_SCORE_DECAY,
        },
        "agent": prompts.agent_messages(problem, []),
        "rationale": prompts.rationale_messages(problem, []),
        "scorer": scorer + [{"role": "assistant", "content": CANDIDATE_PLACEHOLDER}],
        "scored": "the last message's tokens only (its mean log-probability)",
    }


def _render(out: dict) -> None:
    from rationalyst.server.settings import ServerSettings
    from rationalyst.supervisor.models import resolve

    settings = ServerSettings()
    model = resolve(settings.agent_model, settings.cache_dir)  # before transformers loads
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    out["rendered"] = {
        "agent": tok.apply_chat_template(out["agent"], tokenize=False, add_generation_prompt=True),
        "rationale": tok.apply_chat_template(
            out["rationale"], tokenize=False, add_generation_prompt=True
        ),
        "scorer": tok.apply_chat_template(out["scorer"], tokenize=False),
    }


def _print_text(out: dict) -> None:
    head = {k: out[k] for k in ("dataset", "file", "index", "id", "profile", "task", "step_end")}
    print(" ".join(f"{k}={v}" for k, v in head.items()))
    print("caps: " + ", ".join(f"{k}={v}" for k, v in out["caps"].items()))
    for name in ("agent", "rationale", "scorer"):
        print(f"\n===== {name}: {len(out[name])} messages =====")
        for m in out[name]:
            print(f"--- {m['role']} ---\n{m['content']}")
        if "rendered" in out:
            print(f"----- {name}, rendered -----\n{out['rendered'][name]}")
    print(f"\n(scorer: {out['scored']})")


def run(opts: PromptsOptions) -> int:
    from rationalyst.supervisor.engine import EngineError
    from rationalyst.supervisor.models import ModelError

    try:
        out = build(opts)
        if opts.render:
            _render(out)
    # EngineError: a split is missing; ModelError: RATIONALYST_AGENT_MODEL unusable
    except (ValueError, OSError, EngineError, ModelError) as exc:
        print(f"rationalyst prompts: {exc}", file=sys.stderr)
        return 2
    if opts.json:
        print(json.dumps(out, indent=1, ensure_ascii=False))
    else:
        _print_text(out)
    return 0


COMMAND = Command("prompts", PromptsOptions, run, HELP, __doc__)
