"""Every `rationalyst` command's parser is generated from its options model
(cli/flags.py): each flag is a field and each field a flag, and a bad value is a usage
error naming the flag (exit 2, one line, no traceback). In-process and fast: parsing
and validation only, nothing runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from rationalyst.cli import flags, main

# A command's subparser and its model.


def subparser(name: str) -> argparse.ArgumentParser:
    p = main.parser([name])
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return sub.choices[name]


def dests(p: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Each argument's destination and its option strings (the name, if positional)."""
    return {
        a.dest: list(a.option_strings) or [a.dest]
        for a in p._actions  # noqa: SLF001
        if not isinstance(a, argparse._HelpAction)
    }  # noqa: SLF001


@pytest.mark.parametrize("name", list(main.COMMANDS))
def test_every_flag_is_a_model_field_and_every_field_a_flag(name):
    command = main.command(name)
    assert command.name == name
    p = subparser(name)
    fields = command.options.model_fields
    found = dests(p)
    assert set(found) == set(fields), name
    help_ = p.format_help()
    positional = set(flags.positionals(command.options))
    for field, strings in found.items():
        if field in positional:
            assert strings == [field], (name, field)
            continue
        assert strings[0] == flags.flag(field), (name, field, strings)
        assert strings[0] in help_, (name, strings[0])


# One bad value per way a value is checked: argparse's type or choice, the model's
# constraint or validator. Each command is here: a new one must add its cases.
BAD = {
    "serve": [
        (["--port", "x"], "--port"),
        (["--max-concurrent-solves", "0"], "--max-concurrent-solves"),
    ],
    "prepare": [(["--scorer", "nobody"], "--scorer")],
    # solve's request ranges are the server's (a 422, exit 1: test_client.py)
    "solve": [
        (["q", "--max-steps", "x"], "--max-steps"),
        (["q", "--strategy", "nonesuch"], "--strategy"),
        (["q", "--timeout", "0"], "--timeout"),
    ],
    "eval": [
        (["--dataset", "nonesuch"], "--dataset"),
        (["--dataset", "gsm8k", "--strategies", "greedy,nonesuch"], "--strategies"),
        (["--dataset", "gsm8k", "--limit", "-1"], "--limit"),
    ],
    "prompts": [
        (["--dataset", "gsm8k", "--index", "-1"], "--index"),
        (["--dataset", "nonesuch"], "--dataset"),
    ],
    "prefilter": [
        (["c.jsonl", "--reasoning", "r.jsonl", "--out", "o", "--max-chars", "0"], "--max-chars"),
        (["c.jsonl", "--reasoning", "r.jsonl", "--out", "o", "--shard", "x"], "--shard"),
        (["c.jsonl", "--out", "o"], "--reasoning"),
    ],
    "extract": [
        (["a.txt", "--out", "o", "--shard", "2/1"], "--shard"),
        (["a.txt", "--out", "o", "--leak-threshold", "2"], "--leak-threshold"),
        (["a.txt", "--out", "o", "--mode", "x"], "--mode"),
        (["a.txt", "--out", "o", "--leak-embedder", "/no/model"], "--leak-embedder"),
        (["a.txt", "--out", "o", "--leak-meaning", "1.5"], "--leak-meaning"),
    ],
    "filter": [(["d", "--decay", "0"], "--decay"), (["d", "--concurrency", "0"], "--concurrency")],
    "train": [
        (["d", "--out", "o", "--batch-size", "0"], "--batch-size"),
        (["d", "--out", "o", "--eval-every", "0"], "--eval-every"),
        (["d", "--out", "o", "--full", "--head-only"], "--head-only"),
    ],
    "rank": [
        (["--out", "o", "--num-candidates", "1"], "--num-candidates"),
        (["--out", "o", "--profile", "x"], "--profile"),
    ],
    "import-checkpoint": [
        (["s", "--base", "b", "--out", "o", "--shard-mb", "0"], "--shard-mb"),
        (["s", "--base", "b", "--out", "o", "--dtype", "int8"], "--dtype"),
    ],
}


def test_every_command_has_bad_value_cases():
    assert set(BAD) == set(main.COMMANDS)


@pytest.mark.parametrize(
    "name, argv, flag", [(name, argv, flag) for name, cases in BAD.items() for argv, flag in cases]
)
def test_a_bad_value_is_one_usage_line_naming_the_flag(name, argv, flag, capsys):
    with pytest.raises(SystemExit) as info:
        main.main([name, *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0] == err.rstrip("\n").splitlines()[-1], err
    assert errors[0].startswith(f"rationalyst {name}: error: ") and flag in errors[0], err


def test_a_new_field_is_a_new_flag():
    """The docstring's promise: one field on the model is the whole change."""
    from pydantic import Field, create_model

    from rationalyst.cli.making_cmd import ExtractOptions

    Wider = create_model(
        "Wider",
        __base__=ExtractOptions,
        exclude_inputs=(list[str], Field([], description="skip these")),
    )
    p = argparse.ArgumentParser()
    flags.add_flags(p, Wider)
    args = p.parse_args(["a.txt", "--out", "o", "--exclude-inputs", "x.jsonl,y.jsonl"])
    opts = flags.build(p, Wider, **flags.given(args, Wider))
    assert opts.exclude_inputs == ["x.jsonl", "y.jsonl"] and opts.inputs == ["a.txt"]
    assert opts.concurrency == 8 and opts.progress  # the shared base's defaults


# A valid command line per command: the options built hold exactly what was given.
GOOD = {
    "serve": (["--port", "8123"], {"port": 8123}),
    "prepare": (["--scorer", "agent"], {"scorer": "agent"}),
    "solve": (
        ["q", "--choices", "a", "b", "--no-stream"],
        {"question": "q", "choices": ["a", "b"], "stream": False},
    ),
    "eval": (
        ["--dataset", "gsm8k,math", "--in-process"],
        {"dataset": ["gsm8k", "math"], "in_process": True},
    ),
    "prompts": (["--dataset", "gsm8k", "--json"], {"dataset": "gsm8k", "json": True}),
    "prefilter": (
        ["c.jsonl", "--reasoning", "r.jsonl", "s.jsonl", "--out", "o", "--threshold", "0.2"],
        {
            "inputs": ["c.jsonl"],
            "reasoning": ["r.jsonl", "s.jsonl"],
            "threshold": 0.2,
            "model": None,
        },
    ),
    "extract": (
        ["a.txt", "b.txt", "--out", "o", "--model", "m", "--no-progress"],
        {"inputs": ["a.txt", "b.txt"], "out": Path("o"), "model": "m", "progress": False},
    ),
    "filter": (
        ["d", "--model", "m", "--url", "http://x"],
        {"dir": Path("d"), "model": "m", "url": "http://x"},
    ),
    "train": (
        ["d", "e", "--out", "o", "--head-only"],
        {"dirs": [Path("d"), Path("e")], "out": Path("o"), "head_only": True},
    ),
    "rank": (
        [
            "--out",
            "o",
            "--rationale-model",
            "ck",
            "--replace-trained",
            "--exclude-inputs",
            "a/input_ids.txt",
            "b/input_ids.txt",
        ],
        {
            "out": Path("o"),
            "rationale_model": "ck",
            "replace_trained": True,
            "exclude_inputs": [Path("a/input_ids.txt"), Path("b/input_ids.txt")],
        },
    ),
    "import-checkpoint": (
        ["s", "--base", "b", "--out", "o", "--no-check"],
        {"src": "s", "base": "b", "out": Path("o"), "check": False},
    ),
}


@pytest.mark.parametrize("name", list(main.COMMANDS))
def test_a_valid_command_line_builds_its_options(name):
    argv, expected = GOOD[name]
    opts = flags.options(main.parser([name]).parse_args([name, *argv]))
    assert isinstance(opts, main.command(name).options)
    assert {k: getattr(opts, k) for k in expected} == expected
