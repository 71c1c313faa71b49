"""vLLM's engine-core processes leave SIGINT and SIGTERM to the server.

vLLM's EngineCore process shuts itself down on SIGINT or SIGTERM (aborting whatever
runs). It shares the server's process group, so systemd's `KillMode=control-group`,
Ctrl+C in a terminal or `kill -TERM -PGID` reach it too, and in-flight solves then
failed (`EngineDeadError`) or stalled while the server still meant to drain them.
So, for the engines this package starts:

- in the engine process, vLLM's own handler is put behind a gate: a signal is ignored
  (one log line) until the server releases the engine, or the server is gone;
- the server releases an engine (SIGUSR1) right before it shuts it down, once its
  drain is over, and vLLM's shutdown (a SIGTERM from the server) then runs as usual.

`owned()` wraps `AsyncLLM.from_engine_args`: while it runs, EngineCoreProc's process
target is ours, which installs the gate in the child (fork or spawn alike: it is a
module-level function, pickled by name) and then runs vLLM's."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import types

RELEASE = signal.SIGUSR1
_GATED = (signal.SIGINT, signal.SIGTERM)
_lock = threading.Lock()
_original_target = None  # vLLM's EngineCoreProc.run_engine_core while owned() runs
_engine_pids: set[int] = set()  # every engine process started here, not yet released


@contextlib.contextmanager
def owned():
    """Start vLLM engines inside this block; yields the list their pids are added to."""
    global _original_target
    from vllm.v1.engine.core import EngineCoreProc

    pids: list[int] = []
    with _lock:  # one start at a time: the patch is process-wide
        before = {p.pid for p in multiprocessing.active_children()}
        _original_target = EngineCoreProc.run_engine_core
        EngineCoreProc.run_engine_core = staticmethod(run_engine_core)
        try:
            yield pids
        finally:
            EngineCoreProc.run_engine_core = staticmethod(_original_target)
            _original_target = None
            pids += [
                p.pid
                for p in multiprocessing.active_children()
                if p.pid not in before and p.name.startswith("EngineCore")
            ]
            _engine_pids.update(pids)


def release(pids) -> None:
    """Let these engine processes act on the next SIGTERM/SIGINT (vLLM's shutdown)."""
    alive = {p.pid for p in multiprocessing.active_children()}  # never a reused pid
    for pid in list(pids):
        _engine_pids.discard(pid)
        if pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, RELEASE)


def release_all() -> None:
    """Release every engine still held, e.g. when a forced exit skipped their close:
    vLLM's exit handlers then stop them with SIGTERM instead of waiting, then killing."""
    release(_engine_pids)


# ---- in the engine process -------------------------------------------------------


class _Gate:
    released = False
    parent = 0


def run_engine_core(*args, **kwargs):
    """EngineCoreProc's process target: vLLM's, behind the signal gate."""
    from vllm.v1.engine import core

    _Gate.parent = os.getppid()
    signal.signal(RELEASE, _release)  # first: an early SIGUSR1 must not kill the engine
    # vLLM installs its handler through core.signal.signal: hand it a gated one.
    core.signal = _GatedSignalModule()
    original = _original_target or core.EngineCoreProc.run_engine_core  # fork or spawn
    return original(*args, **kwargs)


def _release(signum, frame) -> None:
    _Gate.released = True


def _gated(handler):
    def gate(signum, frame):
        # An orphan (the server died without a drain) stops as vLLM would.
        if _Gate.released or os.getppid() != _Gate.parent:
            return handler(signum, frame)
        from vllm.v1.engine.core import logger  # vLLM's: its handlers print our line

        logger.info(
            "[shutdown] EngineCore: %s ignored: the server's drain decides when this engine stops",
            signal.Signals(signum).name,
        )

    return gate


class _GatedSignalModule(types.SimpleNamespace):
    """The `signal` module as vLLM's engine core sees it: handlers it installs for
    SIGINT/SIGTERM sit behind the gate; everything else is the real module."""

    def __getattr__(self, name):
        return getattr(signal, name)

    @staticmethod
    def signal(signum, handler):
        if signum in _GATED and callable(handler):
            handler = _gated(handler)
        return signal.signal(signum, handler)
