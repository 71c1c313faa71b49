"""Build the engines a server needs from its settings: one engine per distinct model
(or per server URL), in-process vLLM, a remote `vllm serve`, or several replicas of
one (comma-separated URLs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .engine import Engine, EngineError, Engines
from .models import DEFAULT_MODEL, resolve
from .settings import Settings


@dataclass
class ModelInfo:
    agent: str
    rationale: str
    scorer: str
    rationale_is_stand_in: bool


def split_urls(url: str) -> list[str]:
    """'http://a:8001, http://b:8001' -> both: one model's replicas."""
    urls = [u.strip().rstrip("/") for u in url.split(",") if u.strip()]
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if not urls or bad:
        raise EngineError(
            f"not an http(s) URL: {(bad or [url])[0]!r} (several replicas "
            "of one model are comma-separated URLs)"
        )
    if len(set(urls)) != len(urls):
        raise EngineError(f"a URL appears twice in {url!r}")
    return urls


async def connect_remote(
    path: str,
    url: str,
    *,
    api_key: str | None = None,
    timeout_s: float = 300.0,
    max_concurrency: int = 64,
    retry_s: float = 5.0,
) -> Engine:
    """The `vllm serve` at `url`, or its replicas behind one engine when `url` names
    several (comma-separated): the server's and the making pipeline's one way."""
    from transformers import AutoTokenizer

    from .remote_engine import RemoteEngine

    urls = split_urls(url)
    tok = AutoTokenizer.from_pretrained(path)
    engines = [
        RemoteEngine(
            u,
            path,
            display_name(path),
            api_key=api_key,
            timeout_s=timeout_s,
            max_concurrency=max_concurrency,
            tokenizer=tok,
        )
        for u in urls
    ]
    if len(engines) == 1:
        return await engines[0].connect()
    from .replicas import Replicas

    return await Replicas(engines, retry_s=retry_s).connect()


def display_name(model: str) -> str:
    p = Path(model)
    return p.name if p.is_absolute() else model


def describe(settings: Settings, agent_path: str, rationale_path: str) -> ModelInfo:
    # The packaged default, or the agent model reused, is not RATIONALYST.
    stand_in = settings.rationale_model == DEFAULT_MODEL or rationale_path == agent_path
    agent, rationale = display_name(agent_path), display_name(rationale_path)
    return ModelInfo(agent, rationale, agent if settings.scorer == "agent" else rationale, stand_in)


async def load_engines(settings: Settings) -> tuple[Engines, ModelInfo]:
    """Resolve and check both models (fails fast on a checkpoint with no LM head),
    then load each distinct one in-process, or connect to its server."""
    agent_path = resolve(settings.agent_model, settings.cache_dir, settings.agent_model)
    rationale_path = resolve(settings.rationale_model, settings.cache_dir, settings.agent_model)
    loaded: dict[tuple[str, str | None], Engine] = {}

    async def remote(path: str, url: str, api_key: str | None) -> Engine:
        return await connect_remote(
            path,
            url,
            api_key=api_key,
            timeout_s=settings.remote_timeout_s,
            max_concurrency=settings.remote_max_concurrency,
            retry_s=settings.replica_retry_s,
        )

    async def engine(path: str, url: str | None, api_key: str | None, gpu_memory: float) -> Engine:
        key = (path, url)
        if key not in loaded:
            if url:
                loaded[key] = await remote(path, url, api_key)
            else:
                from .vllm_engine import VLLMEngine

                loaded[key] = VLLMEngine.load(
                    path,
                    display_name(path),
                    dtype=settings.dtype,
                    max_model_len=settings.max_model_len,
                    gpu_memory=gpu_memory,
                    block_size=settings.block_size,
                )
        return loaded[key]

    try:
        agent = await engine(
            agent_path, settings.agent_url, settings.agent_api_key, settings.agent_gpu_memory
        )
        rationale = await engine(
            rationale_path,
            settings.rationale_url,
            settings.rationale_api_key,
            settings.rationale_gpu_memory,
        )
        if settings.scorer_url:
            path = agent_path if settings.scorer == "agent" else rationale_path
            scorer = await engine(path, settings.scorer_url, settings.scorer_api_key, 0.0)
        else:
            scorer = agent if settings.scorer == "agent" else rationale
    except BaseException:
        for e in loaded.values():  # nothing half-started is left behind
            await e.close()
        raise
    try:
        judge, prm = await load_verifiers(settings)
    except BaseException:
        for e in loaded.values():
            await e.close()
        raise
    return (
        Engines(agent, rationale, scorer, judge, prm),
        describe(settings, agent_path, rationale_path),
    )


async def load_verifiers(settings: Settings):
    """The judge's remote verifier (None: the agent judges) and the PRM (None: none)."""
    judge = prm = None
    if settings.judge_url:
        from .strategies.judge import StructuredHTTPJudge as HTTPJudge

        judge = HTTPJudge(
            split_urls(settings.judge_url)[0],
            settings.judge_model,
            settings.judge_api_key,
            settings.remote_timeout_s,
        )
    if settings.prm_model:
        from .prm import InProcessPRM, RemotePRM

        # Not `resolve`: a PRM has no LM head to check for. A hub id is vLLM's to fetch.
        local = Path(settings.prm_model).expanduser()
        path = str(local.resolve()) if local.exists() else settings.prm_model
        if settings.prm_url:
            from transformers import AutoTokenizer

            prm = RemotePRM(
                split_urls(settings.prm_url)[0],
                path,
                AutoTokenizer.from_pretrained(path),
                settings.prm_preset,
                display_name(path),
                settings.prm_api_key,
                settings.remote_timeout_s,
            )
        else:
            prm = InProcessPRM.load(
                path, display_name(path), settings.prm_preset, dtype=settings.dtype
            )
    return judge, prm


def verifier_models(engines: Engines, agent: str) -> dict[str, str]:
    """For /health: who judges (the agent itself unless a verifier URL is set) and
    the PRM, when one is configured."""
    models = {"judge": getattr(engines.judge, "model", None) or agent}
    if engines.prm is not None:
        models["prm"] = engines.prm.name
    return models


def backend_status(engines: Engines) -> dict:
    """For /health: the scorer's scoring path, and each replica of the roles served
    by several."""
    replicas = {}
    for role in ("agent", "rationale", "scorer"):
        eng = getattr(engines, role)
        if hasattr(eng, "status"):
            replicas[role] = eng.status()
    return {"scoring": getattr(engines.scorer, "scoring", None), "replicas": replicas}
