"""Option groups that several commands share, as base models: a command's model
subclasses the group, so a shared flag is defined once."""

from __future__ import annotations

import os

from pydantic import Field

from rationalyst.cli.flags import Options
from rationalyst.clients.client import DEFAULT_URL


class ServerClientOptions(Options):
    """Commands that talk to a running `rationalyst serve` over HTTP."""

    url: str = Field(
        default_factory=lambda: os.environ.get("RATIONALYST_URL", DEFAULT_URL),
        description=f"server address [env RATIONALYST_URL, default {DEFAULT_URL}]",
    )
    api_key: str | None = Field(
        default_factory=lambda: os.environ.get("RATIONALYST_API_KEY"),
        description="sent as 'Authorization: Bearer KEY' [env RATIONALYST_API_KEY]",
    )
    timeout: float = Field(600.0, gt=0, description="seconds to wait for the server")


class ModelOptions(Options):
    """Making commands that load a model in-process."""

    model: str = Field(
        "default",
        description=(
            "the model this command runs: 'default' (the packaged agent model), a "
            "checkpoint directory or a hub id"
        ),
    )
    max_model_len: int | None = Field(
        None,
        ge=1,
        description=("context length of the in-process engine [default: the model's own]"),
    )
    concurrency: int = Field(8, ge=1, description="work items in flight")
    progress: bool = Field(True, description="show a progress bar (--no-progress: none)")


class EngineOptions(ModelOptions):
    """Making commands that run one engine: in-process, or a `vllm serve` URL."""

    url: str | None = Field(
        None,
        description=(
            "a `vllm serve` of that model (OpenAI-compatible) instead of loading it "
            "in-process, or several replicas of it, comma-separated (each document goes to "
            "one, as `serve` spreads solves); --model names the checkpoint it runs (for its "
            "tokenizer)"
        ),
    )
    api_key: str | None = Field(None, description="bearer key for --url")
    concurrency: int = Field(
        8, ge=1, description=("documents (extract) or triples (filter) in flight")
    )
    overwrite: bool = Field(
        False, description=("delete this command's earlier output in the directory first")
    )
