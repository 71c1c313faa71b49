"""`rationalyst extract --url A,B`: the work of one process is spread over several
`vllm serve` replicas by the server's own Replicas engine. One real `vllm serve` of
the tiny model is reached under two URLs (127.0.0.1 and localhost), so that the
replicas are two engines with their own connections; each engine's requests are
counted by URL."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from harness import vllm_server
from rationalyst.cli.main import main
from rationalyst.supervisor.remote_engine import RemoteEngine

pytestmark = pytest.mark.vllm


@pytest.mark.timeout(900)
def test_extract_spreads_its_requests_over_two_replicas(tiny_model, tmp_path, monkeypatch):
    srv = vllm_server(tiny_model, tmp_path / "vllm.log")
    srv.start()
    try:
        urls = [srv.url.rstrip("/"), srv.url.rstrip("/").replace("127.0.0.1", "localhost")]
        calls: Counter = Counter()
        real = RemoteEngine.generate

        async def counted(self, *a, **k):
            calls[self.url] += 1
            return await real(self, *a, **k)

        monkeypatch.setattr(RemoteEngine, "generate", counted)
        docs = tmp_path / "docs.jsonl"
        with open(docs, "w") as f:
            for i in range(16):  # a document's requests share one replica: 16 spread
                f.write(
                    json.dumps(
                        {
                            "id": f"d{i}",
                            "text": f"Ann has {i} apples. She buys "
                            "two more. Now she has more apples. She is happy.",
                        }
                    )
                    + "\n"
                )
        out = tmp_path / "x"
        assert (
            main(
                [
                    "extract",
                    str(docs),
                    "--out",
                    str(out),
                    "--model",
                    str(tiny_model),
                    "--url",
                    ",".join(urls),
                    "--max-rationale-tokens",
                    "8",
                    "--concurrency",
                    "3",
                    "--no-progress",
                ]
            )
            == 0
        )
        stats = json.loads((out / "extract_stats.json").read_text())
        assert stats["read"] == 16
        assert set(calls) == set(urls), calls  # both replicas did work
        assert sum(calls.values()) >= 16  # at least one rationale asked per document
    finally:
        srv.kill()
