"""One way to build a command line: every `rationalyst` command is a pydantic model
(its options) plus a function that runs on a validated instance. This module turns
the model into argparse, so each flag has its field's type, choices, default and
help, and a bad value is a usage error naming the flag (exit 2), never a traceback.

Adding a flag is one field on the command's model, nothing else:

    class RankOptions(ModelOptions):           # cli/rank_cmd.py
        ...
        exclude_inputs: list[Path] = Field([], description="skip items found in these")

gives `--exclude-inputs A,B,...` in the parser and in `--help`, checked by the model;
the run function reads `opts.exclude_inputs`. A new command is a model, a run
function, a `Command(...)` and one line in cli/main.py's COMMANDS (tests/test_cli.py
then asks for its bad-value cases).
How a field becomes a flag:
- `some_name` -> `--some-name`; the description is the help, the default is shown;
- `Literal[...]` -> a choice; `bool` -> `--x/--no-x`; `list[...]` -> comma-separated
  (or `nargs`, see `cli_field`); `X | None` -> as X, unset meaning None;
- constraints (`ge=`, `pattern=`) and validators run when the model is built: their
  message becomes `--flag: message`;
- `cli_field(positional=True)` makes an argument (`rationalyst extract INPUT...`);
- defaults read from the environment use `default_factory` (see eval_cmd.py);
- commands sharing flags share a base model (cli/options.py: `ServerClientOptions`,
  `ModelOptions`, `EngineOptions`); `borrow` copies fields of another model (the
  request's) into a command's.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_METAVARS = {int: "N", float: "X", Path: "PATH"}
# A `json` field names the --json flag; it shadows only pydantic v1's deprecated .json().
warnings.filterwarnings("ignore", 'Field name "json"', UserWarning)


class Options(BaseModel):
    """A base for command options: unknown fields (a misspelt one in code) are refused,
    and so are NaN and infinities (JSON has no such numbers, and no range means them)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: its options model and what runs on them (returns the exit status)."""

    name: str
    options: type[BaseModel]
    run: typing.Callable[[typing.Any], int]
    help: str
    description: str | None = None
    env_prefix: str | None = None  # settings models: unset flags fall back to the env


def cli_field(
    default: typing.Any = ...,
    *,
    positional: bool = False,
    nargs: str | None = None,
    metavar: str | None = None,
    **kw,
) -> typing.Any:
    """A pydantic Field with how it shows on the command line."""
    cli = {
        k: v for k, v in (("positional", positional), ("nargs", nargs), ("metavar", metavar)) if v
    }
    return Field(default, json_schema_extra={"cli": cli}, **kw)


def borrow(model: type[BaseModel], names: typing.Iterable[str]) -> dict:
    """Fields of `model` for pydantic.create_model, with their types (choices
    included), defaults and descriptions but not their ranges: a command that sends
    them to the server leaves those to it, whose 422 names the field."""
    return {
        n: (f.annotation, Field(f.default, description=f.description))
        for n, f in ((n, model.model_fields[n]) for n in names)
    }


def given_fields(opts: BaseModel, names: typing.Iterable[str]) -> dict:
    """The fields among `names` set on the command line (the rest: the server's defaults)."""
    return opts.model_dump(include=set(names) & opts.model_fields_set)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _finite(text: str) -> float:
    """A float flag's type: NaN and infinities are usage errors on every command (settings
    models included), not values that crash a request or a loop later."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def _unwrap(annotation) -> object:
    """X from X | None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _cli(field) -> dict:
    extra = field.json_schema_extra
    return extra.get("cli", {}) if isinstance(extra, dict) else {}


def positionals(model: type[BaseModel]) -> list[str]:
    return [n for n, f in model.model_fields.items() if _cli(f).get("positional")]


def add_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel], *, env_prefix: str | None = None
) -> None:
    """One argument per field. Unset flags are None: the model's default applies (or,
    for settings, the environment)."""
    for name, field in model.model_fields.items():
        cli, kind = _cli(field), _unwrap(field.annotation)
        kw: dict = {"default": None}
        if typing.get_origin(kind) is typing.Literal:
            kw["choices"] = typing.get_args(kind)
            kw["metavar"] = "{" + ",".join(map(str, kw["choices"])) + "}"
        elif typing.get_origin(kind) is list:
            if cli.get("nargs") or cli.get("positional"):
                kw["nargs"] = cli.get("nargs", "+")
            else:
                kw["type"], kw["metavar"] = _csv, "A,B,..."
        elif kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif kind in (int, float, str, Path):
            kw["type"] = _finite if kind is float else kind
            kw["metavar"] = _METAVARS.get(kind, name.upper())
        if "metavar" in cli:
            kw["metavar"] = cli["metavar"]
        help_ = field.description or ""
        # A bool's default shows in its name (--x/--no-x); None and [] mean "not given".
        if (
            field.default not in (None, ..., [], ())
            and field.default_factory is None
            and not field.is_required()
            and kind is not bool
        ):
            shown = (
                ",".join(map(str, field.default))
                if isinstance(field.default, (list, tuple))
                else field.default
            )
            help_ += f" [default {shown}]"
        if env_prefix:
            help_ += f" [env {env_prefix}{name.upper()}]"
        kw["help"] = help_.strip().replace("%", "%%") or None
        if cli.get("positional"):
            kw.pop("default")
            if not field.is_required():
                kw["nargs"] = "?" if kw.get("nargs") is None else "*"
            parser.add_argument(name, **kw)
        else:
            # A missing required flag is the model's error ("--out: Field required").
            if field.is_required():
                kw["help"] = ((kw["help"] or "") + " (required)").strip()
            parser.add_argument(flag(name), dest=name, **kw)


def given(args: argparse.Namespace, model: type[BaseModel]) -> dict:
    """The flags given, by field name."""
    return {n: getattr(args, n) for n in model.model_fields if getattr(args, n, None) is not None}


def build(parser: argparse.ArgumentParser, model: type[BaseModel], /, **values):
    """model(**values); a validation error becomes a usage error naming the flag."""
    try:
        return model(**values)
    except ValidationError as exc:
        names = set(positionals(model))
        problems = "; ".join(f"{_where(e['loc'], names, model)}: {e['msg']}" for e in exc.errors())
        parser.error(problems)


def _where(loc: tuple, names: set[str], model: type[BaseModel]) -> str:
    if not loc:
        return model.__name__
    name = str(loc[0])
    return name.upper() if name in names else flag(name)


def add_command(sub, command: Command) -> argparse.ArgumentParser:
    p = sub.add_parser(
        command.name, help=command.help, description=command.description or command.help
    )
    add_flags(p, command.options, env_prefix=command.env_prefix)
    p.set_defaults(command=command, parser=p)
    return p


def options(args: argparse.Namespace):
    """The command's validated options from parsed arguments (exit 2 if invalid)."""
    model = args.command.options
    return build(args.parser, model, **given(args, model))


def run(args: argparse.Namespace) -> int:
    return args.command.run(options(args))


def main(
    command: Command, argv: typing.Sequence[str] | None = None, prog: str = "rationalyst"
) -> int:
    """Run one command on its own (`python -m` entry points)."""
    parser = argparse.ArgumentParser(prog=prog)
    sub = parser.add_subparsers()
    add_command(sub, command)
    return run(parser.parse_args([command.name, *(sys.argv[1:] if argv is None else argv)]))
