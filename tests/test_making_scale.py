"""The making pipeline at scale, without a model: shards stream their input and parse
only their own part; `--url` takes several replicas through the server's own
Replicas engine; evaluation in `train` is a capped subset on a schedule that scales
with the run (and its share of compute at the paper's 79k pairs)."""

from __future__ import annotations

import json
import types

import pytest

from rationalyst.making import documents, train, train_options
from rationalyst.making.documents import InputError


def _jsonl(path, rows):
    path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows))
    return path


def test_shards_partition_the_inputs_in_order(tmp_path):
    a = _jsonl(tmp_path / "a.jsonl", [{"id": f"a{i}", "text": f"Doc {i}."} for i in range(5)])
    b = tmp_path / "b.txt"
    b.write_text("First block.\n\n\n  \nSecond\nblock.\n\nThird.\n")
    every = [d.id for d in documents.iter_documents([a, b])]
    assert every == ["a0", "a1", "a2", "a3", "a4", f"{b}:1", f"{b}:5", f"{b}:8"]
    shards = [[d.id for d in documents.iter_documents([a, b], (i, 3))] for i in range(3)]
    assert shards == [every[0::3], every[1::3], every[2::3]]
    texts = {d.id: d.text for d in documents.iter_documents([b])}
    assert texts[f"{b}:5"] == "Second\nblock."
    assert documents.scan([a, b], (1, 3)) == 3


def test_a_shard_never_parses_another_shards_lines(tmp_path):
    """Line 2 is broken JSON: only the shard that owns it sees it, and the reader is
    a stream (the first document comes before the broken line is read)."""
    f = _jsonl(
        tmp_path / "d.jsonl",
        [{"id": "0", "text": "a"}, "{broken\n", {"id": "2", "text": "c"}, {"id": "3", "text": "d"}],
    )
    assert [d.id for d in documents.iter_documents([f], (0, 2))] == ["0", "2"]
    assert documents.scan([f], (0, 2)) == 2
    with pytest.raises(InputError, match=r"d.jsonl:2: not valid JSON"):
        documents.scan([f], (1, 2))
    stream = documents.iter_documents([f])
    assert isinstance(stream, types.GeneratorType) and next(stream).id == "0"
    with pytest.raises(InputError):
        next(stream)


def test_a_shard_keeps_only_its_own_text(tmp_path, monkeypatch):
    """What a shard holds of the others' documents: nothing (no Document built)."""
    f = _jsonl(tmp_path / "d.jsonl", [{"id": str(i), "text": "x" * 1000} for i in range(40)])
    built = []
    real = documents.Document

    def counting(*a, **k):
        built.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(documents, "Document", counting)
    assert documents.scan([f], (3, 8)) == 5
    assert built == ["3", "11", "19", "27", "35"]


def test_duplicate_ids_in_a_shard_fail_before_any_model(tmp_path):
    f = _jsonl(tmp_path / "d.jsonl", [{"id": "x", "text": "a"}, {"id": "x", "text": "b"}])
    with pytest.raises(InputError, match="duplicate document id 'x'"):
        documents.scan([f])


async def test_url_takes_several_replicas_through_the_servers_engine(default_model):
    """Two URLs become the server's Replicas engine; with neither up, its own error."""
    from rationalyst.making.engines import open_engine
    from rationalyst.supervisor.engine import EngineError

    with pytest.raises(EngineError, match="no replica is reachable"):
        await open_engine(
            "default", "http://127.0.0.1:9, http://127.0.0.1:7", cache_dir=default_model.parent
        )
    with pytest.raises(EngineError, match="not an http"):
        await open_engine("default", "http://127.0.0.1:9,ftp://x", cache_dir=default_model.parent)
    # `serve` reaches its replicas through the same connect_remote.
    from rationalyst.supervisor.backends import load_engines
    from rationalyst.supervisor.settings import Settings

    with pytest.raises(EngineError, match="no replica is reachable"):
        await load_engines(Settings(agent_url="http://127.0.0.1:9, http://127.0.0.1:7"))


# ---- evaluation schedule -----------------------------------------------------------


def test_eval_schedule_is_a_fraction_of_the_run():
    assert train_options.schedule(2346, 0.1, 0.25) == (235, 587)
    assert train_options.evaluations(2346, 235) == 11  # 9 scheduled + before + after
    assert train_options.schedule(4, 0.1, 0.25) == (1, 1)


@pytest.mark.parametrize("per_step", [2, 16, 32])  # LoRA 2x1, --full 2x8, 2 GPUs
def test_evaluation_is_at_most_10_percent_at_the_papers_scale(per_step):
    """79k pairs, 5% held out, one epoch: the new schedule against the old one (every
    min(50, steps/5) steps, the whole held-out set)."""
    held_out = round(0.05 * 79_000)
    n_train = 79_000 - held_out
    steps = -(-n_train // per_step)
    eval_steps, _ = train_options.schedule(
        steps, train_options.EVAL_EVERY, train_options.SAVE_EVERY
    )
    share = train_options.eval_share(
        n_train, train_options.EVAL_MAX, train_options.evaluations(steps, eval_steps)
    )
    assert share <= 0.10
    assert share == pytest.approx(11 * 256 / (11 * 256 + 3 * n_train))  # 1.2%
    old_every = max(1, min(50, steps // 5))
    old = train_options.eval_share(n_train, held_out, train_options.evaluations(steps, old_every))
    assert old > 0.4  # the finding: about 10x the training with 2 pairs a step


def test_trainer_gets_the_schedule(tmp_path, monkeypatch):
    args = train.TrainOptions(dirs=[tmp_path], out=tmp_path / "ck", full=True)
    targs = train._training_args(args, tmp_path, n_train=75_050, has_eval=True, use_bf16=False)
    # 75,050 pairs / (2 x 8) = 4,691 steps: evaluate every 470, save every 1,173.
    assert (targs.eval_steps, targs.save_steps) == (470, 1173)
    assert targs.eval_strategy == "steps" and targs.save_strategy == "steps"
    # Two processes (accelerate sets WORLD_SIZE): 2,346 steps, the reference's run.
    monkeypatch.setenv("WORLD_SIZE", "2")
    targs = train._training_args(args, tmp_path, n_train=75_050, has_eval=True, use_bf16=False)
    assert (targs.eval_steps, targs.save_steps) == (235, 587)


def test_a_real_run_evaluates_a_capped_subset_on_the_schedule(
    default_model, tmp_path, monkeypatch, capsys
):
    """Real training of a 2-layer model for 10 steps: 10 pairs held out, 3 evaluated,
    every 2 steps; a checkpoint every 5 steps (one left when the run is cut)."""
    from transformers import Trainer

    from harness import build_tiny
    from rationalyst.cli.main import main

    base = build_tiny(default_model, tmp_path / "tiny")
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "kept.jsonl", "w") as f:
        for i in range(20):
            f.write(
                json.dumps(
                    {
                        "preceding": f"Tom has {i} boxes of 12 pens.",
                        "rationale": f"So {i} x 12 pens.",
                    }
                )
                + "\n"
            )
    saved, real_save = [], Trainer._save_checkpoint

    def save(self, *a, **k):
        saved.append(self.state.global_step)
        return real_save(self, *a, **k)

    monkeypatch.setattr(Trainer, "_save_checkpoint", save)
    out = tmp_path / "ck"
    assert (
        main(
            [
                "train",
                str(run),
                "--base",
                str(base),
                "--out",
                str(out),
                "--max-steps",
                "10",
                "--eval-fraction",
                "0.5",
                "--eval-max",
                "3",
                "--eval-every",
                "0.2",
                "--save-every",
                "0.5",
            ]
        )
        == 0
    )
    assert "evaluation of 3 of 10 held-out pairs every 2 steps (7 in all" in capsys.readouterr().out
    s = json.loads((out / "train_summary.json").read_text())
    assert (s["held_out"], s["eval"], s["eval_steps"], s["evaluations"], s["save_steps"]) == (
        10,
        3,
        2,
        7,
        5,
    )
    log = [json.loads(line) for line in open(out / "train_log.jsonl")]
    assert [r["step"] for r in log if "eval_loss" in r] == [2, 4, 6, 8, 10, 10]  # + final
    assert saved == [5, 10]


async def test_a_documents_requests_share_one_session(tmp_path):
    """With replicas, a session stays on one: a document's rationales (and later its
    triples' scoring) share a prefix, so they go to one prefix cache (scripted
    engine: it records each request's session)."""
    from rationalyst.making import extract
    from rationalyst.making import filter as filt
    from rationalyst.making.documents import Document
    from rationalyst.supervisor.scripted_engine import ScriptedEngine

    eng = ScriptedEngine(generate=lambda prompt: "it follows from the sentence before")
    docs = [Document(d, "Alpha is one. Beta is two. Gamma is three.", d) for d in "ab"]
    await extract.run(eng, docs, tmp_path, extract.ExtractConfig(), progress=False)
    gen = {r: s for r, s in eng.sessions.items() if r.startswith("extract-")}
    assert len(gen) >= 4 and all(s == f"extract-{r.split('-')[1]}" for r, s in gen.items())
    await filt.run(eng, tmp_path, progress=False)
    scored = {r: s for r, s in eng.sessions.items() if r.startswith("filter-")}
    assert scored and all(s == f"filter-{r.split('-')[1].split('#')[0]}" for r, s in scored.items())
