"""The remote engine's start-up warning about a server whose KV blocks are coarser
than ours (issue 23): cached scoring would re-prefill up to a block per step. The
server is faked at the HTTP layer; its cache hits are whole blocks of `block` tokens,
as vLLM's are."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from rationalyst.supervisor import remote_engine
from rationalyst.supervisor.remote_engine import RemoteEngine


class OneTokenPerChar:
    model_max_length = 2048

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


def fake_vllm(block: int | None):
    """/v1/models, and a token route whose cache keeps every prompt it has seen."""
    seen: list[list[int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "tiny", "max_model_len": 2048}]})
        ids = json.loads(request.content)["token_ids"]
        common = max(
            (
                next((i for i, (a, b) in enumerate(zip(s, ids)) if a != b), min(len(s), len(ids)))
                for s in seen
            ),
            default=0,
        )
        seen.append(ids)
        usage = {"prompt_tokens": len(ids)}
        if block is not None:  # a server run with --enable-prompt-tokens-details
            usage["prompt_tokens_details"] = {
                "cached_tokens": min(common, len(ids) - 1) // block * block
            }
        return httpx.Response(
            200, json={"choices": [{"token_ids": [0]}], "usage": usage, "prompt_logprobs": []}
        )

    return handler


async def connected(block: int | None) -> RemoteEngine:
    eng = RemoteEngine("http://vllm.test", "tiny", "tiny", tokenizer=OneTokenPerChar())
    await eng.client.aclose()
    eng.client = httpx.AsyncClient(
        base_url=eng.url, transport=httpx.MockTransport(fake_vllm(block))
    )
    return await eng.connect()


@pytest.mark.parametrize("block,warns", [(16, False), (32, False), (64, True), (128, True)])
async def test_coarse_blocks_are_warned_about_at_start_up(block, warns, caplog):
    with caplog.at_level(logging.WARNING, logger="rationalyst.supervisor.remote_engine"):
        eng = await connected(block)
    await eng.close()
    assert eng.scoring == remote_engine.CACHED
    notes = [r.getMessage() for r in caplog.records if "--block-size 32" in r.getMessage()]
    assert bool(notes) == warns, notes
    if warns:
        assert f"read {5 * 32 // block * block} of 160 tokens" in notes[0]


async def test_no_count_no_block_probe(caplog):
    """Without cached-token counts cached scoring is off anyway: one note, that one."""
    with caplog.at_level(logging.WARNING, logger="rationalyst.supervisor.remote_engine"):
        eng = await connected(None)
    await eng.close()
    assert eng.scoring == remote_engine.FULL
    assert [r.getMessage() for r in caplog.records] == [
        f"http://vllm.test: {remote_engine.NO_COUNT}"
    ]
