"""Build the engines a server needs from its settings: one engine per distinct model."""

from __future__ import annotations

from dataclasses import dataclass

from .engine import Engines
from .models import DEFAULT_MODEL, resolve
from .settings import Settings


@dataclass
class ModelInfo:
    agent: str
    rationale: str
    scorer: str
    rationale_is_stand_in: bool


def describe(settings: Settings, agent_path: str, rationale_path: str) -> ModelInfo:
    from .vllm_engine import display_name

    # The packaged default, or the agent model reused, is not RATIONALYST.
    stand_in = settings.rationale_model == DEFAULT_MODEL or rationale_path == agent_path
    agent, rationale = display_name(agent_path), display_name(rationale_path)
    return ModelInfo(agent, rationale, agent if settings.scorer == "agent" else rationale,
                     stand_in)


def load_engines(settings: Settings) -> tuple[Engines, ModelInfo]:
    """Resolve and check both models (fails fast on a checkpoint with no LM head),
    then load each distinct one into vLLM."""
    agent_path = resolve(settings.agent_model, settings.cache_dir)
    rationale_path = resolve(settings.rationale_model, settings.cache_dir)
    from .vllm_engine import VLLMEngine, display_name

    loaded: dict[str, VLLMEngine] = {}

    def engine(path: str, gpu_memory: float) -> VLLMEngine:
        if path not in loaded:
            loaded[path] = VLLMEngine.load(path, display_name(path), dtype=settings.dtype,
                                           max_model_len=settings.max_model_len,
                                           gpu_memory=gpu_memory)
        return loaded[path]

    agent = engine(agent_path, settings.agent_gpu_memory)
    rationale = engine(rationale_path, settings.rationale_gpu_memory)
    scorer = agent if settings.scorer == "agent" else rationale
    return Engines(agent, rationale, scorer), describe(settings, agent_path, rationale_path)
