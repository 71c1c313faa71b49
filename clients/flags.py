"""argparse flags generated from pydantic fields (the request model, the settings),
so a flag has the field's type, choices, default and help, and a bad value is a
usage error naming the flag (exit 2), not a traceback. Ranges stay the model's (or
the server's) to check."""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError

_METAVARS = {int: "N", float: "X", Path: "PATH"}


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _unwrap(annotation) -> object:
    """X from X | None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_field_flags(parser: argparse.ArgumentParser, model: type[BaseModel],
                    names: typing.Iterable[str], *, show_default: bool = True,
                    env_prefix: str | None = None) -> None:
    """One typed flag per field. Unset flags are None: the caller leaves them to the
    model's default (or, for settings, to the environment)."""
    for name in names:
        field = model.model_fields[name]
        kind = _unwrap(field.annotation)
        kw: dict = {"dest": name, "default": None}
        if typing.get_origin(kind) is typing.Literal:
            kw["choices"] = typing.get_args(kind)
            kw["metavar"] = "{" + ",".join(map(str, kw["choices"])) + "}"
        elif typing.get_origin(kind) is list:
            kw["type"], kw["metavar"] = _csv, "A,B,..."
        elif kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif kind in (int, float, str, Path):
            kw["type"] = kind
            kw["metavar"] = _METAVARS.get(kind, name.upper())
        help_ = field.description or ""
        if show_default and field.default is not None and field.default_factory is None \
                and not field.is_required():
            help_ += f" [default {field.default}]"
        if env_prefix:
            help_ += f" [env {env_prefix}{name.upper()}]"
        kw["help"] = help_.strip() or None
        parser.add_argument(flag(name), **kw)


def set_fields(args: argparse.Namespace, names: typing.Iterable[str]) -> dict:
    """The flags given, by field name."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def build(parser: argparse.ArgumentParser, model: type[BaseModel], **values):
    """model(**values); a validation error becomes a usage error naming the flag."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{flag(str(e['loc'][0])) if e['loc'] else model.__name__}: {e['msg']}"
            for e in exc.errors())
        parser.error(problems)
