"""Model resolution and the start-up check for checkpoints that cannot generate."""

import subprocess
import sys

import pytest

from harness import REPO, build_tiny
from rationalyst.supervisor.models import ModelError, build_default, check_can_generate, resolve


def test_default_model_is_built_once_and_reused(default_model, tmp_path):
    cfg = default_model / "config.json"
    assert cfg.is_file() and (default_model / "model.safetensors").is_file()
    assert "LlamaForCausalLM" in cfg.read_text()
    mtime = cfg.stat().st_mtime_ns
    assert build_default(default_model.parent) == default_model
    assert cfg.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_resolve_local_dir(tiny_model):
    assert resolve(str(tiny_model), tiny_model.parent) == str(tiny_model)


def test_missing_dir_without_config_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        resolve(str(tmp_path), tmp_path)


@pytest.mark.parametrize("archs", [["LlamaModel"], [], None])
def test_checkpoint_without_lm_head_is_refused(archs):
    with pytest.raises(ModelError, match="cannot generate text"):
        check_can_generate({"architectures": archs}, "x")


def test_server_refuses_bare_llama_model_at_startup(default_model, tmp_path):
    bare = build_tiny(default_model, tmp_path / "bare", lm_head=False)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rationalyst.cli",
            "serve",
            "--port",
            "1",
            "--rationale-model",
            str(bare),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "cannot generate text" in proc.stderr and "LlamaModel" in proc.stderr
