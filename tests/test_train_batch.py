"""`rationalyst train`'s batches: left-padded, logits only over the rationale span.
Checked against the usual right-padded batch and the model's own loss, on the tiny
random Llama with the real tokenizer and real pairs of different lengths."""

import pytest

from rationalyst.making.train import encode_pair
from rationalyst.making.train_batch import IGNORE, RationaleCollator, rationale_loss

PAIRS = [
    ("Question: Is the sun a star?\nAnswer:", "Stars make their own light."),
    (
        "Question: Tom has 3 boxes of 12 pens. How many pens does he have?\nAnswer: "
        "Each box holds 12 pens. Three boxes hold 3 * 12 pens.",
        "Multiplying boxes by pens per box gives the total.",
    ),
    ("Many birds migrate at night.", "The dark hides them from predators, so they fly then."),
]


@pytest.fixture(scope="module")
def batch(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    rows = [encode_pair(tok, p, r, 1024) for p, r in PAIRS]
    return tok, model, rows


def test_same_loss_and_gradients_as_the_right_padded_batch(batch):
    import torch
    from transformers import DataCollatorForSeq2Seq

    tok, model, rows = batch
    usual = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE)(
        [dict(r) for r in rows]
    )
    model.zero_grad()
    want = model(**usual).loss
    want.backward()
    want_grad = model.lm_head.weight.grad.clone()

    ours = RationaleCollator(tok.pad_token_id)([dict(r) for r in rows])
    labels = ours.pop("labels")
    model.zero_grad()
    out = model(**ours)
    got = rationale_loss(out, labels)
    got.backward()

    width = ours["input_ids"].shape[1]
    longest = max(sum(x != IGNORE for x in r["labels"]) for r in rows)
    # Logits only over the rationales' span, not the whole batch.
    assert out.logits.shape[1] == ours["logits_to_keep"] == longest + 1 < width
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert torch.allclose(model.lm_head.weight.grad, want_grad, atol=1e-6)


def test_padding_is_on_the_left_with_unpadded_positions(batch):
    tok, _, rows = batch
    b = RationaleCollator(tok.pad_token_id)([dict(r) for r in rows])
    for r, ids, mask, pos, labels in zip(
        rows, b["input_ids"], b["attention_mask"], b["position_ids"], b["labels"]
    ):
        n = len(r["input_ids"])
        assert ids[-n:].tolist() == r["input_ids"] and mask.sum() == n
        assert pos[-n:].tolist() == list(range(n))
        assert labels[-1] != IGNORE  # every rationale ends at the last position


def test_the_loss_divides_by_the_count_trainer_gives(batch):
    tok, model, rows = batch
    b = RationaleCollator(tok.pad_token_id)([dict(r) for r in rows])
    labels = b.pop("labels")
    out = model(**b)
    n = int((labels != IGNORE).sum())
    mean = rationale_loss(out, labels)
    assert rationale_loss(out, labels, 2 * n).item() == pytest.approx(mean.item() / 2, rel=1e-6)


def test_activations_are_recomputed_unless_fsdp_does_it(tmp_path, monkeypatch):
    from rationalyst.making import train
    from rationalyst.making.train_options import TrainOptions

    args = TrainOptions(dirs=[tmp_path], out=tmp_path / "o")
    targs = train._training_args(args, tmp_path, n_train=100, has_eval=False, use_bf16=False)
    assert targs.gradient_checkpointing and targs.prediction_loss_only
    off = TrainOptions(dirs=[tmp_path], out=tmp_path / "o", gradient_checkpointing=False)
    assert not train._training_args(off, tmp_path, 100, False, False).gradient_checkpointing
    # accelerate launch --fsdp_activation_checkpointing: Trainer refuses both at once.
    monkeypatch.setenv("FSDP_ACTIVATION_CHECKPOINTING", "true")
    assert not train._training_args(args, tmp_path, 100, False, False).gradient_checkpointing


@pytest.mark.parametrize("mode", [[], ["--full"]])
def test_two_cpu_processes_train_under_ddp(tiny_model, tmp_path, mode):
    """The batches and loss under torch DDP (gloo): two processes, as on two GPUs."""
    import json
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    run = tmp_path / "run"
    run.mkdir()
    with open(run / "kept.jsonl", "w") as f:
        for i in range(24):
            pair = {"preceding": f"Tom has {i} boxes." + " More." * (i % 5), "rationale": "So."}
            f.write(json.dumps({**pair, "doc_id": f"d{i}"}) + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ck"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    cmd += ["--master_port", str(port), "-m", "rationalyst.making.train", str(run)]
    cmd += ["--base", str(tiny_model), "--out", str(out), "--max-steps", "3", *mode]
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert summary["eval_loss"] < summary["eval_loss_before"]
    assert (out / "model.safetensors").exists()
