"""Engine and algorithm settings, read once at the edge (CLI or app factory) and passed
down. HTTP and operations settings extend them in rationalyst.server.settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .models import DEFAULT_MODEL, RATIONALYST_HUB_ID, default_cache_dir

_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RATIONALYST_", extra="ignore")

    agent_model: str = Field(
        DEFAULT_MODEL,
        description=(
            "agent checkpoint: 'default' (packaged SmolLM2-135M-Instruct), a local "
            "directory or a hub id"
        ),
    )
    rationale_model: str = Field(
        DEFAULT_MODEL,
        description=(
            "rationale checkpoint; for the real RATIONALYST, the folder that `rationalyst "
            f"import-checkpoint {RATIONALYST_HUB_ID}` writes (the published checkpoint has "
            "no LM head)"
        ),
    )
    scorer: Literal["agent", "rationale"] = Field(
        "agent", description="which model scores candidates (the reference uses the agent)"
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir, description="where the packaged default model is built"
    )

    agent_url: str | None = Field(
        None,
        description=(
            "serve the agent from this vLLM OpenAI-compatible server instead of in-process"
        ),
    )
    rationale_url: str | None = Field(None, description="likewise for the rationale model")
    scorer_url: str | None = Field(
        None,
        description=(
            "a separate server (replica) of the scorer model for scoring; default: the "
            "scorer model's own URL or engine"
        ),
    )
    agent_api_key: str | None = None
    rationale_api_key: str | None = None
    scorer_api_key: str | None = None
    remote_timeout_s: float = Field(300.0, gt=0, description="per-request timeout, remote")
    remote_max_concurrency: int = Field(64, ge=1, description="requests in flight per server")
    replica_retry_s: float = Field(
        5.0,
        gt=0,
        description=("with several URLs for a model: how long a replica that failed is skipped"),
    )

    dtype: str = "auto"
    block_size: int | None = Field(
        None,
        ge=1,
        description=(
            "KV-cache block size in tokens (in-process vLLM). Prefix-cache hits are whole "
            "blocks, so each scored candidate re-prefills up to block_size - 1 prefix "
            "tokens; default 32 on the CPU, vLLM's own on GPUs"
        ),
    )
    max_model_len: int | None = Field(
        None, ge=1, description="context length; model's own if unset"
    )
    agent_gpu_memory: float = Field(
        0.45, gt=0, le=1, description="GPU memory fraction for the agent engine"
    )
    rationale_gpu_memory: float = Field(
        0.45, gt=0, le=1, description="GPU memory fraction for the rationale engine"
    )

    judge_url: str | None = Field(
        None,
        description=(
            "strategy 'judge': an OpenAI-compatible chat API base URL for the verifier, "
            "e.g. https://api.openai.com/v1 or a vllm serve's http://host:port/v1; "
            "default: the agent engine judges its own candidates"
        ),
    )
    judge_model: str = Field("gpt-4-turbo", description="the verifier's model name at judge_url")
    judge_api_key: str | None = None
    prm_model: str | None = Field(
        None,
        description=(
            "strategy 'prm': a process reward model checkpoint (local directory or hub "
            "id), e.g. Qwen/Qwen2.5-Math-PRM-7B; unset: no 'prm'"
        ),
    )
    prm_url: str | None = Field(
        None,
        description=("serve the PRM from this `vllm serve --runner pooling` instead of in-process"),
    )
    prm_api_key: str | None = None
    prm_preset: Literal["qwen2.5-math-prm", "math-shepherd"] = Field(
        "qwen2.5-math-prm", description="the PRM's step tag and good/bad labels"
    )

    step_max_tokens: int = Field(64, ge=1, description="tokens per candidate step")
    rationale_max_tokens: int = Field(64, ge=1, description="tokens per rationale")
    max_tokens: int = Field(
        2048,
        ge=1,
        description=("default token budget of one solve (profile 'generic'; 'reference' has none)"),
    )
    turn_max_tokens: int = Field(
        1000,
        ge=1,
        description=(
            "tokens per step and per rationale when a step is a whole turn (the reference's 1,000)"
        ),
    )
    fewshot_dir: Path = Field(
        _SHARED_DATA / "fewshot",
        description=(
            "the few-shot splits of the reference profile (gsm8k_train.jsonl, "
            "arc_challenge_train.jsonl, mmlu_pro_validation.jsonl)"
        ),
    )
    benchmark_dir: Path = Field(
        _SHARED_DATA / "benchmarks",
        description=(
            "the benchmark files; the reference profile reads its HellaSwag and ProofWriter "
            "shot items from hellaswag.jsonl and proofwriter_dev.jsonl"
        ),
    )
