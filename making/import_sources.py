"""Where `import-checkpoint` finds SRC and BASE (a folder, the packaged default, or a
hub snapshot of just the files it needs) and what it reads from them before writing:
configs, tensor headers, and BASE's head (one file of BASE's weights, no more)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import tensor_files as tf
from .documents import InputError

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
SRC_FILES = ["*.json", "*.safetensors", "*.jinja", "tokenizer.model", "*.txt"]
META_FILES = ["*.json", "*.jinja", "tokenizer.model", "*.txt"]  # BASE: all but weights


@dataclass
class Source:
    spec: str
    path: Path
    revision: str | None  # the hub commit; None for a local folder

    def describe(self) -> dict:
        return {"spec": self.spec, "path": str(self.path), "revision": self.revision}


def locate(spec: str, role: str, patterns: list[str]) -> Source:
    """A local folder, the packaged default, or a hub snapshot of `patterns`."""
    from rationalyst.supervisor.models import DEFAULT_MODEL, build_default, default_cache_dir

    if spec == DEFAULT_MODEL:
        return Source(spec, build_default(default_cache_dir()), None)
    path = Path(spec).expanduser()
    if path.is_dir():
        return Source(spec, path.resolve(), None)
    if path.exists():
        raise InputError(f"{role} {spec} is a file: give the checkpoint's folder")
    if spec.startswith((".", "/", "~")) or not HUB_ID.fullmatch(spec):
        raise InputError(f"{role} {spec}: no such folder (nor a hub id like owner/name)")
    return _download(spec, role, patterns)


def _download(repo: str, role: str, patterns: list[str], revision: str | None = None):
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo, revision=revision, allow_patterns=patterns))
    except Exception as exc:  # network, auth, missing repo: all end the same way
        raise InputError(
            f"cannot download {role} {repo!r} from the hub ({exc}); use a "
            "local folder, or set HF_TOKEN, or HF_HUB_OFFLINE=1 with a "
            "populated cache"
        ) from None
    return Source(repo, path, path.name)


def read_config(src: Source, role: str) -> dict:
    path = src.path / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            f"{role} {src.path} has no config.json: give a Hugging Face checkpoint folder"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: not a model config")
    return config


def embed_name(tensors: dict, role: str, where: Path) -> str:
    names = [n for n in tensors if n.endswith("embed_tokens.weight")]
    if len(names) != 1:
        raise InputError(
            f"{role} {where} has no single embed_tokens.weight: not a "
            "Llama-style decoder checkpoint"
        )
    return names[0]


def causal_arch(config: dict) -> str:
    archs = config.get("architectures") or []
    for arch in archs:
        if arch.endswith("ForCausalLM"):
            return arch
        if arch.endswith("Model") and not arch.endswith("PreTrainedModel"):
            return arch[: -len("Model")] + "ForCausalLM"  # LlamaModel -> LlamaForCausalLM
    raise InputError(
        f"SRC's config names the architecture {archs or 'none'}: expected a "
        "decoder such as LlamaModel or LlamaForCausalLM"
    )


def src_weights(src: Source) -> dict[str, tf.TensorInfo]:
    files = tf.weight_files(src.path)
    if not files:
        bins = sorted(p.name for p in src.path.glob("*.bin"))
        hint = f" (it has {bins[0]}: convert .bin weights to safetensors first)" if bins else ""
        raise InputError(f"SRC {src.path} has no weights: no *.safetensors{hint}")
    return tf.tensors_of(files)


def base_head(base: Source, config: dict) -> tuple[str, tf.TensorInfo, str]:
    """BASE's head tensor: (name, where, how it is used). Hub: fetches one file only."""
    index = base.path / tf.INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{index} is not a weight index (no weight_map)") from None
        names = list(weight_map)
        files = {n: base.path / f for n, f in weight_map.items()}
    else:
        files = {}
        for path in tf.weight_files(base.path) or (
            [base.path / "model.safetensors"] if base.revision else []
        ):
            if base.revision and not path.exists():
                _download(base.spec, "BASE", [path.name], base.revision)
            files.update({n: path for n in tf.read_header(path)})
        names = list(files)
    if "lm_head.weight" in names:
        name, how = "lm_head.weight", "BASE lm_head.weight"
    else:
        embeds = [n for n in names if n.endswith("embed_tokens.weight")]
        if not embeds or config.get("tie_word_embeddings") is False:
            raise InputError(
                f"BASE {base.path} has no LM head either (no lm_head.weight, "
                "embeddings not tied): give the *ForCausalLM model SRC was "
                "fine-tuned from"
            )
        name, how = embeds[0], f"BASE {embeds[0]} (BASE ties its head to its embeddings)"
    path = files[name]
    if base.revision and not path.exists():
        _download(base.spec, "BASE", [path.name], base.revision)
    if not path.is_file():
        raise InputError(f"BASE {base.path} has no {path.name}, which holds its {name}")
    return name, tf.tensors_of([path])[name], how
