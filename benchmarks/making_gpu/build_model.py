"""A random-weight SmolLM2-135M (its real config and tokenizer): steps/s and memory
of `rationalyst train` on the device without carrying weights."""

import sys

import torch
from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

src, out = sys.argv[1], sys.argv[2]
cfg = AutoConfig.from_pretrained(src)
torch.manual_seed(0)
LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(out)
AutoTokenizer.from_pretrained(src).save_pretrained(out)
print("built", out, sum(p.numel() for p in LlamaForCausalLM(cfg).parameters()) / 1e6, "M params")
