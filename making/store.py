"""Run directories: a run.json that says what made them, append-only JSONL files that
survive a torn last line, and the refusal to mix two runs' files."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from .documents import InputError


def read_jsonl(path: Path) -> list[dict]:
    """Every complete line; a torn last line (a crash mid-write) is cut off the file,
    so that appends continue on a clean line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    rows, good = [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
        good += len(line)
    if good < len(data):
        with open(path, "r+b") as f:
            f.truncate(good)
    return rows


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


class Appender:
    """Appends whole lines and flushes them, so an interrupt loses at most one line."""

    def __init__(self, path: Path):
        self.f = open(path, "a", encoding="utf-8")

    def write(self, rows: Iterable[dict]) -> None:
        self.f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def open_run(out: Path, kind: str, config: dict, overwrite: bool, own_files: Iterable[str]) -> bool:
    """Prepare `out` for a run of `kind` with `config`; True when resuming.

    Refuses a directory that holds another run's files (another kind, other inputs
    or settings, or files we did not write) unless `overwrite`, which deletes ours."""
    marker = out / f"{kind}_run.json"
    if overwrite:
        for name in [marker.name, *own_files]:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    if marker.exists():
        old = json.loads(marker.read_text())
        if old != config:
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise InputError(
                f"{out} holds another {kind} run (different {', '.join(diff)}): "
                "use another --out, or --overwrite to start again"
            )
        return True
    clash = [n for n in own_files if (out / n).exists()]
    if clash:
        raise InputError(
            f"{out} already holds {', '.join(clash)} from another run: use "
            "another --out, or --overwrite to start again"
        )
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(config, indent=1) + "\n")
    return False
