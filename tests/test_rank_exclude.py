"""`rationalyst rank`'s report on what a fair comparison needs: items a training input
holds are left out (matched by id and by question), every source is paired against
`blank` as well as `none`, the sign test is also clustered by item, and the trained
source can be replaced on a finished run. Step records are written by hand (no
model); the committed CPU run is re-reported from its own files."""

from __future__ import annotations

import json
import shutil

import pytest

from harness import DATA, REPO
from rationalyst.cli.main import main
from rationalyst.making import rank, rank_exclude, rank_report

RUN = REPO / "docs/results/rank-cpu-smollm2-135m"
MADE = REPO / "docs/results/made-smollm2-135m"


def _step(item: str, k: int, top: dict[str, float]) -> dict:
    """A scored step whose top-1 per source (decay 1.0 and 0.9 alike) is `top`."""
    scores = {src: [0.0, -1.0] if t else [-1.0, 0.0] for src, t in top.items()}
    return {
        "item": item,
        "dataset": "gsm8k",
        "k": k,
        "gold": "g",
        "candidates": ["g", "x"],
        "dropped": {"equal_gold": 0, "duplicate": 0, "empty": 0},
        "rationales": {},
        "oracle_leak": False,
        "candidate_tokens": [1, 1],
        "scores": {s: {"1.0": v, "0.9": v} for s, v in scores.items()},
        "scored_tokens": {s: 1 for s in top},
        "top1": {s: {"1.0": t, "0.9": t} for s, t in top.items()},
    }


def _run(tmp_path, steps: list[dict]):
    with open(tmp_path / "steps.jsonl", "w") as f:
        f.writelines(json.dumps(s) + "\n" for s in steps)
    with open(tmp_path / "items.jsonl", "w") as f:
        f.writelines(
            json.dumps({"item": i}) + "\n" for i in dict.fromkeys(s["item"] for s in steps)
        )
    (tmp_path / "config.json").write_text(json.dumps(rank.config_record(rank.RankConfig())))


def test_sign_test_clustered_by_item_and_paired_against_blank(tmp_path):
    # Item a: the stand-in wins 4 steps against none; items b and c: it loses 1 each.
    top = lambda s, n, b: {"none": n, "blank": b, "stand-in": s, "oracle": 0.0}  # noqa: E731
    steps = [_step("a", k, top(1.0, 0.0, 0.0)) for k in range(4)] + [
        _step("b", 0, top(0.0, 1.0, 1.0)),
        _step("c", 0, top(0.0, 1.0, 0.0)),
    ]
    _run(tmp_path, steps)
    g = rank_report.report(tmp_path)["groups"]["gsm8k"]
    row = next(r for r in g["by_decay"]["1.0"] if r["source"] == "stand-in")
    assert (row["wins"], row["losses"]) == (4, 2)  # steps
    assert (row["items"]["wins"], row["items"]["losses"]) == (1, 2)  # items
    assert row["items"]["p"] == 1.0 and row["p"] == pytest.approx(0.6875)
    assert (row["vs_blank"]["wins"], row["vs_blank"]["losses"]) == (4, 1)
    assert (row["vs_blank"]["items"]["wins"], row["vs_blank"]["items"]["losses"]) == (1, 1)
    blank = next(r for r in g["by_decay"]["1.0"] if r["source"] == "blank")
    assert "vs_blank" not in blank and (blank["wins"], blank["losses"]) == (0, 1)
    md = (tmp_path / "summary.md").read_text()
    assert "| stand-in | 6 | 0.667 |" in md and "| 4 / 2 (p=0.688) | 1 / 2 (p=1) |" in md


def test_exclusion_by_id_list_and_by_question_text(tmp_path):
    items = {
        "gsm8k-test-0": "Janet's ducks lay 16 eggs per day. How many?",
        "gsm8k-test-1": "A robe takes 2 bolts of blue fiber and half that much.",
        "gsm8k-test-2": "Josh decides to try flipping a house. What profit?",
        "short": "What is 2+2?",
    }
    ids = tmp_path / "input_ids.txt"
    ids.write_text("af744c7337c0e502b326\ngsm8k-test-2\n")
    docs = tmp_path / "docs.jsonl"  # another id; the question inside a rendered document
    docs.write_text(
        json.dumps(
            {
                "id": "x1",
                "text": "Question: A robe takes 2 bolts of "
                "blue  fiber and\nhalf that much.\nAnswer: 3",
            }
        )
        + "\n"
        + json.dumps({"id": "x2", "text": "Question: What is 2+2?"})
        + "\n"
    )
    found, how = rank_exclude.find(items, [ids, docs])
    # Too short a question would match by chance: "short" is not excluded.
    assert found == {"gsm8k-test-1": "question", "gsm8k-test-2": "id"}
    assert how == "id and question"
    assert rank_exclude.find(items, [ids]) == ({"gsm8k-test-2": "id"}, "id only")
    with pytest.raises(rank_exclude.InputError, match="no such file"):
        rank_exclude.find(items, [tmp_path / "missing.jsonl"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(rank_exclude.InputError, match="bad.jsonl:1"):
        rank_exclude.find(items, [bad])


def test_report_only_excludes_and_lists_them(tmp_path, capsys):
    top = {"none": 0.0, "blank": 0.0, "stand-in": 1.0, "oracle": 1.0}
    _run(tmp_path, [_step("gsm8k-test-0", 0, top), _step("gsm8k-test-1", 0, top)])
    ids = tmp_path / "ids.txt"
    ids.write_text("gsm8k-test-1\n")
    assert (
        main(
            [
                "rank",
                "--out",
                str(tmp_path),
                "--report-only",
                "--data-dir",
                str(tmp_path / "no-data"),
                "--exclude-inputs",
                str(ids),
            ]
        )
        == 0
    )
    assert "excluded (in a training input): gsm8k-test-1" in capsys.readouterr().out
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["steps"] == 1 and s["excluded"]["items"] == {"gsm8k-test-1": "id"}
    assert s["excluded"]["matched_by"] == "id only"  # no benchmark files to read questions
    assert "`gsm8k-test-1` (id)" in (tmp_path / "summary.md").read_text()
    # Kept in the run: a later report without the flag leaves it out too.
    assert main(["rank", "--out", str(tmp_path), "--report-only"]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 1
    assert (
        main(
            [
                "rank",
                "--out",
                str(tmp_path),
                "--report-only",
                "--exclude-inputs",
                str(tmp_path / "nope.txt"),
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err


def test_replace_trained_drops_only_the_trained_source(tmp_path):
    for name in ("trained_rationales.jsonl", "trained_scores.jsonl", "steps.jsonl"):
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "timing.json").write_text(
        json.dumps({"rank": 10.0, "trained rationales": 2.0, "trained scoring": 3.0})
    )
    rank.drop_trained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["steps.jsonl", "timing.json"]
    assert json.loads((tmp_path / "timing.json").read_text()) == {"rank": 10.0}


def test_replace_trained_refuses_a_run_whose_items_changed(tmp_path):
    items = {"q": rank.Item("q", "gsm8k", "math", "Q", ("Step one.", "Step two."))}
    rank.check_golds([{"item": "q", "k": 1, "gold": "Step two."}], items)
    for row in ({"item": "q", "k": 1, "gold": "Step 2."}, {"item": "q", "k": 2, "gold": "x"}):
        with pytest.raises(rank_exclude.InputError, match="gold steps differ.*q#"):
            rank.check_golds([row], items)


def test_committed_run_reloads_the_same_items():
    """The rerun command in the rank README adds a trained source to the committed
    run's steps: that needs today's items to be the ones it ranked."""
    cfg = json.loads((RUN / "config.json").read_text())
    items = {
        it.id: it
        for it in rank.load_items(DATA, cfg["gsm8k"], cfg["math"], cfg["seed"], cfg["max_steps"])
    }
    rows = [json.loads(line) for line in open(RUN / "steps.jsonl")]
    assert {r["item"] for r in rows} <= set(items)
    assert all(" ".join(items[r["item"]].steps[r["k"]].split()) == r["gold"] for r in rows)


def test_committed_run_excludes_the_made_runs_training_item(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUN, run, ignore=shutil.ignore_patterns("seed15-*"))
    inputs = sorted(str(p) for p in MADE.glob("shard-*/input_ids.txt"))
    assert main(["rank", "--out", str(run), "--report-only", "--exclude-inputs", *inputs]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["excluded"]["items"] == {"math-test-1476": "id"}
    assert s["excluded"]["matched_by"] == "id only"  # the made run committed its ids
    assert s["items"] == 119


def test_the_readme_rerun_command_replaces_only_the_trained_source(
    tmp_path, monkeypatch, default_model
):
    """The command the rank README gives for a new checkpoint, on a copy of the
    committed run, with scripted engines in place of the models (no model code):
    only the trained phases run, on every scored step but the excluded item's."""
    from rationalyst.making import engines
    from rationalyst.supervisor.scripted_engine import ScriptedEngine

    run = tmp_path / "rank-cpu-smollm2-135m"  # another folder name than the run's
    shutil.copytree(RUN, run, ignore=shutil.ignore_patterns("seed15-*"))
    steps_before = (run / "steps.jsonl").read_bytes()
    opened = []

    async def fake_open(model, url, **kw):
        opened.append(model)
        return ScriptedEngine(generate=lambda prompt: "Add the two amounts first.")

    monkeypatch.setattr(engines, "open_engine", fake_open)
    inputs = sorted(str(p) for p in MADE.glob("shard-*/input_ids.txt"))
    assert (
        main(
            [
                "rank",
                "--out",
                str(run),
                "--gsm8k",
                "100",
                "--math",
                "20",
                "--concurrency",
                "6",
                "--rationale-model",
                str(default_model),
                "--replace-trained",
                "--exclude-inputs",
                *inputs,
                "--no-progress",
            ]
        )
        == 0
    )
    assert (run / "steps.jsonl").read_bytes() == steps_before  # nothing ranked again
    assert len(opened) == 2  # the trained model, then the agent to score: no rank phase
    rats = [json.loads(x) for x in open(run / "trained_rationales.jsonl")]
    assert len(rats) == 423 and {r["rationale"] for r in rats} == {"Add the two amounts first."}
    assert not any(r["key"].startswith("math-test-1476#") for r in rats)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["rationale_model"] == str(default_model) and cfg["name"] == "run"
    timing = json.loads((run / "timing.json").read_text())
    assert timing["rank"] == pytest.approx(2878.075, abs=0.01)
    s = json.loads((run / "summary.json").read_text())
    assert "trained" in s["sources"] and s["excluded"]["items"] == {"math-test-1476": "id"}
