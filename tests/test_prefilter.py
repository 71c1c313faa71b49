"""`rationalyst prefilter`: the paper's corpus selection. The embedding path runs a
real sentence-transformers model, tiny and random, built here (no hub): its kept
documents and similarities are checked against the model's own embeddings. The
lexical stand-in separates a maths document from an unrelated one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rationalyst.cli.main import main

REASONING = [
    {
        "question": "Tom has 3 boxes of 12 pens. How many pens does he have?",
        "solution": "He has 3 * 12 = 36 pens.\n#### 36",
    },
    {
        "question": "A pen costs 2 dollars. How much do 5 pens cost?",
        "solution": "5 pens cost 5 * 2 = 10 dollars.\n#### 10",
    },
]
CORPUS = [
    {"id": "maths", "text": "Each box holds 12 pens, so 3 boxes hold 36 pens in total."},
    {
        "id": "church",
        "text": "The cathedral's stained glass windows date from the "
        "thirteenth century and depict saints.",
    },
    {"id": "long", "text": "word " * 500},
]


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    """A 1-layer BERT with random weights and a word-level vocabulary of our texts."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("st")
    words = {
        w.strip(".,?$'#").lower() for r in REASONING + CORPUS for v in r.values() for w in v.split()
    }
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(w for w in words if w)]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(root / "vocab.txt"))
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(root / "bert")
    tok.save_pretrained(root / "bert")
    st = SentenceTransformer(
        modules=[
            models.Transformer(str(root / "bert"), max_seq_length=128),
            models.Pooling(32, "mean"),
        ]
    )
    st.save(str(root / "model"))
    return root / "model"


def _write(tmp_path):
    reasoning, corpus = tmp_path / "reasoning.jsonl", tmp_path / "corpus.jsonl"
    reasoning.write_text("".join(json.dumps(r) + "\n" for r in REASONING))
    corpus.write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    return reasoning, corpus


def _kept(out):
    return {r["id"]: r for r in map(json.loads, (out / "kept.jsonl").read_text().splitlines())}


def test_embedding_model_keeps_by_cosine_with_the_reasoning_mean(tiny_st, tmp_path):
    from sentence_transformers import SentenceTransformer

    reasoning, corpus = _write(tmp_path)
    out = tmp_path / "all"
    assert (
        main(
            [
                "prefilter",
                str(corpus),
                "--reasoning",
                str(reasoning),
                "--out",
                str(out),
                "--model",
                str(tiny_st),
                "--threshold",
                "-1",
                "--no-progress",
            ]
        )
        == 0
    )
    stats = json.loads((out / "prefilter_stats.json").read_text())
    assert stats["read"] == 3 and stats["too_long"] == 1 and stats["kept"] == 2
    assert stats["scorer"] == "embedding sentence-transformers model" and stats["threshold"] == -1
    # The similarities are the model's own: cosine with the normalised mean embedding.
    st = SentenceTransformer(str(tiny_st))
    texts = [f"Question: {r['question']}\nAnswer: {r['solution']}" for r in REASONING]
    mean = st.encode(texts, normalize_embeddings=True).mean(axis=0)
    mean /= np.linalg.norm(mean)
    kept = _kept(out)
    for doc in CORPUS[:2]:
        want = float(st.encode([doc["text"]], normalize_embeddings=True)[0] @ mean)
        assert kept[doc["id"]]["similarity"] == pytest.approx(want, abs=1e-3)
    # A threshold between the two similarities keeps only the higher one.
    lo, hi = sorted(r["similarity"] for r in kept.values())
    out2 = tmp_path / "mid"
    assert (
        main(
            [
                "prefilter",
                str(corpus),
                "--reasoning",
                str(reasoning),
                "--out",
                str(out2),
                "--model",
                str(tiny_st),
                "--threshold",
                str((lo + hi) / 2),
                "--no-progress",
            ]
        )
        == 0
    )
    assert [r["similarity"] for r in _kept(out2).values()] == [hi]
    assert json.loads((out2 / "prefilter_stats.json").read_text())["below_threshold"] == 1


def test_bundled_embedding_model(tmp_path):
    """`--model wordllama`: the model in WordLlama's wheel, its own default threshold."""
    reasoning, corpus = _write(tmp_path)
    out = tmp_path / "wl"
    args = ["prefilter", str(corpus), "--reasoning", str(reasoning), "--out", str(out)]
    assert main([*args, "--model", "wordllama", "--no-progress"]) == 0
    stats = json.loads((out / "prefilter_stats.json").read_text())
    assert stats["scorer"] == "embedding wordllama" and stats["threshold"] == 0.2
    assert list(_kept(out)) == ["maths"]
    assert (stats["kept"], stats["below_threshold"], stats["too_long"]) == (1, 1, 1)


def test_lexical_stand_in_without_a_model(tmp_path):
    pytest.importorskip("sklearn")
    reasoning, corpus = _write(tmp_path)
    out = tmp_path / "lex"
    assert (
        main(
            [
                "prefilter",
                str(corpus),
                "--reasoning",
                str(reasoning),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    stats = json.loads((out / "prefilter_stats.json").read_text())
    assert stats["scorer"] == "lexical tf-idf" and stats["threshold"] == 0.1
    assert list(_kept(out)) == ["maths"]
    assert (stats["kept"], stats["below_threshold"], stats["too_long"]) == (1, 1, 1)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    """Input a run finds bad (flag values are usage errors: tests/test_cli.py)."""
    reasoning, corpus = _write(tmp_path)
    base = ["prefilter", str(corpus), "--out", str(tmp_path / "o"), "--no-progress"]
    cases = [
        (["--reasoning", str(reasoning), "--model", str(tmp_path / "nope")], "no such directory"),
        (["--reasoning", str(tmp_path / "r.csv")], "no such file"),
        (
            ["--reasoning", str(reasoning), "--model", str(tmp_path)],
            "not a sentence-transformers model",
        ),
    ]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    cases.append((["--reasoning", str(empty)], "no documents"))
    for extra, msg in cases:
        assert main(base + extra + ["--overwrite"]) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and err.count("\n") == 1, err
