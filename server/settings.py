"""HTTP and operations settings of the server, on top of the engine and algorithm
settings (rationalyst.supervisor.settings), read once at the edge."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from rationalyst.supervisor.settings import Settings


class ServerSettings(Settings):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "comma-separated bearer keys; when set, every endpoint but /health, /metrics "
            "and the viewer page needs one"
        ),
    )

    max_concurrent_solves: int = Field(8, ge=1, description="solves running at once")
    max_queued_solves: int = Field(
        32,
        ge=0,
        description=("solves waiting for a slot; beyond that requests get 429 with Retry-After"),
    )
    max_timeout_s: float = Field(
        600.0, gt=0, description=("longest per-request deadline (timeout_s), and the default")
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "comma-separated origins a browser app may call the API from ('*' for any); "
            "empty: no CORS headers (the default)"
        ),
    )
    shutdown_grace_s: float = Field(
        30.0,
        ge=0,
        description=("on SIGTERM, how long in-flight solves may run before they are cancelled"),
    )
    reasoning_format: Literal["content", "reasoning"] = Field(
        "content",
        description=(
            "/v1 supervised models, unless the request's reasoning_format says otherwise: "
            "'content' (the steps in the message content) or 'reasoning' (the steps in "
            "reasoning and reasoning_content, the answer step alone in content)"
        ),
    )
    zero_temperature: Literal["sample", "refuse"] = Field(
        "sample",
        description=(
            "/v1 supervised model asked for temperature 0: 'sample' (supervise at "
            "zero_temperature_sampling with a seed derived from the request) or 'refuse' "
            "(a 400, as before)"
        ),
    )
    zero_temperature_sampling: float = Field(
        0.7,
        gt=0,
        le=2,
        description=("the sampling temperature a temperature-0 /v1 request is supervised at"),
    )

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_keys(cls, v):
        if isinstance(v, str):
            return [k.strip() for k in v.split(",") if k.strip()]
        return v
