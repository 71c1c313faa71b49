"""The built wheel, installed non-editable into a fresh Python 3.12 venv (the
non-vLLM dependencies for real, vLLM not at all), run from outside the repository:
how the Docker image and `pip install` users run it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_python312() -> str | None:
    """A python3.12 that runs: pyenv's shim on PATH may refuse when 3.12 is not
    its selected version, so its install directories are tried too."""
    cands = [
        shutil.which("python3.12"),
        *map(str, sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))),
        "/usr/bin/python3.12",
        "/usr/local/bin/python3.12",
    ]
    for c in filter(None, cands):
        if subprocess.run([c, "--version"], capture_output=True).returncode == 0:
            return c
    return None


PY312 = find_python312()
# `packaging`: out of make check's fast lane, as installing the dependencies (torch
# among them) takes minutes.
pytestmark = [
    pytest.mark.packaging,
    pytest.mark.skipif(PY312 is None, reason="no python3.12 on PATH"),
]

# Starts the installed app on the scripted engine, then serves / and one /solve
# over real HTTP on 127.0.0.1; prints what it saw as one JSON line.
SCRIPT = textwrap.dedent("""
    import json, socket, threading, httpx, uvicorn
    import rationalyst.server.app as app_mod
    from rationalyst.server.app import create_app
    from rationalyst.supervisor.backends import ModelInfo
    from rationalyst.supervisor.engine import Engines
    from rationalyst.supervisor.scripted_engine import ScriptedEngine
    from rationalyst.server.settings import ServerSettings as Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    eng = ScriptedEngine()
    app = create_app(Settings(), Engines(eng, eng, eng), ModelInfo("s", "s", "s", True))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/health").status_code == 200:
                break
        except httpx.TransportError:
            threading.Event().wait(0.05)  # polling a starting server
    page = httpx.get(url + "/")
    solve = httpx.post(url + "/solve", json={"question": "What is 2 + 2?", "max_steps": 2}, timeout=30)
    server.should_exit = True
    print(json.dumps({"module": app_mod.__file__, "page": page.status_code,
                      "page_type": page.headers.get("content-type"),
                      "solve": solve.status_code, "steps": len(solve.json().get("steps", []))}))
""")


def run(cmd: list, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{cmd} -> {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def venv312(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(REPO)], work)
    (wheel,) = work.glob("rationalyst_server-*.whl")
    run([PY312, "-m", "venv", str(work / "venv")], work)
    run([str(work / "venv/bin/python"), "-m", "pip", "install", "-q", str(wheel)], work)
    return work


def test_wheel_runs_outside_the_repo(venv312):
    py = venv312 / "venv/bin/python"
    help_ = run([str(venv312 / "venv/bin/rationalyst"), "--help"], venv312)
    assert "serve" in help_.stdout and "solve" in help_.stdout
    # Our namespace and PyPI's `supervisor` can live side by side now.
    run([str(py), "-m", "pip", "install", "-q", "supervisor"], venv312)
    out = run([str(py), "-c", SCRIPT], venv312, timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert str(venv312 / "venv") in seen["module"]  # the installed copy, not the repo's
    assert seen["page"] == 200 and seen["page_type"].startswith("text/html")
    assert seen["solve"] == 200 and seen["steps"] >= 1
    run([str(py), "-c", "import supervisor, rationalyst.supervisor.loop"], venv312)
    # vLLM is not installed, and nothing above needed it.
    assert subprocess.run([str(py), "-c", "import vllm"], capture_output=True).returncode != 0


def test_gpu_extra_resolves_on_python312(venv312):
    """`pip install '.[gpu]'` on 3.12 (vLLM's own image's Python): resolution only."""
    p = run(
        [
            str(venv312 / "venv/bin/python"),
            "-m",
            "pip",
            "install",
            "--dry-run",
            "-q",
            "--report",
            str(venv312 / "report.json"),
            f"{REPO}[gpu]",
        ],
        venv312,
    )
    report = json.loads((venv312 / "report.json").read_text())
    names = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in report["install"]}
    assert names.get("vllm") == "0.32.0", p.stdout
