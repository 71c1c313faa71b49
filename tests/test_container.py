"""Our images built and run with podman (marker `container`): the CPU image from a
clean checkout, the compose `cpu` and `split-cpu` profiles, the GPU Dockerfile on the
CPU image as its base. Needs podman, runc and debootstrap (.ci/run installs them);
under CI=true a runtime that cannot run is a failure, elsewhere a skip.

Docker Hub is not reachable from our machines, so the images build on a local
Debian base (docker/local-base.sh, cached between runs) with this machine's network
facts passed to the build only (host network, the host's CA certificates, the CPU
torch wheel in /opt/wheels). Containers share the host network and listen on
127.0.0.1 only. Each image is built once per session and each container serves
several checks; waiting is bounded polling of a real condition."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import httpx
import pytest

from containers import (
    BASE,
    CPU_IMAGE,
    GRACE_S,
    PODMAN,
    READY_S,
    ULIMITS,
    Container,
    clean_checkout,
    compose,
    compose_container,
    podman_build_flags,
    sh,
    solve,
    wait_ready,
)
from harness import REPO, asse_events, free_port

pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]

GPU_IMAGE = "localhost/rationalyst-server:gpu-on-cpu"
MODEL = "/opt/rationalyst/cache/SmolLM2-135M-Instruct"  # built into the CPU image


@pytest.fixture(scope="module")
def runtime():
    """podman that can run here; under CI its absence fails the run."""
    why = None
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            why = f"{tool} is not installed"
            break
    else:
        info = subprocess.run([*PODMAN, "info"], capture_output=True, text=True, timeout=120)
        if info.returncode:
            why = f"podman cannot run here: {info.stderr.strip()[-500:]}"
    if why:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI: {why} (.ci/run installs podman, runc and debootstrap)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def cpu_image(runtime, tmp_path_factory):
    """`make image` on a clean checkout (tracked and unignored files only)."""
    t0 = time.monotonic()
    sh([str(REPO / "docker/local-base.sh"), BASE], timeout=900)
    t_base = time.monotonic() - t0
    ctx = clean_checkout(tmp_path_factory.mktemp("checkout"))
    t0 = time.monotonic()
    sh(
        [
            "make",
            "-C",
            str(ctx),
            "image",
            f"IMAGE={CPU_IMAGE}",
            f"IMAGE_BASE={BASE}",
            "CONTAINER=" + " ".join(PODMAN),
            "IMAGE_FLAGS=" + " ".join(podman_build_flags(tmp_path_factory.mktemp("pip"))),
        ],
        timeout=1800,
    )
    print(f"\nlocal base {t_base:.0f} s, CPU image build {time.monotonic() - t0:.0f} s")
    return ctx


@pytest.fixture(scope="module")
def cpu(cpu_image, default_model, tmp_path_factory):
    """The CPU image serving a model from a read-only volume, on a port set by the
    environment (the image's defaults must give way to it)."""
    # A copy the container's uid 10001 may read (our cache is private to its owner).
    model = shutil.copytree(default_model, tmp_path_factory.mktemp("volume") / "smollm2")
    sh(["chmod", "-R", "a+rX", str(model)])
    port = free_port()
    with Container(
        "rationalyst-test-cpu",
        CPU_IMAGE,
        port,
        env={
            "RATIONALYST_AGENT_MODEL": "/models/smollm2",
            "RATIONALYST_RATIONALE_MODEL": "/models/smollm2",
            "RATIONALYST_SHUTDOWN_GRACE_S": str(GRACE_S),
        },
        volumes=[f"{model}:/models/smollm2:ro"],
    ) as c:
        c.ready_s = wait_ready(c)
        yield c


@pytest.fixture(scope="module")
def cpu_solve(cpu):
    return solve(cpu.url)


def test_cpu_image_is_ready_within_the_stated_time(cpu):
    print(f"\nCPU container: /health 200 after {cpu.ready_s:.0f} s")
    assert cpu.ready_s < READY_S


def test_cpu_image_solves_a_seeded_question(cpu_solve):
    assert cpu_solve["steps"] and all(s["text"] for s in cpu_solve["steps"])
    assert cpu_solve["usage"]["scored_tokens"] > 0


def test_cpu_image_runs_as_uid_10001(cpu):
    status = sh([*PODMAN, "exec", cpu.name, "cat", "/proc/1/status"]).stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {"10001"}, uids


def test_cpu_image_healthcheck_passes(cpu):
    out = sh([*PODMAN, "healthcheck", "run", cpu.name], check=False)
    assert out.returncode == 0, out.stdout + out.stderr + cpu.logs()


def test_cpu_image_reads_its_model_from_a_read_only_volume(cpu):
    health = httpx.get(cpu.url + "/health", timeout=10).json()
    assert health["models"]["agent"] == "smollm2", health  # the volume's folder
    touch = sh([*PODMAN, "exec", cpu.name, "touch", "/models/smollm2/x"], check=False)
    assert touch.returncode != 0 and "Read-only" in touch.stderr


async def test_sigterm_drains_a_stream_and_exits_0(cpu):
    """Last user of the `cpu` container: it ends it."""
    body = {
        "question": "What is 12 + 30?",
        "max_steps": 2,
        "num_candidates": 2,
        "seed": 7,
        "stream": True,
    }
    async with httpx.AsyncClient(base_url=cpu.url, timeout=120) as client:
        async with client.stream("POST", "/solve", json=body) as r:
            events = asse_events(r)
            assert (await anext(events))[0] == "step"
            sh([*PODMAN, "kill", "--signal", "TERM", cpu.name])
            t_term = time.monotonic()
            rest = [e async for e, _, _ in events]
    assert rest and rest[-1] == "done", rest
    code = sh([*PODMAN, "wait", cpu.name], timeout=GRACE_S + 30).stdout.strip()
    took = time.monotonic() - t_term
    assert code == "0", cpu.logs()
    assert took < GRACE_S, took


# -- compose ------------------------------------------------------------------------------
def test_compose_cpu_profile_serves(cpu_image, tmp_path):
    port = free_port()
    with compose(tmp_path, "cpu", {"supervisor-cpu": port}) as up:
        up("supervisor-cpu")
        ready = wait_ready(url=f"http://127.0.0.1:{port}", name=compose_container("supervisor-cpu"))
        print(f"\ncompose cpu: /health 200 after {ready:.0f} s")
        out = solve(f"http://127.0.0.1:{port}", max_steps=1)  # serves: one step will do
        assert out["steps"]
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
        assert health["rationale_is_stand_in"] and health["models"]["agent"].endswith(
            "SmolLM2-135M-Instruct"
        ), health


def test_split_cpu_matches_in_process(cpu_image, cpu_solve, tmp_path):
    """Two `vllm serve` containers of our image (its plugin zeroes prompt log-prob
    buffers) and the supervisor container: the same steps as in-process, scoring from
    the prefix cache, and as many scored tokens as in-process (a retry, or coarser
    KV blocks, would add some)."""
    ports = {
        "vllm-agent-cpu": free_port(),
        "vllm-rationale-cpu": free_port(),
        "supervisor-split-cpu": free_port(),
    }
    with compose(tmp_path, "split-cpu", ports) as up:
        up("vllm-agent-cpu", "vllm-rationale-cpu")
        for svc in ("vllm-agent-cpu", "vllm-rationale-cpu"):
            wait_ready(url=f"http://127.0.0.1:{ports[svc]}", name=compose_container(svc))
        up("supervisor-split-cpu")
        url = f"http://127.0.0.1:{ports['supervisor-split-cpu']}"
        supervisor = compose_container("supervisor-split-cpu")
        wait_ready(url=url, name=supervisor)
        health = httpx.get(url + "/health", timeout=10).json()
        assert health["scoring"].startswith("remote, prefix cache"), health
        out = solve(url)
        logs = sh([*PODMAN, "logs", supervisor]).stderr
    assert [s["text"] for s in out["steps"]] == [s["text"] for s in cpu_solve["steps"]]
    print(
        f"\nscored tokens: split {out['usage']['scored_tokens']}, "
        f"in-process {cpu_solve['usage']['scored_tokens']}"
    )
    assert out["usage"]["scored_tokens"] == cpu_solve["usage"]["scored_tokens"]
    assert "--block-size" not in logs, logs[-2000:]  # no start-up warning


# -- the GPU Dockerfile -------------------------------------------------------------------
def test_gpu_dockerfile_builds_on_the_cpu_image(cpu_image, tmp_path_factory):
    """Every step but its base: vLLM's CUDA image is replaced by our CPU image, which
    has vLLM in its system Python too; the import check runs inside."""
    t0 = time.monotonic()
    sh(
        [
            *PODMAN,
            "build",
            "--format",
            "docker",
            "-f",
            "docker/Dockerfile.gpu",
            "-t",
            GPU_IMAGE,
            "--build-arg",
            f"BASE={CPU_IMAGE}",
            *podman_build_flags(tmp_path_factory.mktemp("pip")),
            ".",
        ],
        cwd=cpu_image,
        timeout=1800,
    )
    print(f"\nGPU Dockerfile on the CPU image: {time.monotonic() - t0:.0f} s")
    code = (
        "import importlib.metadata as m, rationalyst.server.app, rationalyst.making; "
        "print(m.version('rationalyst-server'), [e.name for e in "
        "m.entry_points(group='vllm.general_plugins')])"
    )
    out = sh(
        [
            *PODMAN,
            "run",
            "--rm",
            *ULIMITS,
            "--network",
            "none",
            "--entrypoint",
            "python3",
            GPU_IMAGE,
            "-P",
            "-c",
            code,
        ]
    ).stdout
    assert "rationalyst_zero_prompt_logprobs" in out, out
    user = sh([*PODMAN, "image", "inspect", "--format", "{{.Config.User}}", GPU_IMAGE]).stdout
    assert user.strip() == "10001:10001"
