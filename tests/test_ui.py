"""The trace viewer (GET /): real headless Chromium, Debian's `chromium` driven by
Playwright, against a real `rationalyst serve` with the default model on 127.0.0.1.

Skipped when /usr/bin/chromium or the `playwright` package is missing. Never run
`playwright install`: these tests use the system browser, nothing is downloaded.
Set RATIONALYST_UPDATE_SCREENSHOT=1 to rewrite docs/trace-viewer.png."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest

from harness import REPO, read_items

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium: apt-get install -y chromium",
        allow_module_level=True,
    )
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    pytest.skip(
        "browser tests need Playwright: pip install playwright "
        "(do not run `playwright install`; the tests use /usr/bin/chromium)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.vllm

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SOLVE_MS = 180_000  # a whole CPU solve on a busy 2-core machine, with room to spare
UI_MS = 15_000  # page reactions that need no model
GSM8K = read_items("gsm8k", 1)[0]
SEED = 3  # with this seed the GSM8K item takes more than one step
SCREENSHOT = REPO / "docs" / "trace-viewer.png"

ALL_SETTLED = "[...document.querySelectorAll('.run')].every(r => r.dataset.state !== 'running')"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    js_errors: list[str] = []
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    page.goto(server.url + "/")
    yield page
    context.close()
    assert not js_errors, f"JavaScript errors on the page: {js_errors}"


def fill(
    page,
    question: str,
    *,
    strategy: str = "rationalyst",
    compare: str = "",
    num_candidates: str = "2",
    max_steps: str = "3",
    seed: str = str(SEED),
    choices: str = "",
) -> None:
    page.fill("#question", question)
    page.fill("#choices", choices)
    page.select_option("#strategy", strategy)
    page.select_option("#compare", compare)
    page.fill("#num_candidates", num_candidates)
    page.fill("#max_steps", max_steps)
    page.fill("#seed", seed)


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "event" in fields and "data" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_page_is_served_at_root_and_ui_with_nothing_from_elsewhere(server):
    pages = [httpx.get(server.url + path, timeout=30) for path in ("/", "/ui")]
    for r in pages:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
    assert pages[0].text == pages[1].text
    html = pages[0].text
    assert 'id="question"' in html and "fetch(" in html
    # No CDN: every src/href is local (or inline data).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "@import" not in html


def test_steps_appear_one_by_one_while_the_stream_runs(page):
    fill(page, GSM8K["question"])
    page.click("#solve")
    # One step rendered while the solve still runs and no answer is shown: a page that
    # waited for `done` (or rendered everything at the end) never shows this state.
    page.wait_for_function(
        """() => document.querySelectorAll('.step').length === 1
                 && !document.querySelector('#answer')
                 && document.querySelector('.run').dataset.state === 'running'""",
        timeout=SOLVE_MS,
        polling=50,
    )
    first_seen = time.monotonic()
    first = page.locator(".step").first.inner_text()
    page.wait_for_function(
        "() => document.querySelectorAll('.step').length >= 2", timeout=SOLVE_MS, polling=50
    )
    page.wait_for_function(ALL_SETTLED, timeout=SOLVE_MS, polling=50)
    done_seen = time.monotonic()
    assert page.get_attribute(".run", "data-state") == "done"
    steps = page.locator(".step")
    assert 2 <= steps.count() <= 3
    assert [steps.nth(i).get_attribute("data-index") for i in range(steps.count())] == [
        str(i) for i in range(steps.count())
    ]
    assert steps.first.inner_text() == first  # shown once, never redrawn
    # Step 1 was on screen while the server computed the others: not replayed at the end.
    later_ms = sum(
        float(steps.nth(i).get_attribute("data-elapsed-ms")) for i in range(1, steps.count())
    )
    assert (done_seen - first_seen) * 1e3 > 0.5 * later_ms
    assert page.locator("#answer").count() == 1
    assert page.locator(".finish-reason").inner_text().split()[0] in ("answer", "max_steps")


def test_rationalyst_beside_greedy_shows_bars_rationales_and_the_summary(page, tmp_path):
    # Keep a copy of what the real server streams (Chromium does not keep the body of
    # an event stream), to check the page against it. Delivered whole, not streamed:
    # this test is about what is drawn, the one above about when.
    streamed: dict[str, str] = {}

    def relay(route):
        response = route.fetch(timeout=SOLVE_MS)
        streamed[json.loads(route.request.post_data)["strategy"]] = response.text()
        route.fulfill(response=response)

    page.route("**/solve", relay)
    fill(page, GSM8K["question"], compare="greedy")
    page.click("#solve")
    page.wait_for_function(ALL_SETTLED, timeout=SOLVE_MS)
    main, other = page.locator(".run").nth(0), page.locator(".run").nth(1)
    assert main.get_attribute("data-strategy") == "rationalyst"
    assert other.get_attribute("data-strategy") == "greedy"
    assert main.get_attribute("data-state") == "done", main.inner_text()
    assert other.get_attribute("data-state") == "done", other.inner_text()

    # The page shows exactly what the server streamed.
    events = parse_sse(streamed["rationalyst"])
    assert events and events[-1][0] == "done"
    done = events[-1][1]
    steps = main.locator(".step")
    assert steps.count() == len(done["steps"]) >= 1
    for i, sent in enumerate(done["steps"]):
        step = steps.nth(i)
        rationale = step.locator(".rationale")
        assert rationale.count() == 1 and sent["rationale"].strip()
        assert " ".join(sent["rationale"].split()) in " ".join(rationale.inner_text().split())
        cands = step.locator(".candidate")
        assert cands.count() == len(sent["candidates"]) == 2
        chosen = step.locator(".candidate.chosen")
        assert chosen.count() == 1
        assert chosen.locator(".text").inner_text().strip() == sent["text"].strip()
        scored = [c for c in sent["candidates"] if c["score"] is not None]
        bars = step.locator(".candidate .bar")
        assert bars.count() == len(scored) >= 1
        widths = [
            float(bars.nth(j).evaluate("b => parseFloat(b.style.width)"))
            for j in range(bars.count())
        ]
        assert all(0 < w <= 100 for w in widths)
        if chosen.locator(".bar").count():  # the best-scored candidate has the full bar
            assert chosen.locator(".bar").evaluate("b => parseFloat(b.style.width)") == 100
        # Rejected candidates are folded, and one click away.
        rejected = step.locator("details.rejected-list .candidate.rejected")
        assert rejected.count() == 1
        assert not rejected.first.is_visible()
        step.locator("details.rejected-list summary").click()
        assert rejected.first.is_visible()

    # Greedy has neither rationales nor scores.
    assert other.locator(".step").count() >= 1
    assert other.locator(".rationale").count() == 0
    assert other.locator(".bar").count() == 0

    # The summary: answer, finish reason, usage and timings from `done`.
    answer = main.locator("#answer").inner_text()
    assert answer == (done["answer"] if done["answer"] is not None else "no answer")
    assert other.locator("#answer-compare").count() == 1
    assert main.locator(".finish-reason").inner_text().startswith(done["finish_reason"])
    usage = main.locator(".usage").inner_text()
    assert f"scored {done['usage']['scored_tokens']:,}" in usage
    assert f"rationale {done['usage']['rationale_tokens']:,}" in usage
    timings = main.locator(".timings").inner_text()
    assert all(k in timings for k in ("sample", "rationale", "score", "total"))

    # A finished solve, for the README (rewritten only on request).
    page.evaluate("window.scrollTo(0, 0)")
    out = SCREENSHOT if os.environ.get("RATIONALYST_UPDATE_SCREENSHOT") else tmp_path / "t.png"
    out.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 10_000
    if out == SCREENSHOT:
        shrink_png(out)


def shrink_png(path: Path) -> None:
    """128 colours: a flat UI loses nothing visible, the file shrinks about 3x."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(
            128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    small.save(path, optimize=True)


@pytest.mark.parametrize(
    "field, value, needles",
    [
        ("num_candidates", "40", ["HTTP 422", "num_candidates", "16", "got 40"]),
        ("question", "   ", ["HTTP 422", "question must contain some text"]),
    ],
)
def test_bad_input_shows_the_servers_message(page, field, value, needles):
    fill(page, GSM8K["question"])
    page.fill("#" + field, value)
    page.click("#solve")
    error = page.locator(".run .error")
    error.wait_for(timeout=UI_MS)
    text = error.inner_text()
    assert all(n in text for n in needles), text
    assert page.get_attribute(".run", "data-state") == "error"
    assert page.locator(".step").count() == 0
    expect(page.locator("#solve")).to_be_enabled()  # ready for the corrected request


# Failures the real server cannot be made to produce on demand: its /solve answer is
# replaced in the browser, the page itself still comes from the real server.
STEP = {
    "index": 0,
    "text": "Tom has 3 + 4 = 7 apples.",
    "rationale": "add them",
    "candidates": [
        {"text": "Tom has 3 + 4 = 7 apples.", "score": -0.5, "chosen": True},
        {"text": "Tom has 12 apples.", "score": -1.5, "chosen": False},
    ],
    "elapsed_ms": 10.0,
}


def sse(*events: tuple[str, dict]) -> str:
    return "".join(f"event: {e}\r\ndata: {json.dumps(d)}\r\n\r\n" for e, d in events)


@pytest.mark.parametrize(
    "reply, needles, steps",
    [
        (
            {
                "status": 200,
                "content_type": "text/event-stream",
                "body": sse(
                    ("step", STEP),
                    (
                        "error",
                        {
                            "error": {
                                "message": "the model engine failed: out of memory",
                                "type": "engine_error",
                            }
                        },
                    ),
                ),
            },
            ["The solve failed on the server", "out of memory"],
            1,
        ),
        (
            {"status": 200, "content_type": "text/event-stream", "body": sse(("step", STEP))},
            ["connection closed before the solve finished"],
            1,
        ),
        (
            {
                "status": 401,
                "content_type": "application/json",
                "body": json.dumps(
                    {"error": {"message": "invalid API key", "type": "authentication_error"}}
                ),
            },
            ["API key", "HTTP 401", "invalid API key"],
            0,
        ),
        ("abort", ["Could not reach the server"], 0),
    ],
)
def test_errors_are_shown_in_plain_words(page, reply, needles, steps):
    def answer(route):
        route.abort("connectionreset") if reply == "abort" else route.fulfill(**reply)

    page.route("**/solve", answer)
    fill(page, "Tom has 3 apples and buys 4 more. How many apples does he have?")
    page.click("#solve")
    error = page.locator(".run .error")
    error.wait_for(timeout=UI_MS)
    text = error.inner_text()
    assert all(n in text for n in needles), text
    assert page.get_attribute(".run", "data-state") == "error"
    assert page.locator(".step").count() == steps
    if steps:  # a step that arrived before the failure stays on screen, with its bars
        assert page.locator(".step .candidate .bar").count() == 2


def test_api_key_is_sent_as_bearer_and_kept_in_session_storage_only(page):
    seen: list[dict] = []

    def answer(route):
        seen.append(route.request.headers)
        route.fulfill(
            status=200,
            content_type="text/event-stream",
            body=sse(
                ("step", STEP),
                (
                    "done",
                    {
                        "id": "solve-x",
                        "strategy": "rationalyst",
                        "seed": 1,
                        "answer": "7",
                        "finish_reason": "answer",
                        "steps": [STEP],
                        "usage": {
                            "agent_prompt_tokens": 1,
                            "agent_completion_tokens": 2,
                            "rationale_tokens": 3,
                            "scored_tokens": 4,
                        },
                        "timings": {
                            "sample_ms": 1,
                            "rationale_ms": 2,
                            "score_ms": 3,
                            "total_ms": 4,
                        },
                    },
                ),
            ),
        )

    page.route("**/solve", answer)
    page.fill("#api_key", "sk-secret")
    fill(page, "Tom has 3 apples and buys 4 more. How many apples does he have?")
    page.click("#solve")
    page.locator("#answer").wait_for(timeout=UI_MS)
    assert page.locator("#answer").inner_text() == "7"
    assert seen and seen[0]["authorization"] == "Bearer sk-secret"
    assert page.evaluate("Object.values(sessionStorage)") == ["sk-secret"]
    assert page.evaluate("localStorage.length") == 0
    page.reload()  # kept for this tab's session
    assert page.input_value("#api_key") == "sk-secret"
    page.fill("#api_key", "")  # cleared: no header at all
    fill(page, "Tom has 3 apples and buys 4 more. How many apples does he have?")
    page.click("#solve")
    page.wait_for_function("() => document.querySelector('#answer')", timeout=UI_MS)
    assert "authorization" not in seen[-1]
    assert page.evaluate("sessionStorage.length") == 0
