"""A private `rationalyst serve` for one client run (`rationalyst eval --in-process`).

The client still speaks only HTTP: the server runs as a child process on a free
127.0.0.1 port, configured by RATIONALYST_* like `rationalyst serve`, so a local
run takes exactly the path a remote one does. It is stopped (process group, so
vLLM's engine process goes too) when the run ends, however it ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


class ServerStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE = [sys.executable, "-m", "rationalyst.clients.cli", "serve", "--host", "127.0.0.1", "--port"]


class LocalServer:
    """`command` + [port] starts the server; by default `rationalyst serve`."""

    def __init__(self, log_path: Path, start_timeout_s: float = 1800.0,
                 command: list[str] = SERVE):
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.command, str(self.port)], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=Path(__file__).resolve().parents[1])
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self.url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        with httpx.Client(timeout=5) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerStartError(
                        f"the server exited with status {self.proc.returncode} while "
                        f"starting:\n{self._log_tail()}")
                try:
                    if c.get(self.url + "/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet: models are still loading
                time.sleep(0.5)
        raise ServerStartError(f"the server was not ready after {self.start_timeout_s:.0f} s; "
                               f"see {self.log_path}")

    def _log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        # SIGTERM lets it drain and stop vLLM; then SIGKILL whatever is left of the
        # group (an engine process that hung).
        _signal_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(self.proc, signal.SIGKILL)
        self.proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
