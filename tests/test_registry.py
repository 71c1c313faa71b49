"""The strategy registry: the one list of strategies, and what reads it."""

from __future__ import annotations

import dataclasses
import inspect

from rationalyst import protocol
from rationalyst.supervisor.engine import Engines
from rationalyst.supervisor.strategies import REGISTRY


def test_registry_names_are_the_wire_formats():
    assert tuple(REGISTRY) == protocol.STRATEGIES


def test_every_entry_is_a_strategy_with_known_models():
    roles = {f.name for f in dataclasses.fields(Engines)}
    for name, spec in REGISTRY.items():
        assert inspect.iscoroutinefunction(spec.run), name
        assert list(inspect.signature(spec.run).parameters) == ["state", "engines"], name
        assert "agent" in spec.models and set(spec.models) <= roles, name
        assert spec.verifier in (None, "judge", "prm"), name
        # A strategy with a rationale has the model that writes it.
        assert spec.rationale == ("rationale" in spec.models), name


def test_the_viewers_menus_list_the_registry():
    from rationalyst.server import ui

    html = ui.render()
    assert "strategy options" not in html  # both placeholders filled
    for name in REGISTRY:
        assert html.count(f"<option>{name}</option>") == 2


def test_the_served_page_has_the_menus_filled():
    import httpx

    from harness import ThreadServer, answering_engine

    with ThreadServer(answering_engine()) as srv:
        pages = [httpx.get(srv.url + path, timeout=30) for path in ("/", "/ui")]
    for r in pages:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
        assert r.text.count("<option>judge</option>") == 2
    assert pages[0].text == pages[1].text
