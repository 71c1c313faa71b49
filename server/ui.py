"""GET / and /ui: the live trace viewer, one static HTML page (inline CSS and JS,
no build step, nothing fetched from elsewhere). It calls the streaming POST /solve."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

PAGE = Path(__file__).parent / "static" / "index.html"

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/ui")
async def trace_viewer() -> FileResponse:
    # no-cache: revalidate (ETag) so a changed page shows without a hard reload.
    return FileResponse(PAGE, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
