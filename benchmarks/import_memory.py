"""Peak memory of `rationalyst import-checkpoint` against largest source shard + head.

Builds a random checkpoint in the published RATIONALYST's layout (a bare LlamaModel,
float32, one extra vocabulary row, no LM head, sharded with an index) and a BASE with
an untied head, then imports it in a fresh process and reads that process's peak RSS
(VmHWM: it counts the mapped source pages too). A second process that only imports
the same libraries gives the baseline. Reported: peak, baseline, peak - baseline, and
largest shard + head (the bound the import aims at); then the same with the check
(`--check` loads OUT, so it needs about OUT's size on top).

    .venv/bin/python benchmarks/import_memory.py [--layers 12] [--shards 4] [--no-check-run]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HIDDEN, INTER, VOCAB = 1024, 2816, 49152  # the default model's tokenizer: 49,152 ids

CHILD = """
import sys
from rationalyst.making import import_checkpoint
if sys.argv[1] == "baseline":
    import torch, safetensors, tqdm, transformers  # what the import itself loads
    from transformers import AutoTokenizer
elif import_checkpoint.main(sys.argv[1:]):
    sys.exit(1)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent
print("PEAK_KB", [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""


def build(root: Path, layers: int, shards: int, tokenizer_dir: Path) -> tuple[Path, Path]:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    names = {"embed_tokens.weight": (VOCAB + 1, HIDDEN), "norm.weight": (HIDDEN,)}
    for i in range(layers):
        p = f"layers.{i}."
        names.update(
            {
                p + "input_layernorm.weight": (HIDDEN,),
                p + "post_attention_layernorm.weight": (HIDDEN,),
                **{p + f"self_attn.{k}_proj.weight": (HIDDEN, HIDDEN) for k in "qkvo"},
                p + "mlp.gate_proj.weight": (INTER, HIDDEN),
                p + "mlp.up_proj.weight": (INTER, HIDDEN),
                p + "mlp.down_proj.weight": (HIDDEN, INTER),
            }
        )
    src, base = root / "src", root / "base"
    src.mkdir()
    base.mkdir()
    keys, weight_map = list(names), {}
    per = -(-len(keys) // shards)
    for s in range(shards):  # one shard in memory at a time
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: torch.randn(names[k]) * 0.02 for k in keys[s * per : (s + 1) * per]}
        save_file(part, src / file, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, file))
        del part
    (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    config = {
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": layers,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "head_dim": 64,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    (src / "config.json").write_text(
        json.dumps(
            {
                **config,
                "architectures": ["LlamaModel"],
                "vocab_size": VOCAB + 1,
                "torch_dtype": "float32",
                "tie_word_embeddings": False,
            }
        )
    )
    save_file(
        {
            "lm_head.weight": torch.randn(VOCAB, HIDDEN) * 0.02,
            "model.embed_tokens.weight": torch.randn(VOCAB, HIDDEN) * 0.02,
        },
        base / "model.safetensors",
        metadata={"format": "pt"},
    )
    (base / "config.json").write_text(
        json.dumps(
            {
                **config,
                "architectures": ["LlamaForCausalLM"],
                "vocab_size": VOCAB,
                "dtype": "bfloat16",
                "tie_word_embeddings": False,
            }
        )
    )
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(tokenizer_dir / name, base)
    return src, base


def peak_kb(*args: str) -> int:
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"child failed:\n{proc.stderr[-3000:]}")
    return int(proc.stdout.rsplit("PEAK_KB", 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--no-check-run", action="store_true", help="skip the run with --check")
    args = ap.parse_args()
    from rationalyst.supervisor.models import build_default, default_cache_dir

    root = Path(tempfile.mkdtemp(prefix="import-mem-"))
    try:
        src, base = build(root, args.layers, args.shards, build_default(default_cache_dir()))
        shard = max(p.stat().st_size for p in src.glob("*.safetensors"))
        head = VOCAB * HIDDEN * (4 if args.dtype == "float32" else 2)
        total = sum(p.stat().st_size for p in src.glob("*.safetensors"))
        baseline = peak_kb("baseline") * 1024
        rows = []
        for check in [False] if args.no_check_run else [False, True]:
            out = root / f"out-{check}"
            peak = peak_kb(
                str(src),
                "--base",
                str(base),
                "--out",
                str(out),
                "--dtype",
                args.dtype,
                "--no-progress",
                "--check" if check else "--no-check",
            )
            peak *= 1024
            rows.append(
                {
                    "check": check,
                    "peak_rss_mb": round(peak / 1e6),
                    "baseline_rss_mb": round(baseline / 1e6),
                    "peak_minus_baseline_mb": round((peak - baseline) / 1e6),
                    "largest_shard_plus_head_mb": round((shard + head) / 1e6),
                    "source_total_mb": round(total / 1e6),
                    "out_total_mb": round(
                        sum(p.stat().st_size for p in out.glob("*.safetensors")) / 1e6
                    ),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        print(
            f"\nsource: {args.layers} layers, hidden {HIDDEN}, vocabulary {VOCAB}+1, "
            f"float32, {args.shards} shards; OUT {args.dtype}"
        )
        print(
            "| run | peak RSS | baseline (imports only) | peak - baseline "
            "| largest shard + head | source total |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {'with --check' if r['check'] else '--no-check'} | {r['peak_rss_mb']} MB "
                f"| {r['baseline_rss_mb']} MB | {r['peak_minus_baseline_mb']} MB "
                f"| {r['largest_shard_plus_head_mb']} MB | {r['source_total_mb']} MB |"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
