"""`rationalyst train` on the reference's training-file format (a hand-written JSONL
of `preceeding` / `rationale` lines, as its fine-tuning script reads) and
`--head-only`: on the tiny model, the body and the input embeddings come out bit for
bit unchanged while the (untied) head and the final norm have learnt."""

from __future__ import annotations

import json

from safetensors import safe_open

from rationalyst.cli.main import main

# The reference's key is spelt "preceeding"; one line uses our spelling.
REFERENCE_LINES = [
    {
        "preceeding": "Question: Tom has 3 apples and buys 4 more. How many apples?\nAnswer:",
        "rationale": "Buying more adds to what he has, so add 4 to 3.",
    },
    {
        "preceeding": "Question: A pen costs 2 dollars. How much do 5 pens cost?\nAnswer:",
        "rationale": "The total is the price of one pen times the number of pens.",
    },
    {
        "preceeding": "Question: Can a fish live in dry sand?\nAnswer: Fish breathe with gills.",
        "rationale": "Gills need water to take in oxygen, and sand holds none.",
    },
    {
        "preceeding": "Question: Sam reads 10 pages a day. How many in a week?\nAnswer:",
        "rationale": "A week has 7 days, so multiply the daily pages by 7.",
    },
    {
        "preceding": "Question: Is ice lighter than liquid water?\nAnswer:",
        "rationale": "Ice floats on water, which only something less dense can do.",
    },
    {
        "preceeding": "Question: A box holds 6 eggs. How many eggs in 4 boxes?\nAnswer:",
        "rationale": "Each box adds 6 eggs, so the count is 4 groups of 6.",
    },
]


def _weights(folder) -> dict:
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_head_only_on_the_reference_format(tiny_model, tmp_path):
    data = tmp_path / "llm_training_data_train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in REFERENCE_LINES) + "\n")
    out = tmp_path / "ckpt"
    assert (
        main(
            [
                "train",
                str(data),
                "--base",
                str(tiny_model),
                "--out",
                str(out),
                "--head-only",
                "--max-steps",
                "3",
                "--batch-size",
                "2",
                "--eval-fraction",
                "0.34",
                "--max-length",
                "128",
                "--lr",
                "1e-2",
                "--logging-steps",
                "1",
            ]
        )
        == 0
    )
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["mode"] == "head-only" and summary["pairs"] == 6
    assert summary["eval"] == 2 and summary["steps"] == 3
    assert summary["eval_loss"] < summary["eval_loss_before"]
    assert summary["steps_per_s_training"] > 0
    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is False
    before, after = _weights(tiny_model), _weights(out)
    assert set(after) == set(before) | {"lm_head.weight"}  # the tiny model ties its head
    trained = {"lm_head.weight", "model.norm.weight"}
    assert all(after[k].equal(before[k]) for k in before if k not in trained)
    assert not after["lm_head.weight"].equal(before["model.embed_tokens.weight"])
    assert not after["model.norm.weight"].equal(before["model.norm.weight"])


def test_a_bad_reference_line_names_the_file_and_line(tiny_model, tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps(REFERENCE_LINES[0]) + "\n" + json.dumps({"text": "x"}) + "\n")
    rc = main(["train", str(data), "--base", str(tiny_model), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{data}:2: not a rationale pair" in err and "Traceback" not in err
    assert (
        main(
            [
                "train",
                str(tmp_path / "missing.jsonl"),
                "--base",
                str(tiny_model),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no such file or directory" in capsys.readouterr().err
