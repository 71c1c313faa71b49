"""`rationalyst solve "question"`: solve on a running server and show each step.

Speaks only HTTP through `clients.client`; imports nothing from `server` or
`supervisor`, so it starts fast. Exit status: 0 solved, 1 API error (the server's
message on stderr), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing

from rationalyst.clients import flags
from rationalyst.clients.client import DEFAULT_URL, RationalystClient, RationalystError
from rationalyst.protocol import SolveRequest, SolveResult, Step

HELP = "solve a question on a running server (HTTP client)"
# Every request field is a flag (question is the argument, stream its own flag).
REQUEST_FLAGS = [n for n in SolveRequest.model_fields if n not in ("question", "stream")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("question", help="the question to solve")
    p.add_argument("--url", default=os.environ.get("RATIONALYST_URL", DEFAULT_URL),
                   help="server address [env RATIONALYST_URL, default %(default)s]")
    p.add_argument("--api-key", default=os.environ.get("RATIONALYST_API_KEY"),
                   help="sent as 'Authorization: Bearer KEY' [env RATIONALYST_API_KEY]")
    flags.add_field_flags(p, SolveRequest, [n for n in REQUEST_FLAGS if n != "choices"])
    p.add_argument("--choices", nargs="+", metavar="CHOICE",
                   help="answer options (lettered A, B, ...); implies task multiple_choice")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds to wait for the server [default %(default)s]")
    p.add_argument("--stream", action="store_true", help="show each step as it is chosen")
    p.add_argument("--json", action="store_true", help=(
        "print the raw response JSON (with --stream: one {event, data} object per line)"))


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
        others = sorted((c for c in step.candidates if not c.chosen),
                        key=lambda c: -(c.score if c.score is not None else float("-inf")))
        for c in chosen + others:
            line = Text("  ✓ " if c.chosen else "  ✗ ", style="green" if c.chosen else "red")
            if c.score is not None:
                line.append(f"{c.score:+.2f}  ", style="cyan" if c.chosen else "dim")
            line.append(step.text if c.chosen else _short(c.text),
                        style="bold" if c.chosen else "dim")
            self.out.print(line)

    def result(self, result: SolveResult) -> None:
        from rich.text import Text

        answer = Text("\nAnswer: ", style="bold")
        answer.append(result.answer if result.answer is not None else "(none)",
                      style="bold green" if result.answer is not None else "bold yellow")
        answer.append(f"   (finish: {result.finish_reason}, {len(result.steps)} steps, "
                      f"seed {result.seed})", style="dim")
        self.out.print(answer)
        u, t = result.usage, result.timings
        self.out.print(Text(
            f"usage: agent {u.agent_prompt_tokens} prompt + {u.agent_completion_tokens} "
            f"completion tokens, rationale {u.rationale_tokens}, scored {u.scored_tokens}\n"
            f"time: {t.total_ms / 1e3:.1f} s total (sample {t.sample_ms / 1e3:.1f} s, "
            f"rationale {t.rationale_ms / 1e3:.1f} s, score {t.score_ms / 1e3:.1f} s)",
            style="dim"))


def run(args: argparse.Namespace) -> int:
    kwargs = flags.set_fields(args, REQUEST_FLAGS)
    printer = None if args.json else _Printer()
    try:
        with RationalystClient(args.url, api_key=args.api_key, timeout=args.timeout) as client:
            if not args.stream:
                result = client.solve(args.question, **kwargs)
                if printer is None:
                    print(json.dumps(result.raw, indent=2, ensure_ascii=False))
                else:
                    for step in result.steps:
                        printer.step(step)
                    printer.result(result)
                return 0
            for item in client.stream_solve(args.question, **kwargs):
                if printer is None:
                    event = "step" if isinstance(item, Step) else "done"
                    print(json.dumps({"event": event, "data": item.raw}, ensure_ascii=False),
                          flush=True)
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


def main(argv: typing.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rationalyst solve", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))
