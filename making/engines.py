"""One engine for a making step: the model in-process, or `vllm serve` URLs (one
server, or several replicas of it, spread as `serve` spreads them: each document's
requests are one session, pinned to one replica, and the documents of one process go
to all of them). Same start-up check as the server."""

from __future__ import annotations

from pathlib import Path

from rationalyst.supervisor.engine import Engine


async def open_engine(
    model: str,
    url: str | None,
    *,
    cache_dir: Path,
    api_key: str | None = None,
    max_model_len: int | None = None,
    max_concurrency: int = 64,
) -> Engine:
    """Raises ModelError (no LM head, no config) before anything is loaded."""
    from rationalyst.supervisor.backends import connect_remote, display_name
    from rationalyst.supervisor.models import resolve

    path = resolve(model, cache_dir)
    if url:  # one server, or several replicas (comma-separated), as `serve` takes them
        return await connect_remote(path, url, api_key=api_key, max_concurrency=max_concurrency)
    from rationalyst.supervisor.vllm_engine import VLLMEngine

    return VLLMEngine.load(path, display_name(path), max_model_len=max_model_len)


def with_engine(opts, work):
    """Open the engine `opts` name (model, url, api_key, max_model_len, concurrency),
    run `await work(engine)` on it, and close it."""
    import asyncio

    from rationalyst.supervisor.models import default_cache_dir

    async def go():
        engine = await open_engine(
            opts.model,
            opts.url,
            cache_dir=default_cache_dir(),
            api_key=opts.api_key,
            max_model_len=opts.max_model_len,
            max_concurrency=max(1, opts.concurrency) * 8,
        )
        try:
            return await work(engine)
        finally:
            await engine.close()

    return asyncio.run(go())


def guard(run) -> int:
    """Run a making command: the errors a user can fix become one line and exit 2,
    Ctrl-C exits 130."""
    import sys

    from rationalyst.supervisor.engine import EngineError
    from rationalyst.supervisor.models import ModelError

    from .documents import InputError

    def fail(msg: str, code: int) -> int:
        print(f"rationalyst: {msg}", file=sys.stderr)
        return code

    try:
        return run()
    except (InputError, ModelError, EngineError) as exc:
        return fail(str(exc), 2)
    except KeyboardInterrupt:
        return fail("interrupted; finished work is saved: rerun the same command to continue", 130)
