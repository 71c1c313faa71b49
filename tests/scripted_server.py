"""A real server process on a scripted engine (no model code), started the way
`rationalyst serve` starts (cli.serve_cmd.run_server), for tests that need signals or
their own process:

    python tests/scripted_server.py PORT [--sample-s S] [--generate-s S] [--score-s S]
                                         [--settings JSON]

Its steps never contain an answer, so a solve runs `max_steps` steps of the given
latency. On exit it prints one JSON line on stdout: the engine's cancelled and still
in-flight request ids, and the aborted-solves counter."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rationalyst.cli.serve_cmd import run_server  # noqa: E402
from rationalyst.server.app import create_app  # noqa: E402
from rationalyst.server.settings import ServerSettings as Settings  # noqa: E402
from rationalyst.supervisor.backends import ModelInfo  # noqa: E402
from rationalyst.supervisor.engine import Engines  # noqa: E402
from rationalyst.supervisor.scripted_engine import ScriptedEngine  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--sample-s", type=float, default=0.0)
    p.add_argument("--generate-s", type=float, default=0.0)
    p.add_argument("--score-s", type=float, default=0.0)
    p.add_argument("--settings", default="{}", help="Settings fields as a JSON object")
    args = p.parse_args()
    settings = Settings(host="127.0.0.1", port=args.port, **json.loads(args.settings))
    engine = ScriptedEngine(
        sample_s=args.sample_s, generate_s=args.generate_s, score_s=args.score_s
    )
    app = create_app(
        settings,
        Engines(engine, engine, engine),
        ModelInfo("scripted", "scripted", "scripted", True),
    )
    rc = run_server(app, settings)
    print(
        json.dumps(
            {
                "cancelled": [rid for kind, rid in engine.events if kind == "cancelled"],
                "in_flight": sorted(engine.in_flight),
                "aborted": app.state.metrics.aborted._value.get(),
            }
        ),
        flush=True,
    )
    return rc


if __name__ == "__main__":
    sys.exit(main())
