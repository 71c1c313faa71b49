"""End to end on the real default model: extract -> filter -> train a few LoRA steps
-> `rationalyst serve` with the checkpoint as the rationale model -> /solve returns
rationales that the trained checkpoint wrote."""

import json

import httpx
import pytest

from harness import serve
from rationalyst.cli.main import main
from rationalyst.making import extract
from rationalyst.making import filter as filt
from rationalyst.making.documents import read_documents

pytestmark = pytest.mark.vllm

DOCS = [
    {
        "id": "q1",
        "question": "A shop sells pens at 3 dollars each. How much do 4 pens cost?",
        "solution": "Each pen costs 3 dollars. Four pens cost 4 x 3 = 12 dollars. The answer is 12.",
    },
    {
        "id": "q2",
        "question": "Can a goldfish live in the desert sand?",
        "solution": "No. Goldfish breathe through gills in water. Sand holds no water.",
    },
]


@pytest.fixture(scope="module")
def made(default_model, tmp_path_factory):
    """Extract and filter with one in-process engine, then `rationalyst train`."""
    import asyncio

    from rationalyst.supervisor.vllm_engine import VLLMEngine

    root = tmp_path_factory.mktemp("made")
    src = root / "docs.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    run = root / "run"
    run.mkdir()

    async def extract_and_filter():
        eng = VLLMEngine.load(str(default_model), "default", max_model_len=2048)
        try:
            stats = await extract.run(
                eng, read_documents([str(src)]), run, extract.ExtractConfig(), progress=False
            )
            # Keep everything: this test is about the plumbing, not the gains.
            summary = await filt.run(eng, run, min_gain=float("-inf"), progress=False)
        finally:
            await eng.close()
        return stats, summary

    stats, summary = asyncio.run(extract_and_filter())
    ckpt = root / "ckpt"
    assert (
        main(
            [
                "train",
                str(run),
                "--base",
                str(default_model),
                "--out",
                str(ckpt),
                "--max-steps",
                "4",
                "--lr",
                "1e-3",
                "--logging-steps",
                "1",
            ]
        )
        == 0
    )
    return run, ckpt, stats, summary


def test_extract_filter_train_outputs(made):
    run, ckpt, stats, summary = made
    assert stats["read"] == 2 and stats["triples"] >= 2
    assert summary["scored"] == stats["triples"] == summary["kept"]
    kept = [json.loads(x) for x in (run / "kept.jsonl").read_text().splitlines()]
    assert all(isinstance(r["gain"], float) and r["rationale"] for r in kept)
    config = json.loads((ckpt / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    log = [json.loads(x) for x in (ckpt / "train_log.jsonl").read_text().splitlines()]
    assert sum("loss" in r for r in log) >= 4
    assert (ckpt / "loss.png").stat().st_size > 0
    assert not list(ckpt.glob("adapter_*"))  # merged, not a bare adapter


def _hf_rationale(ckpt, question: str, max_new_tokens: int) -> str:
    """What the checkpoint writes greedily for the server's first rationale prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rationalyst.supervisor import prompts
    from rationalyst.supervisor.types import Problem

    tok = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
    msgs = prompts.rationale_messages(Problem(question, "math"), [])
    ids = tok.apply_chat_template(
        msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_server_serves_the_trained_checkpoint(made, tmp_path):
    _, ckpt, _, _ = made
    with serve(tmp_path / "server.log", env={"RATIONALYST_RATIONALE_MODEL": str(ckpt)}) as url:
        health = httpx.get(url + "/health", timeout=10).json()
        assert health["rationale_is_stand_in"] is False
        assert health["models"]["rationale"] == ckpt.name
        question = "A box holds 6 eggs. How many eggs are in 5 boxes?"
        r = httpx.post(
            url + "/solve",
            json={"question": question, "max_steps": 1, "num_candidates": 2, "seed": 1},
            timeout=300,
        )
        assert r.status_code == 200, r.text
        step = r.json()["steps"][0]
    expected = _hf_rationale(ckpt, question, 64)
    # Greedy on both sides; float differences may part them late, not at the start.
    assert step["rationale"].split()[:5] == expected.split()[:5]
