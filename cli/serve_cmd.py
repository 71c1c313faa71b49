"""`rationalyst serve` and `rationalyst prepare`: their options are the server's
settings (server/settings.py), every setting a flag; an unset flag falls back to
RATIONALYST_* in the environment."""

from __future__ import annotations

import logging
import sys

from rationalyst.cli.flags import Command
from rationalyst.server.settings import ServerSettings


def serve(settings: ServerSettings) -> int:
    from rationalyst.server.app import create_app

    # Check the models first: a bad checkpoint gets one clear line, not a traceback.
    if check_models(settings) is None:
        return 2
    from rationalyst.server import logs

    logs.configure()
    return run_server(create_app(settings), settings)


def run_server(app, settings) -> int:
    """Serve `app` with uvicorn until SIGTERM or Ctrl+C; the exit status.

    On the signal uvicorn stops accepting; streams may finish within the grace period
    (server/solve.py), then whatever is left is cancelled and the engines stop (their
    processes wait for this: supervisor/engine_signals.py). A second signal, SIGINT
    or SIGTERM, forces a quick exit. Our middleware writes one access line per
    request, with its request id, so uvicorn's own is off."""
    import signal

    import uvicorn

    from rationalyst.supervisor import engine_signals

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            # uvicorn forces only on a second SIGINT; a process manager resends SIGTERM.
            if self.should_exit:
                logging.getLogger(__name__).warning("second signal: forcing the exit")
                self.force_exit = True
            super().handle_exit(sig, frame)

    server = Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_grace_s + 5,
        )
    )
    # uvicorn re-raises the signal once it has drained, which would end a clean stop
    # with "killed by SIGTERM" (or a KeyboardInterrupt traceback): make that a no-op.
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in handled}
    try:
        server.run()
    finally:
        # A forced exit skips the lifespan's close: let vLLM's exit handlers stop
        # the engine processes at once rather than wait out their own timeout.
        engine_signals.release_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if server.started else 3  # 3: uvicorn's start-up failure status


def check_models(settings: ServerSettings) -> list[str] | None:
    from rationalyst.supervisor.models import ModelError, resolve

    try:
        return [
            resolve(spec, settings.cache_dir, base=settings.agent_model)
            for spec in dict.fromkeys([settings.agent_model, settings.rationale_model])
        ]
    except ModelError as exc:
        print(f"rationalyst: {exc}", file=sys.stderr)
        return None


def prepare(settings: ServerSettings) -> int:
    """Build and check the configured models ahead of `serve` (no engine started)."""
    paths = check_models(settings)
    if paths is None:
        return 2
    print("\n".join(paths))
    return 0


SERVE = Command("serve", ServerSettings, serve, "start the HTTP server", env_prefix="RATIONALYST_")
PREPARE = Command(
    "prepare",
    ServerSettings,
    prepare,
    "build the packaged default model, check models",
    env_prefix="RATIONALYST_",
)
