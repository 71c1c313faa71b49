"""Podman for tests/test_container.py: this machine's way of building and running our
images (../shared/ENVIRONMENT.md, "Building and running container images here"), a
container and a compose project as context managers, bounded waits."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from harness import REPO

# crun refuses this machine's hybrid cgroups, and raising rlimits is not permitted.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
ULIMITS = ["--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:4096"]
BASE = "localhost/rationalyst-base:bookworm"  # docker/local-base.sh
CPU_IMAGE = "rationalyst-server:cpu"  # what `make image` builds, and compose runs
READY_S = 300  # stated bound: /health answers 200 within this after `run`/`up`
GRACE_S = 120  # RATIONALYST_SHUTDOWN_GRACE_S given to the container (a shared machine
# can take a minute for a step of the default model)
SEEDED = {"question": "What is 12 + 30?", "max_steps": 2, "num_candidates": 2, "seed": 7}
COMPOSE = REPO / "docker" / "compose.yaml"


def sh(
    cmd: list[str], *, timeout: float = 600, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and out.returncode:
        raise AssertionError(
            f"{' '.join(cmd)} -> {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out


def clean_checkout(dest: Path) -> Path:
    """The files a clone of this working tree has (tracked, or new and not ignored):
    no venv, no build output, nothing a .dockerignore would have to catch."""
    names = sh(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO
    ).stdout.split("\0")
    for name in filter(None, names):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def podman_build_flags(tmp: Path) -> list[str]:
    """This machine's facts, for the build only (the Dockerfiles stay clean): pip
    reaches the index through the host network and a proxy whose CA is in the host's
    bundle; the CPU torch wheel is in /opt/wheels; PyTorch's index is unreachable."""
    conf = tmp / "pip.conf"
    lines = ["[global]", "cert = /etc/ssl/certs/ca-certificates.crt"]
    flags = [
        "--network",
        "host",
        *ULIMITS,
        "--build-arg",
        "TORCH_CPU_INDEX=https://pypi.org/simple",
        "-v",
        "/etc/ssl/certs:/etc/ssl/certs:ro",
        "-v",
        f"{conf}:/etc/pip.conf:ro",
    ]
    if Path("/opt/wheels").is_dir():
        lines.append("find-links = /opt/wheels")
        flags += ["-v", "/opt/wheels:/opt/wheels:ro"]
    conf.write_text("\n".join(lines) + "\n")
    return flags


def running(name: str) -> bool:
    out = sh([*PODMAN, "inspect", "--format", "{{.State.Running}}", name], check=False)
    return out.stdout.strip() == "true"


def logs(name: str, tail: int = 60) -> str:
    out = sh([*PODMAN, "logs", "--tail", str(tail), name], check=False)
    return f"\n--- podman logs {name}:\n{out.stdout}{out.stderr}"


def wait_ready(c: Container | None = None, *, url: str = "", name: str = "") -> float:
    """Seconds until GET /health answers 200 (bounded by READY_S); a container that
    exits first fails at once, with its log."""
    url, name = (c.url, c.name) if c else (url, name)
    t0 = time.monotonic()
    while time.monotonic() - t0 < READY_S:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        if not running(name):
            raise AssertionError(f"{name} exited before it was ready{logs(name)}")
        time.sleep(0.5)  # poll interval of a bounded wait on /health
    raise AssertionError(f"{url}/health not 200 within {READY_S} s{logs(name)}")


def solve(url: str, **change) -> dict:
    r = httpx.post(url + "/solve", json={**SEEDED, **change}, timeout=600)
    assert r.status_code == 200, r.text
    return r.json()


class Container:
    """`podman run -d` on the host network, listening on 127.0.0.1:port."""

    def __init__(
        self, name: str, image: str, port: int, *, env: dict | None = None, volumes: list[str] = ()
    ):
        self.name, self.url = name, f"http://127.0.0.1:{port}"
        env = {"RATIONALYST_HOST": "127.0.0.1", "RATIONALYST_PORT": str(port), **(env or {})}
        self.cmd = [
            *PODMAN,
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            *ULIMITS,
            *(f"--env={k}={v}" for k, v in env.items()),
            *(f"--volume={v}" for v in volumes),
            image,
        ]

    def logs(self) -> str:
        return logs(self.name)

    def __enter__(self) -> Container:
        sh([*PODMAN, "rm", "-f", "-v", "-t", "0", self.name], check=False)
        sh(self.cmd)
        return self

    def __exit__(self, *exc) -> None:
        sh([*PODMAN, "rm", "-f", "-v", "-t", "0", self.name], check=False)


def _compose_exe() -> list[str]:
    beside = Path(sys.executable).parent / "podman-compose"  # the test extra's
    exe = str(beside) if beside.is_file() else shutil.which("podman-compose")
    assert exe, "podman-compose is not installed (the test extra has it)"
    return [exe]


def _localised(svc: dict, port: int) -> dict:
    """A service on the host network at 127.0.0.1:port (no other network works here)."""
    out: dict = {
        "network_mode": "host",
        "ulimits": {"nofile": {"soft": 1024, "hard": 4096}, "nproc": {"soft": 1024, "hard": 4096}},
    }
    cmd = svc.get("command")
    if cmd and "--port" in cmd:  # a vLLM server: its flags say where it listens
        out["command"] = [
            port if a == "--port" else "127.0.0.1" if a == "--host" else v
            for a, v in zip(["", *cmd], cmd)
        ]
        out["command"] = [str(v) for v in out["command"]]
    else:
        out["environment"] = {"RATIONALYST_HOST": "127.0.0.1", "RATIONALYST_PORT": str(port)}
    return out


@contextlib.contextmanager
def compose(tmp: Path, profile: str, ports: dict[str, int]):
    """The compose file's `profile` under podman-compose, each service of `ports` moved
    to 127.0.0.1 by an override file, and any `*_URL` pointing at those servers.
    Yields `up(*services)`; `down -v` at the end."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    override = {name: _localised(services[name], port) for name, port in ports.items()}
    for name, svc in override.items():
        for key, value in (services[name].get("environment") or {}).items():
            if key.endswith("_URL"):
                target = value.split("//")[1].split(":")[0]
                svc["environment"][key] = f"http://127.0.0.1:{ports[target]}"
    (tmp / "override.yaml").write_text(yaml.safe_dump({"services": override}))
    base = [
        *_compose_exe(),
        "--podman-args",
        " ".join(PODMAN[1:]),
        "-p",
        "rationalyst-test",
        "-f",
        str(COMPOSE),
        "-f",
        str(tmp / "override.yaml"),
        "--profile",
        profile,
    ]

    def up(*names: str) -> None:
        sh([*base, "up", "-d", "--no-build", "--no-deps", *names], timeout=300)

    try:
        yield up
    finally:
        sh([*base, "down", "-v", "-t", "5"], check=False, timeout=300)


def compose_container(service: str) -> str:
    out = sh(
        [
            *PODMAN,
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            "label=com.docker.compose.project=rationalyst-test",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ]
    ).stdout.split()
    assert len(out) == 1, out
    return out[0]
