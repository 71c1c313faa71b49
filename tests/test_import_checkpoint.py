"""`rationalyst import-checkpoint` on real files: a replica of the published RATIONALYST
layout built from the packaged default model (its own body as a bare LlamaModel, one
added pad row, no head, float32, sharded with an index) is imported exactly; a tiny
replica of the same layout covers the rest fast; every bad input exits 2 with one line
and leaves no OUT behind."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from harness import REPO, build_published_replica
from rationalyst.cli.main import main
from rationalyst.making import import_checkpoint, tensor_files


def run_import(*args) -> int:
    return main(["import-checkpoint", *map(str, args), "--no-progress"])


def leftovers(out: Path) -> list[str]:
    """OUT, or a temporary folder of it, beside OUT."""
    return [p.name for p in out.parent.iterdir() if out.name in p.name]


def tensors(folder: Path) -> dict:
    out = {}
    for file in tensor_files.weight_files(folder):
        with safe_open(str(file), framework="pt") as f:
            out.update({k: f.get_tensor(k) for k in f.keys()})
    return out


@pytest.fixture(scope="module")
def replica(default_model, tmp_path_factory) -> Path:
    return build_published_replica(default_model, tmp_path_factory.mktemp("pub") / "replica")


@pytest.fixture(scope="module")
def imported(replica, default_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "rationalyst"
    assert run_import(replica, "--base", default_model, "--out", out) == 0
    return out


@pytest.fixture(scope="module")
def tiny_replica(tiny_model, tmp_path_factory) -> Path:
    return build_published_replica(tiny_model, tmp_path_factory.mktemp("tinypub") / "src")


def test_published_layout_imports_exactly(imported, replica, default_model):
    config = json.loads((imported / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["vocab_size"] == 49152 and config["tie_word_embeddings"] is False
    assert config["dtype"] == "bfloat16"
    got, want = tensors(imported), tensors(default_model)
    embed = want["model.embed_tokens.weight"]
    assert got["lm_head.weight"].equal(embed)  # BASE ties: its embeddings are its head
    assert set(got) == set(want) | {"lm_head.weight"}
    assert all(got[k].dtype == embed.dtype and got[k].equal(want[k]) for k in want)
    record = json.loads((imported / import_checkpoint.RECORD).read_text())
    assert record["extra_vocab_rows"]["count"] == 1
    assert record["extra_vocab_rows"]["ids"] == [49152]
    assert record["extra_vocab_rows"]["decision"].startswith("dropped")
    assert record["from"]["lm_head"].startswith("BASE model.embed_tokens.weight")
    assert record["from"]["tokenizer"] == record["from"]["chat_template"] == "BASE"
    assert record["src"]["vocab_size"] == 49153
    assert len(record["src"]["sha256"]) == 4  # 3 shards + config
    for name, digest in record["out"]["sha256"].items():
        assert tensor_files.sha256_file(imported / name) == digest
    assert record["check"]["greedy_ids"] and record["check"]["greedy_text"]
    assert (imported / "generation_config.json").read_text() == (
        default_model / "generation_config.json"
    ).read_text()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(imported)
    assert len(tok) == 49152 and "[PAD]" not in tok.get_vocab()
    assert tok.chat_template == AutoTokenizer.from_pretrained(default_model).chat_template
    assert leftovers(imported) == [imported.name]


def test_serving_the_replica_is_refused_with_the_import_command(replica):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rationalyst.cli",
            "serve",
            "--port",
            "1",
            "--rationale-model",
            str(replica),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"rationalyst import-checkpoint {replica} --base default --out " in proc.stderr


@pytest.mark.vllm
def test_imported_model_writes_the_default_models_rationales(imported, server, tmp_path):
    """The replica's body is the default's own, so a correct import is exact: the same
    seeded /solve gives the same rationales, step for step."""
    import httpx

    from harness import serve

    body = {
        "question": "A box holds 6 eggs. How many eggs are in 5 boxes?",
        "max_steps": 3,
        "num_candidates": 2,
        "seed": 3,
    }
    want = httpx.post(server.url + "/solve", json=body, timeout=300)
    assert want.status_code == 200, want.text
    with serve(tmp_path / "server.log", env={"RATIONALYST_RATIONALE_MODEL": str(imported)}) as url:
        health = httpx.get(url + "/health", timeout=10).json()
        assert health["models"]["rationale"] == imported.name
        assert health["rationale_is_stand_in"] is False
        got = httpx.post(url + "/solve", json=body, timeout=300)
    assert got.status_code == 200, got.text
    rationales = [s["rationale"] for s in got.json()["steps"]]
    assert rationales and all(rationales)
    assert rationales == [s["rationale"] for s in want.json()["steps"]]


# ---- the tiny replica: the rest of the behaviour, fast ----------------------------


def test_tokenizer_from_src_loses_the_dropped_pad(tiny_replica, tiny_model, tmp_path):
    """BASE without a tokenizer: SRC's is used, without the pad whose row is dropped."""
    base = tmp_path / "base"
    base.mkdir()
    for name in ("config.json", "model.safetensors"):
        (base / name).symlink_to(tiny_model / name)
    out = tmp_path / "out"
    assert (
        run_import(
            tiny_replica, "--base", base, "--out", out, "--dtype", "float32", "--shard-mb", "5"
        )
        == 0
    )
    record = json.loads((out / import_checkpoint.RECORD).read_text())
    assert record["from"]["tokenizer"] == "SRC" and record["from"]["tokens_removed"] == ["[PAD]"]
    assert record["from"]["generation_config"] is None
    assert len(record["out"]["sha256"]) > 1 and (out / tensor_files.INDEX).is_file()
    from transformers import AutoTokenizer

    assert len(AutoTokenizer.from_pretrained(out)) == 49152
    got, want = tensors(out), tensors(tiny_model)
    assert got["model.embed_tokens.weight"].equal(want["model.embed_tokens.weight"])


def test_src_with_model_prefix_keeps_its_own_head(tiny_replica, tiny_model, tmp_path):
    """Keys with `model.`: a tied *ForCausalLM SRC keeps its own (tied) head, and an
    untied one (OUT of a first import) its own lm_head.weight, not BASE's."""
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        run_import(
            tiny_model, "--base", tiny_model, "--out", first, "--no-check", "--dtype", "float32"
        )
        == 0
    )
    record = json.loads((first / import_checkpoint.RECORD).read_text())
    assert record["from"]["lm_head"].startswith("SRC model.embed_tokens.weight")
    assert record["extra_vocab_rows"]["count"] == 0 and "check" not in record
    assert (
        run_import(first, "--base", tiny_replica, "--out", second, "--dtype", "float32") == 2
    )  # BASE's vocabulary (49,153) is larger than SRC's
    assert run_import(first, "--base", tiny_model, "--out", second, "--dtype", "float32") == 0
    record = json.loads((second / import_checkpoint.RECORD).read_text())
    assert record["from"]["lm_head"] == "SRC lm_head.weight"
    assert tensors(second)["lm_head.weight"].equal(
        tensors(tiny_model)["model.embed_tokens.weight"].float()
    )


def test_overwrite_replaces_only_once_the_new_one_is_complete(
    tiny_replica, tiny_model, tmp_path, capsys
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert run_import(tiny_replica, "--base", tiny_model, "--out", out) == 2
    assert "exists" in capsys.readouterr().err and (out / "mine.txt").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_import(empty, "--base", tiny_model, "--out", out, "--overwrite") == 2
    assert (out / "mine.txt").read_text() == "keep me"  # a failed import keeps the old OUT
    assert run_import(tiny_replica, "--base", tiny_model, "--out", out, "--overwrite") == 0
    assert not (out / "mine.txt").exists() and (out / import_checkpoint.RECORD).is_file()
    assert leftovers(out) == ["out"]


def _body(folder: Path, vocab: int, hidden: int, **config) -> Path:
    """A bare LlamaModel's config and embeddings only: enough for the checks that come
    before any weight is written."""
    import torch

    folder.mkdir()
    save_file(
        {"embed_tokens.weight": torch.zeros(vocab, hidden), "norm.weight": torch.ones(hidden)},
        folder / "model.safetensors",
    )
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaModel"],
                "model_type": "llama",
                "vocab_size": vocab,
                "hidden_size": hidden,
                **config,
            }
        )
    )
    return folder


def _bad_inputs(tmp: Path, tiny_model: Path, tiny_replica: Path) -> list[tuple]:
    """(case, SRC, BASE, message): built on real files."""
    tmp.mkdir()
    no_weights = tmp / "no-weights"
    no_weights.mkdir()
    shutil.copy(tiny_model / "config.json", no_weights)
    only_bin = tmp / "only-bin"
    shutil.copytree(no_weights, only_bin)
    (only_bin / "pytorch_model.bin").write_bytes(b"\0" * 64)
    not_st = tmp / "not-safetensors"
    shutil.copytree(no_weights, not_st)
    (not_st / "model.safetensors").write_bytes(b"not a safetensors file at all")
    bare_base = tmp / "bare-base"  # the tiny model's weights without its tokenizer
    bare_base.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare_base / name).symlink_to(tiny_model / name)
    no_config = tmp / "no-config"
    no_config.mkdir()
    (no_config / "model.safetensors").symlink_to(tiny_model / "model.safetensors")
    return [
        ("no weights", no_weights, tiny_model, "has no weights: no *.safetensors"),
        ("only .bin", only_bin, tiny_model, "convert .bin weights to safetensors"),
        ("not safetensors", not_st, tiny_model, "is not a safetensors file"),
        (
            "hidden size",
            _body(tmp / "wide", 49153, 256),
            tiny_model,
            "SRC's hidden size (256) does not match BASE's (128)",
        ),
        (
            "small vocabulary",
            _body(tmp / "small", 1000, 128),
            tiny_model,
            "SRC's vocabulary (1000 rows) is smaller than BASE's (49152)",
        ),
        ("no tokenizer", _body(tmp / "no-tok", 49153, 128), bare_base, "no tokenizer in SRC"),
        ("no config", no_config, tiny_model, "has no config.json"),
        ("a file", bare_base / "model.safetensors", tiny_model, "is a file"),
        ("missing folder", tmp / "nowhere" / "x", tiny_model, "no such folder"),
        (
            "base without head",
            tiny_replica,
            _body(tmp / "headless", 49152, 128, tie_word_embeddings=False),
            "has no LM head either",
        ),
    ]


def test_bad_inputs_exit_2_with_one_line_and_no_out(tiny_model, tiny_replica, tmp_path, capsys):
    for case, src, base, message in _bad_inputs(tmp_path / "in", tiny_model, tiny_replica):
        out = tmp_path / "outs" / case.replace(" ", "-")
        rc = run_import(src, "--base", base, "--out", out)
        err = capsys.readouterr().err
        assert rc == 2, (case, err)
        assert message in err, (case, err)
        assert "Traceback" not in err and err.count("\n") == 1, (case, err)
        assert not (out.parent.exists() and leftovers(out)), case


def test_missing_flags_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["import-checkpoint", "src", "--out", "x"])
    assert exc.value.code == 2 and "--base: Field required" in capsys.readouterr().err


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A real tmpfs of `size` at `path` (root only); None where it cannot be mounted."""
    path.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        != 0
    ):
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_disk_full(tiny_replica, tiny_model, tmp_path, capsys, monkeypatch):
    """On a real 8 MB filesystem: refused up front (OUT needs about 29 MB); with that
    check fooled, the write itself hits ENOSPC, and nothing is left on the disk."""
    with small_disk(tmp_path / "disk", "8M") as disk:
        if disk is None:  # not root: simulate the full disk in the writer instead
            disk = tmp_path / "disk"

            def full(*_):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(tensor_files.ShardWriter, "write", full)
        else:
            assert run_import(tiny_replica, "--base", tiny_model, "--out", disk / "out") == 2
            assert "not enough disk space" in capsys.readouterr().err
        monkeypatch.setattr(
            import_checkpoint.shutil, "disk_usage", lambda _: SimpleNamespace(free=1 << 40)
        )
        assert run_import(tiny_replica, "--base", tiny_model, "--out", disk / "out") == 2
        err = capsys.readouterr().err
        assert "disk full while writing" in err and "Traceback" not in err
        assert list(disk.iterdir()) == []


BLOCK_VLLM = """
import sys
class Block:  # GPU machines may have no vLLM: the import must not need it
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "vllm":
            raise ImportError("vllm is blocked in this test")
sys.meta_path.insert(0, Block())
from rationalyst.making import import_checkpoint
sys.exit(import_checkpoint.main(sys.argv[1:]))
"""


def test_runs_without_vllm_as_a_module(tiny_replica, tiny_model, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_VLLM,
            str(tiny_replica),
            "--base",
            str(tiny_model),
            "--out",
            str(out),
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "check: greedy" in proc.stdout and (out / import_checkpoint.RECORD).is_file()


def test_compose_import_service_runs_the_command_into_the_cache():
    import re

    import yaml

    svc = yaml.safe_load((REPO / "docker/compose.yaml").read_text())["services"]["import"]
    assert svc["profiles"] == ["import"] and svc["restart"] == "no"
    assert "model-cache:/models" in svc["volumes"]
    assert svc["environment"]["HF_HOME"] == "/models"
    assert svc["environment"]["HF_HUB_OFFLINE"] == "0"
    # ${VAR:-default} -> default: what `run --rm import` runs with no variables set
    argv = [re.sub(r"\$\{\w+:-(.*)\}", r"\1", a) for a in svc["command"]]
    assert argv == [
        "import-checkpoint",
        "Dongwei/Rationalyst_reasoning_datasets",
        "--base",
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "--out",
        "/models/Rationalyst-LlamaForCausalLM",
    ]
    from rationalyst.cli import flags
    from rationalyst.cli import main as cli_main

    opts = flags.options(cli_main.parser(["import-checkpoint"]).parse_args(argv))
    assert opts.src == argv[1] and str(opts.out) == argv[5]
    readme = (REPO / "docs" / "deployment.md").read_text()  # the compose how-to lives there
    assert "--profile import run --rm import" in readme
    assert f"RATIONALYST_RATIONALE_MODEL={argv[5]}" in readme


def test_stand_in_note_points_to_the_import():
    """/health's note (the viewer shows it as is) names the import, not the hub id that
    the server would refuse."""
    import httpx

    from harness import ThreadServer
    from rationalyst.supervisor.scripted_engine import ScriptedEngine

    with ThreadServer(ScriptedEngine()) as srv:
        health = httpx.get(srv.url + "/health", timeout=10).json()
    assert health["rationale_is_stand_in"] is True
    note = health["note"]
    assert (
        "rationalyst import-checkpoint Dongwei/Rationalyst_reasoning_datasets --base "
        "meta-llama/Meta-Llama-3-8B-Instruct --out DIR" in note
    )
    assert "RATIONALYST_RATIONALE_MODEL to DIR" in note


def test_a_failed_check_leaves_no_out(tiny_replica, tiny_model, tmp_path, capsys, monkeypatch):
    """transformers failing on OUT (simulated: the weights are fine) is one line."""

    def broken(*_):
        raise RuntimeError("size mismatch for lm_head.weight")

    monkeypatch.setattr(import_checkpoint, "_greedy", broken)
    out = tmp_path / "out"
    assert run_import(tiny_replica, "--base", tiny_model, "--out", out) == 2
    err = capsys.readouterr().err
    assert "failed its check (RuntimeError: size mismatch" in err and "Traceback" not in err
    assert leftovers(out) == []


def _hub_cache(cache: Path, repo: str, folder: Path, commit: str) -> None:
    """`folder` as the Hugging Face cache holds a downloaded snapshot of `repo`."""
    root = cache / "hub" / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        (snap / f.name).symlink_to(f)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)


def test_hub_ids_through_the_hub_cache_offline(tiny_replica, tiny_model, tmp_path):
    """The real hub code (snapshot_download) on hub ids, offline from a populated
    cache; an id that is not cached is one line."""
    import os

    cache = tmp_path / "hf"
    _hub_cache(cache, "someone/replica", tiny_replica, "a" * 40)
    _hub_cache(cache, "someone/base", tiny_model, "b" * 40)
    env = {**os.environ, "HF_HOME": str(cache), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "rationalyst.making.import_checkpoint",
        "--no-progress",
        "--no-check",
        "--base",
        "someone/base",
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(
        [*cmd, "someone/replica"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "out" / import_checkpoint.RECORD).read_text())
    assert record["src"]["spec"] == "someone/replica"
    assert (record["src"]["revision"], record["base"]["revision"]) == ("a" * 40, "b" * 40)
    cmd[-1] = str(tmp_path / "out2")
    proc = subprocess.run(
        [*cmd, "someone/missing"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot download SRC 'someone/missing' from the hub" in proc.stderr
