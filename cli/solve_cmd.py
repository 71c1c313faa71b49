"""`rationalyst solve "question"`: solve on a running server and show each step.

Speaks only HTTP through `clients.client`; imports nothing from `server` or
`supervisor`, so it starts fast. Exit status: 0 solved, 1 API error (the server's
message on stderr), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import json
import sys

from pydantic import create_model

from rationalyst.cli.flags import Command, borrow, cli_field, given_fields
from rationalyst.cli.options import ServerClientOptions
from rationalyst.clients.client import RationalystClient, RationalystError
from rationalyst.protocol import SolveRequest, SolveResult, Step

HELP = "solve a question on a running server (HTTP client)"
# Every request field is a flag (question is the argument, stream its own flag).
REQUEST_FLAGS = [n for n in SolveRequest.model_fields if n not in ("question", "stream")]


class _SolveFlags(ServerClientOptions):
    question: str = cli_field(positional=True, description="the question to solve")
    choices: list[str] | None = cli_field(
        None,
        nargs="+",
        metavar="CHOICE",
        description=("answer options (lettered A, B, ...); implies task multiple_choice"),
    )
    stream: bool = cli_field(False, description="show each step as it is chosen")
    json: bool = cli_field(
        False,
        description=(
            "print the raw response JSON (with --stream: one {event, data} object per line)"
        ),
    )


# The request's own fields (types, ranges, choices), as the server checks them.
SolveOptions = create_model(
    "SolveOptions",
    __base__=_SolveFlags,
    **borrow(SolveRequest, [n for n in REQUEST_FLAGS if n != "choices"]),
)


def _short(text: str, width: int = 72) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class _Printer:
    """Human output with rich: steps with rationale and candidates, then the answer."""

    def __init__(self) -> None:
        from rich.console import Console

        self.out = Console(highlight=False, soft_wrap=False)

    def step(self, step: Step) -> None:
        from rich.text import Text

        head = Text(f"Step {step.index + 1}", style="bold")
        head.append(f"  {step.elapsed_ms / 1e3:.1f} s", style="dim")
        self.out.print(head)
        if step.rationale:
            self.out.print(Text("  rationale: " + _short(step.rationale, 200), style="dim italic"))
        chosen = [c for c in step.candidates if c.chosen]
        others = sorted(
            (c for c in step.candidates if not c.chosen),
            key=lambda c: -(c.score if c.score is not None else float("-inf")),
        )
        for c in chosen + others:
            line = Text("  ✓ " if c.chosen else "  ✗ ", style="green" if c.chosen else "red")
            if c.score is not None:
                line.append(f"{c.score:+.2f}  ", style="cyan" if c.chosen else "dim")
            line.append(
                step.text if c.chosen else _short(c.text), style="bold" if c.chosen else "dim"
            )
            self.out.print(line)

    def result(self, result: SolveResult) -> None:
        from rich.text import Text

        answer = Text("\nAnswer: ", style="bold")
        answer.append(
            result.answer if result.answer is not None else "(none)",
            style="bold green" if result.answer is not None else "bold yellow",
        )
        answer.append(
            f"   (finish: {result.finish_reason}, {len(result.steps)} steps, seed {result.seed})",
            style="dim",
        )
        self.out.print(answer)
        u, t = result.usage, result.timings
        self.out.print(
            Text(
                f"usage: agent {u.agent_prompt_tokens} prompt + {u.agent_completion_tokens} "
                f"completion tokens, rationale {u.rationale_tokens}, scored {u.scored_tokens}\n"
                f"time: {t.total_ms / 1e3:.1f} s total (sample {t.sample_ms / 1e3:.1f} s, "
                f"rationale {t.rationale_ms / 1e3:.1f} s, score {t.score_ms / 1e3:.1f} s)",
                style="dim",
            )
        )


def run(opts) -> int:
    """Solve opts.question with the request fields given on the command line."""
    kwargs = given_fields(opts, REQUEST_FLAGS)
    printer = None if opts.json else _Printer()
    try:
        with RationalystClient(opts.url, api_key=opts.api_key, timeout=opts.timeout) as client:
            if not opts.stream:
                result = client.solve(opts.question, **kwargs)
                if printer is None:
                    print(json.dumps(result.raw, indent=2, ensure_ascii=False))
                else:
                    for step in result.steps:
                        printer.step(step)
                    printer.result(result)
                return 0
            for item in client.stream_solve(opts.question, **kwargs):
                if printer is None:
                    event = "step" if isinstance(item, Step) else "done"
                    print(
                        json.dumps({"event": event, "data": item.raw}, ensure_ascii=False),
                        flush=True,
                    )
                elif isinstance(item, Step):
                    printer.step(item)
                else:
                    printer.result(item)
            return 0
    except RationalystError as exc:
        status = f" ({exc.status_code})" if exc.status_code else ""
        print(f"rationalyst solve: error{status}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


COMMAND = Command("solve", SolveOptions, run, HELP)
