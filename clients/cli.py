"""The `rationalyst` command: serve | prepare | solve | eval | prompts | extract | filter |
train | rank | import-checkpoint."""

from __future__ import annotations

import argparse
import logging
import sys
import typing

from rationalyst.clients import flags


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    """Every setting as a typed --flag; unset flags fall back to RATIONALYST_* env."""
    from rationalyst.server.settings import ServerSettings

    flags.add_field_flags(parser, ServerSettings, ServerSettings.model_fields,
                          env_prefix="RATIONALYST_")
    parser.set_defaults(parser=parser)


def _settings(args: argparse.Namespace):
    from rationalyst.server.settings import ServerSettings

    return flags.build(args.parser, ServerSettings,
                       **flags.set_fields(args, ServerSettings.model_fields))


def cmd_serve(args: argparse.Namespace) -> int:
    from rationalyst.server.app import create_app

    settings = _settings(args)
    # Check the models first: a bad checkpoint gets one clear line, not a traceback.
    if _check_models(settings) is None:
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

    server = Server(uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s + 5))
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


def _check_models(settings) -> list[str] | None:
    from rationalyst.supervisor.models import ModelError, resolve

    try:
        return [resolve(spec, settings.cache_dir, base=settings.agent_model)
                for spec in dict.fromkeys([settings.agent_model, settings.rationale_model])]
    except ModelError as exc:
        print(f"rationalyst: {exc}", file=sys.stderr)
        return None


def cmd_prepare(args: argparse.Namespace) -> int:
    """Build and check the configured models ahead of `serve` (no engine started)."""
    paths = _check_models(_settings(args))
    if paths is None:
        return 2
    print("\n".join(paths))
    return 0


def main(argv: typing.Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["solve"]:  # an HTTP client: skip serve's imports of server/supervisor
        from rationalyst.clients import solve_cmd

        return solve_cmd.main(argv[1:])
    if argv[:1] == ["eval"]:  # an HTTP client too
        from rationalyst.clients import eval_cmd

        return eval_cmd.main(argv[1:])
    parser = argparse.ArgumentParser(prog="rationalyst", description=(
        "Inference-time process supervision with RATIONALYST."))
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the HTTP server")
    _settings_flags(serve)
    serve.set_defaults(func=cmd_serve)
    prepare = sub.add_parser("prepare", help="build the packaged default model, check models")
    _settings_flags(prepare)
    prepare.set_defaults(func=cmd_prepare)
    from rationalyst.clients import solve_cmd  # listed in --help; run by the branch above

    solve_cmd.add_arguments(sub.add_parser("solve", help=solve_cmd.HELP))
    from rationalyst.clients import eval_cmd

    eval_cmd.add_arguments(sub.add_parser("eval", help=eval_cmd.HELP,
                                          description=eval_cmd.DESCRIPTION))
    from rationalyst.clients import prompts_cmd

    prompts_cmd.add_arguments(sub.add_parser("prompts", help=prompts_cmd.HELP,
                                             description=prompts_cmd.__doc__))
    from rationalyst.making import cli as making_cli  # argparse only; work imports lazily

    making_cli.add_parsers(sub)
    from rationalyst.making import rank_cli

    rank_cli.add_parser(sub)
    from rationalyst.making import import_checkpoint  # pydantic + argparse; torch lazily

    import_checkpoint.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
