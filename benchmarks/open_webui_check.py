"""Drive Open WebUI in Chromium against a rationalyst /v1 in the `reasoning` format, and
print what it shows: the reasoning collapsed under "Thought for ...", apart from the
answer (issue 27; docs/api.md has the run and its screenshot).

Open WebUI (PyPI `open-webui`, heavy: its own venv) pointed at our /v1, with no login:

    DATA_DIR=/tmp/owui OPENAI_API_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=x \\
      ENABLE_OLLAMA_API=false WEBUI_AUTH=False OFFLINE_MODE=true HF_HUB_OFFLINE=1 \\
      /tmp/owui-venv/bin/open-webui serve --host 127.0.0.1 --port 8080
    RATIONALYST_REASONING_FORMAT=reasoning make serve      # or a request's extra body

    .venv/bin/python benchmarks/open_webui_check.py http://127.0.0.1:8080 rationalyst

Chromium: Debian's (`apt-get install chromium`), used through playwright's
executable_path (playwright's own browser download is not needed).
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright


def main(
    url: str, model: str, question: str = "What is 3 + 4?", shot: str = "open-webui.png"
) -> int:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/?model={model}", timeout=120_000)
        box = page.locator("#chat-input")
        box.wait_for(timeout=60_000)
        if page.get_by_text("Okay, Let's Go!").count():  # the first visit's release notes
            page.get_by_text("Okay, Let's Go!").click()
        box.click()
        page.keyboard.type(question)
        page.keyboard.press("Enter")
        thought = page.get_by_text("Thought for").last
        thought.wait_for(timeout=300_000)
        reply = page.locator("#response-content-container").last
        page.wait_for_function(  # the answer has streamed in after the reasoning
            "el => el.innerText.trim().split('\\n').length > 1",
            arg=reply.element_handle(),
            timeout=300_000,
        )
        collapsed = reply.inner_text()
        thought.click()
        page.wait_for_timeout(500)  # the expand animation; then the screenshot
        expanded = reply.inner_text()
        page.screenshot(path=shot)
        browser.close()
    print(f"collapsed:\n{collapsed}\n\nexpanded:\n{expanded}\n\nscreenshot: {shot}")
    # The reasoning is hidden until expanded: it is shown apart from the answer.
    return 0 if len(expanded) > len(collapsed) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
