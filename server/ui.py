"""GET / and /ui: the live trace viewer, one static HTML page (inline CSS and JS,
no build step, nothing fetched from elsewhere). It calls the streaming POST /solve.
Its strategy menus are the strategy registry's, filled in here."""

from __future__ import annotations

import hashlib
from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from rationalyst.supervisor.strategies import REGISTRY

PAGE = Path(__file__).parent / "static" / "index.html"
# Where the page takes the registry's strategies, one <option> each.
OPTIONS = "<!--strategy options: filled in by server/ui.py from the strategy registry-->"

router = APIRouter(include_in_schema=False)


def render() -> str:
    """The page, its strategy menus filled from the registry."""
    options = "".join(f"<option>{escape(name)}</option>" for name in REGISTRY)
    return PAGE.read_text(encoding="utf-8").replace(OPTIONS, options)


@router.get("/")
@router.get("/ui")
async def trace_viewer() -> HTMLResponse:
    page = render()
    # no-cache: revalidate (ETag) so a changed page shows without a hard reload.
    etag = '"' + hashlib.sha1(page.encode()).hexdigest() + '"'
    return HTMLResponse(page, headers={"Cache-Control": "no-cache", "ETag": etag})
