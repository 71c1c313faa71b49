"""A server subprocess on 127.0.0.1: start it, wait for /health, stop its process group.

`rationalyst eval --in-process` runs a private `rationalyst serve` this way: the
client still speaks only HTTP, and a local run takes exactly the path a remote one
does. The tests and benchmarks start their servers (`rationalyst serve`, the
scripted server, `vllm serve`) with the same class, so there is one poll and one
kill sequence: the process group, so that vLLM's engine process goes too.
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

POLL_S = 0.1  # between /health probes of a starting server


class ServerStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE = [sys.executable, "-m", "rationalyst.cli", "serve", "--host", "127.0.0.1", "--port"]


class LocalServer:
    """`command` starts the server: each "{port}" in it becomes the port, or the port
    is appended. By default `rationalyst serve`, configured by RATIONALYST_*.

    `start()` (or `with`) returns the URL once /health answers 200; `stop()` sends
    SIGTERM, waits up to `stop_grace_s`, then SIGKILLs the group; `kill()` SIGKILLs
    at once. A stopped server can be started again on the same port."""

    def __init__(
        self,
        log_path: Path,
        start_timeout_s: float = 1800.0,
        command: list[str] = SERVE,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        capture_stdout: bool = False,
        stop_grace_s: float = 60.0,
    ):
        self.log_path = Path(log_path)
        self.start_timeout_s = start_timeout_s
        self.port = port or free_port()
        self.command = [a.replace("{port}", str(self.port)) for a in command]
        if self.command == list(command):
            self.command.append(str(self.port))
        self.env = env
        self.capture_stdout = capture_stdout  # then read it with proc.communicate()
        self.stop_grace_s = stop_grace_s
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float | None = None) -> str:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                stderr=log,
                start_new_session=True,
                stdout=subprocess.PIPE if self.capture_stdout else log,
                text=self.capture_stdout or None,
                cwd=Path(__file__).resolve().parents[1],
                env=None if self.env is None else {**os.environ, **self.env},
            )
        try:
            self._wait_ready(timeout_s or self.start_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.url

    __enter__ = start

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=5) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerStartError(
                        f"the server exited with status {self.proc.returncode} while "
                        f"starting:\n{self.log_tail()}"
                    )
                try:
                    if c.get(self.url + "/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet: models are still loading
                time.sleep(POLL_S)  # polling a starting process
        raise ServerStartError(
            f"the server was not ready after {timeout_s:.0f} s; "
            f"see {self.log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, *exc) -> None:
        if self.proc is None:
            return
        # SIGTERM lets it drain and stop vLLM; then SIGKILL whatever is left of the
        # group (an engine process that hung).
        _signal_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(self.stop_grace_s)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    __exit__ = stop

    def kill(self) -> None:
        if self.proc is None:
            return
        _signal_group(self.proc, signal.SIGKILL)
        if self.proc.returncode is not None:
            return  # already reaped
        if self.capture_stdout:
            self.proc.communicate()  # reaps it, and closes the pipe
        else:
            self.proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
