"""extract and filter on the scripted engine (a fake with known outputs and
log-probs, so decisions can be checked exactly), resume after a torn line, and the
CLI's answers to bad input (which fail before any model loads)."""

import json

import pytest

from rationalyst.cli.main import main
from rationalyst.making import extract, train
from rationalyst.making import filter as filt
from rationalyst.making.documents import Document, read_documents
from rationalyst.supervisor.scripted_engine import ScriptedEngine


def _following_scores(per_rationale: dict[str, list[float]]):
    """Log-probs of a continuation's tokens: the list of the first rationale word found
    in it, else the 'none' list; padded with -9 in front for the template tokens."""

    def fn(prefix: str, continuation: str) -> list[float]:
        words = continuation.split()
        key = next((k for k in per_rationale if k in continuation), "none")
        lps = per_rationale[key]
        return [-9.0] * (len(words) - len(lps)) + lps

    return fn


def _triple(i: int, rationale: str) -> dict:
    return {
        "id": f"d#{i}",
        "doc_id": "d",
        "preceding": "Tom has 3 boxes of 12.",
        "rationale": rationale,
        "following": "He has 36.",
    }


async def test_filter_keeps_by_decayed_gain_with_one_prefix_shared(tmp_path):
    # Same mean log-prob with HURT as without, but worse early tokens: the 0.9^i decay
    # weights early tokens more, so HURT must be rejected and HELP kept.
    eng = ScriptedEngine(
        scores=_following_scores(
            {"none": [-1.0, -1.0, -5.0], "HELP": [-0.5, -0.5, -0.5], "HURT": [-5.0, -1.0, -1.0]}
        )
    )
    rows = [_triple(0, "HELP multiply first"), _triple(1, "HURT think of cats")]
    (tmp_path / "triples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = await filt.run(eng, tmp_path, min_gain=0.0, decay=0.9, progress=False)
    kept = [json.loads(x) for x in (tmp_path / "kept.jsonl").read_text().splitlines()]
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == ["d#0"] and [r["id"] for r in rejected] == ["d#1"]
    without = -1 - 0.9 - 5 * 0.81
    assert kept[0]["score_without"] == pytest.approx(without)
    assert kept[0]["score_with"] == pytest.approx(-0.5 * (1 + 0.9 + 0.81))
    assert rejected[0]["gain"] == pytest.approx(-5 - 0.9 - 0.81 - without)
    assert summary["kept"] == 1 and summary["kept_fraction"] == 0.5
    assert (tmp_path / "gains.png").stat().st_size > 0
    assert "kept: 1 (50.0%)" in (tmp_path / "filter_summary.md").read_text()
    # One score call per triple: the prefix holds the system prompt and the preceding
    # text once; the two continuations differ only by the rationale.
    calls = [inputs for kind, _, inputs in eng.requests if kind == "score"]
    assert len(calls) == 2
    prefix, conts = calls[0]["prefix"], calls[0]["continuations"]
    assert "Tom has 3 boxes of 12" in prefix and "generate future text" in prefix
    assert len(conts) == 2 and "HELP" not in conts[0] and "HELP multiply first" in conts[1]
    assert all(c.endswith("He has 36.") and "Tom has" not in c for c in conts)


async def test_filter_min_gain_raises_the_bar(tmp_path):
    eng = ScriptedEngine(scores=_following_scores({"none": [-2.0], "HELP": [-1.5]}))
    (tmp_path / "triples.jsonl").write_text(
        json.dumps({**_triple(0, "HELP"), "following": "Done."}) + "\n"
    )
    await filt.run(eng, tmp_path, min_gain=1.0, progress=False)
    assert (tmp_path / "kept.jsonl").read_text() == ""
    assert json.loads((tmp_path / "rejected.jsonl").read_text())["gain"] == pytest.approx(0.5)


def _rationale_for(prompt: str) -> str:
    """Insert mode: a rationale naming the next sentence's first word; 'leak' copies it."""
    nxt = prompt.rsplit("Next sentence:\n", 1)[1].split("\n")[0]
    if nxt.startswith("Copy"):
        return nxt
    return f"Rationale: think about {nxt.split()[0].lower()} first\nextra line"


DOCS = [
    Document("a", "Alpha is one. Beta is two. Copy this sentence please.", "x:1"),
    Document("b", "Gamma is three. Delta is four.", "x:2"),
    Document("c", "   ", "x:3"),
    Document("d", None, "x:4"),
    Document("e", "Only one sentence here.", "x:5"),
]


async def test_extract_insert_mode_triples_stats_and_resume_after_a_torn_line(tmp_path):
    eng = ScriptedEngine(generate=_rationale_for)
    cfg = extract.ExtractConfig(mode="insert")
    stats = await extract.run(eng, DOCS, tmp_path, cfg, concurrency=2, progress=False)
    triples = [json.loads(x) for x in (tmp_path / "triples.jsonl").read_text().splitlines()]
    assert {(t["doc_id"], t["rationale"], t["following"]) for t in triples} == {
        ("a", "think about beta first", "Beta is two."),
        ("b", "think about delta first", "Delta is four."),
    }
    assert stats["skipped"] == {
        "empty": 1,
        "not UTF-8": 1,
        "text modified": 0,
        "unpaired markers": 0,
        "no rationale": 1,
        "leak": 0,
        "truncated": 0,
    }
    assert stats["rationales_leak"] == 1 and stats["kept"] == 2 and stats["triples"] == 2
    assert stats["rationales_leak_by_reason"] == {
        "similar": 1,
        "contains": 0,
        "content_words": 0,
        "answer": 0,
        "new_numbers": 0,
        "meaning": 0,
    }
    assert stats["rationales_truncated"] == 0
    assert json.loads((tmp_path / "extract_stats.json").read_text()) == stats
    n_calls = eng.calls["generate"]

    # An interrupt tore document b's record in half, after its triple was written.
    recs = (tmp_path / "documents.jsonl").read_text().splitlines(keepends=True)
    b = next(i for i, r in enumerate(recs) if json.loads(r)["id"] == "b")
    torn = recs[:b] + recs[b + 1 :] + [recs[b][:20]]
    (tmp_path / "documents.jsonl").write_text("".join(torn))
    stats2 = await extract.run(eng, DOCS, tmp_path, cfg, concurrency=2, progress=False)
    assert eng.calls["generate"] == n_calls + 1  # only b's one boundary again
    again = [json.loads(x) for x in (tmp_path / "triples.jsonl").read_text().splitlines()]
    assert sorted(t["id"] for t in again) == sorted(t["id"] for t in triples)  # no duplicate
    assert stats2 == stats


async def test_extract_drops_rationales_cut_by_the_token_cap_and_counts_leaks_by_reason(tmp_path):
    # The scripted engine cuts a reply longer than max_tokens (whitespace tokens) with
    # finish reason "length", as vLLM does at the cap.
    def reply(prompt: str) -> str:
        nxt = prompt.rsplit("Next sentence:\n", 1)[1].split("\n")[0]
        if nxt.startswith("Beta"):
            return " ".join(["word"] * 20)  # over the cap
        if nxt.startswith("Gamma"):  # restates it inside a longer rationale
            return "Ages only grow with the years, so we know that " + nxt.lower()
        return "Short and on topic."

    docs = [
        Document(
            "a",
            "Alpha is one. Beta is two and twelve. Gamma is three and thirty. Delta is four.",
            "x:1",
        ),
        Document("b", "Alpha is one. Beta is two.", "x:2"),
    ]
    stats = await extract.run(
        ScriptedEngine(generate=reply),
        docs,
        tmp_path,
        extract.ExtractConfig(max_rationale_tokens=16),
        progress=False,
    )
    triples = [json.loads(x) for x in (tmp_path / "triples.jsonl").read_text().splitlines()]
    assert [(t["doc_id"], t["following"]) for t in triples] == [("a", "Delta is four.")]
    assert stats["rationales_truncated"] == 2  # a's and b's Beta boundary
    assert stats["rationales_leak_by_reason"] == {
        "similar": 0,
        "contains": 1,
        "content_words": 0,
        "answer": 0,
        "new_numbers": 0,
        "meaning": 0,
    }
    assert stats["skipped"]["truncated"] == 1 and stats["kept"] == 1


async def test_extract_asks_question_answer_items_only_after_the_question(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": "q1",
                "question": "Tom is 3. Ann is 5. Who is older?",
                "choices": ["Tom", "Ann"],
                "solution": "Ann is 5. Tom is 3. The answer is: B",
            }
        )
        + "\n"
    )
    eng = ScriptedEngine(generate=lambda p: "Compare the ages.")
    await extract.run(
        eng, read_documents([str(path)]), tmp_path / "run", extract.ExtractConfig(), progress=False
    )
    rows = [json.loads(x) for x in (tmp_path / "run/triples.jsonl").read_text().splitlines()]
    head = "Question: Tom is 3. Ann is 5. Who is older?\nChoices: A - Tom B - Ann\nAnswer:"
    assert [(r["preceding"], r["following"]) for r in rows] == [
        (head, "Ann is 5."),
        (head + " Ann is 5.", "Tom is 3."),
        (head + " Ann is 5. Tom is 3.", "The answer is: B"),
    ]


async def test_extract_rewrite_mode_checks_the_text_and_markers(tmp_path):
    outputs = {
        "Alpha is one. Beta is two.": "Alpha is one. <BOT>count on<EOT> Beta is two.",
        "Gamma is three. Delta is four.": "Gamma is 3 and Delta 4, <BOT>x<EOT> roughly.",
        "Eps is five. Zeta is six.": "Eps is five. <BOT>unclosed Zeta is six.",
        "Eta is seven. Theta is eight.": "Eta is seven. Theta is eight.",
        "Iota is nine. Kappa is ten.": "Iota is nine. <BOT>Kappa is ten<EOT> Kappa is ten.",
    }
    docs = [Document(str(i), t, f"x:{i}") for i, t in enumerate(outputs)]
    eng = ScriptedEngine(
        generate=lambda p: next(
            o for t, o in outputs.items() if p.rstrip().endswith(t + "\nassistant:")
        )
    )
    stats = await extract.run(
        eng, docs, tmp_path, extract.ExtractConfig(mode="rewrite"), progress=False
    )
    assert stats["skipped"]["text modified"] == 1
    assert stats["skipped"]["unpaired markers"] == 1
    assert stats["skipped"]["no rationale"] == 1
    assert stats["skipped"]["leak"] == 1
    t = json.loads((tmp_path / "triples.jsonl").read_text())
    assert (t["preceding"], t["rationale"], t["following"]) == (
        "Alpha is one.",
        "count on",
        "Beta is two.",
    )


def test_cli_missing_file_and_jsonl_without_text_exit_2(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"body": "x"}) + "\n")
    assert main(["extract", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "'text'" in err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_an_out_with_another_runs_files(tmp_path, capsys):
    docs = tmp_path / "docs.txt"
    docs.write_text("A is one. B is two.\n\nC is three. D is four.\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "extract_run.json").write_text(json.dumps({"inputs": ["/elsewhere.jsonl"]}))
    assert main(["extract", str(docs), "--out", str(out)]) == 2
    assert "holds another extract run" in capsys.readouterr().err
    (out / "extract_run.json").unlink()
    (out / "triples.jsonl").write_text("")
    assert main(["extract", str(docs), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["filter", str(tmp_path)]) == 2
    assert "no triples.jsonl" in capsys.readouterr().err
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "ck")]) == 2
    assert "no kept.jsonl" in capsys.readouterr().err


def test_cli_base_model_without_lm_head_gets_the_servers_message(default_model, tmp_path, capsys):
    from harness import build_tiny

    headless = build_tiny(default_model, tmp_path / "headless", lm_head=False)
    run = tmp_path / "run"
    run.mkdir()
    (run / "kept.jsonl").write_text(json.dumps({"preceding": "A.", "rationale": "b"}) + "\n")
    assert main(["train", str(run), "--base", str(headless), "--out", str(tmp_path / "ck")]) == 2
    assert "cannot generate text" in capsys.readouterr().err
    docs = tmp_path / "d.txt"
    docs.write_text("A is one. B is two.\n")
    assert main(["extract", str(docs), "--out", str(tmp_path / "x"), "--model", str(headless)]) == 2
    assert "cannot generate text" in capsys.readouterr().err


def test_train_stopped_midway_resumes_from_its_checkpoint(
    default_model, tmp_path, monkeypatch, capsys
):
    """Real training of a 2-layer model: Ctrl-C at step 3 of 4, after the step-2
    checkpoint; the rerun continues from that checkpoint (2 more steps, not 4) instead
    of refusing the non-empty --out or starting over."""
    from transformers import Trainer

    from harness import build_tiny

    base = build_tiny(default_model, tmp_path / "tiny")
    run = tmp_path / "run"
    run.mkdir()
    pair = {"preceding": "Tom has 3 boxes of 12 pens.", "rationale": "So 3 x 12 = 36."}
    (run / "kept.jsonl").write_text((json.dumps(pair) + "\n") * 8)
    ckpt = tmp_path / "ck"
    argv = ["train", str(run), "--base", str(base), "--out", str(ckpt), "--max-steps", "4"]
    steps, real_step = [], Trainer.training_step

    def counted(self, *a, **k):
        if len(steps) == 2 and stop_at_3:
            raise KeyboardInterrupt
        steps.append(1)
        return real_step(self, *a, **k)

    monkeypatch.setattr(Trainer, "training_step", counted)
    stop_at_3 = True
    assert main(argv) == 130
    assert [p.name for p in (ckpt / ".trainer").iterdir()] == ["checkpoint-2"]
    steps.clear()
    stop_at_3 = False
    capsys.readouterr()
    assert main(argv) == 0
    assert "resuming from" in capsys.readouterr().out
    assert len(steps) == 2
    assert json.loads((ckpt / "train_summary.json").read_text())["steps"] == 4
    assert (ckpt / "config.json").exists() and not (ckpt / ".trainer").exists()
    assert main(argv) == 2  # a finished checkpoint is not resumed
    assert "--overwrite" in capsys.readouterr().err


def test_held_out_split_never_splits_a_document(tmp_path):
    rows = [
        {"id": f"d{d}#{k}", "doc_id": f"d{d}", "preceding": f"doc {d} part {k}", "rationale": "r"}
        for d in range(40)
        for k in range(d % 4 + 1)
    ]
    (tmp_path / "kept.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = train.load_pairs([tmp_path])
    kept, held = train.split_eval(pairs, 0.1, seed=0)
    docs = lambda ps: {p["doc"] for p in ps}  # noqa: E731
    assert docs(kept) & docs(held) == set() and docs(held)
    assert len(kept) + len(held) == len(rows)
    assert round(0.1 * len(rows)) <= len(held) < round(0.1 * len(rows)) + 4
    # The reference's format has no doc_id: each pair is a document of its own.
    assert len(train.split_eval([{"preceding": "p", "rationale": "r"}] * 20, 0.1, 0)[1]) == 2
