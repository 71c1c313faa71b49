"""The `rationalyst` command: serve | prepare | solve | eval | prompts | prefilter |
extract | filter | train | rank | import-checkpoint. Each is a `flags.Command` (an
options model and a run function); its module is imported only when it is named, so
`rationalyst solve` imports no server, supervisor or vLLM code."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import typing

from rationalyst.cli import flags

# name -> "module:attribute" of its flags.Command, in --help's order. train and
# import-checkpoint live beside their work in making/: they also run on their own
# (`accelerate launch -m rationalyst.making.train`, machines without vLLM).
COMMANDS = {
    "serve": "rationalyst.cli.serve_cmd:SERVE",
    "prepare": "rationalyst.cli.serve_cmd:PREPARE",
    "solve": "rationalyst.cli.solve_cmd:COMMAND",
    "eval": "rationalyst.cli.eval_cmd:COMMAND",
    "prompts": "rationalyst.cli.prompts_cmd:COMMAND",
    "prefilter": "rationalyst.cli.making_cmd:PREFILTER",
    "extract": "rationalyst.cli.making_cmd:EXTRACT",
    "filter": "rationalyst.cli.making_cmd:FILTER",
    "train": "rationalyst.making.train:COMMAND",
    "rank": "rationalyst.cli.rank_cmd:COMMAND",
    "import-checkpoint": "rationalyst.making.import_checkpoint:COMMAND",
}


def command(name: str) -> flags.Command:
    module, attr = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def parser(names: typing.Iterable[str] = COMMANDS) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rationalyst", description=("Inference-time process supervision with RATIONALYST.")
    )
    sub = p.add_subparsers(dest="name", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name in names:
        flags.add_command(sub, command(name))
    return p


def main(argv: typing.Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A named command builds only its own parser: its imports, nobody else's.
    args = parser(argv[:1] if argv[:1] and argv[0] in COMMANDS else COMMANDS).parse_args(argv)
    if args.name not in ("solve", "eval"):  # the HTTP clients draw their own progress
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    return flags.run(args)


if __name__ == "__main__":
    sys.exit(main())
