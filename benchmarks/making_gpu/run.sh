#!/bin/bash
# The device check of `rationalyst train` (issue 10): LoRA under accelerate launch,
# then --full under FSDP, on a random-weight SmolLM2-135M; figures to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
G=.gpucheck
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python -V
python -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)"
python -c "import pydantic, pydantic_settings" 2>/dev/null || python -m pip install -q --no-index --find-links $G/wheels pydantic pydantic-settings; python -c "import pydantic; print('pydantic', pydantic.VERSION)"
python -c "import vllm" 2>/dev/null && echo "vllm present" || echo "no vllm (as expected)"
# The repo's folders under the rationalyst namespace, without installing.
NS=/tmp/ns; rm -rf $NS; mkdir -p $NS/rationalyst; cp rationalyst/*.py $NS/rationalyst/
cp -r supervisor $NS/rationalyst/supervisor; cp -r making $NS/rationalyst/making; cp -r cli $NS/rationalyst/cli; ls $NS/rationalyst
export PYTHONPATH=$NS
# Not from the repo root: its rationalyst/ would shadow the namespace above.
G=$PWD/.gpucheck; cd /tmp
python -c "import sys, rationalyst.making.train; assert not [m for m in sys.modules if m.startswith('vllm')]; print('train imports without vllm')"
python $G/build_model.py $G/smol /tmp/base || exit 1
STEPS=${STEPS:-40}
set -x
accelerate launch --num_processes 1 --mixed_precision bf16 -m rationalyst.making.train $G/data \
  --base /tmp/base --out /tmp/lora --max-steps $STEPS --batch-size 16 --logging-steps 10 2>&1 2>&1 | grep -v Warning | tail -25
cp /tmp/lora/train_summary.json $OUT/lora_summary.json
accelerate launch --num_processes 1 --mixed_precision bf16 --use_fsdp --fsdp_sharding_strategy FULL_SHARD \
  --fsdp_auto_wrap_policy TRANSFORMER_BASED_WRAP --fsdp_transformer_layer_cls_to_wrap LlamaDecoderLayer \
  --fsdp_state_dict_type FULL_STATE_DICT --fsdp_use_orig_params true \
  -m rationalyst.making.train $G/data --base /tmp/base --out /tmp/full --full --max-steps $STEPS \
  --batch-size 2 --logging-steps 10 2>&1 2>&1 | grep -v Warning | tail -25
cp /tmp/full/train_summary.json $OUT/full_summary.json
set +x
for c in /tmp/lora /tmp/full; do
python - $c <<'PY'
import sys, json, torch
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained(sys.argv[1])
print(sys.argv[1], type(m).__name__, json.load(open(sys.argv[1] + "/config.json"))["architectures"], "loads")
PY
done
ls /tmp/lora /tmp/full
