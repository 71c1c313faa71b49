"""A vLLM general plugin (entry point `vllm.general_plugins` in pyproject.toml): every
vLLM process started where this package is installed loads it, `vllm serve` too.

vLLM allocates a request's prompt log-probs with `torch.empty` and never writes the
positions it read from the prefix cache. In-process that garbage is harmless (only
positions past the cache hit are read), but `vllm serve` must encode it as JSON, and
one NaN or inf there turns the whole answer into a 400 ("Out of range float values
are not JSON compliant"): remote cached scoring then has to try again
(supervisor/remote_engine.py). Zeroed buffers remove those failures, for one memset
per prompt-log-prob request. VLLM_PLUGINS selects plugins, as for any other."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def zero_prompt_logprobs() -> None:
    try:
        from vllm.v1.outputs import LogprobsTensors

        original = LogprobsTensors.empty_cpu
    except (ImportError, AttributeError) as exc:  # another vLLM: never block its start
        log.warning("rationalyst: prompt log-probs not zeroed (%s)", exc)
        return
    if getattr(original, "zeroed", False):
        return

    def empty_cpu(num_positions: int, num_tokens_per_position: int):
        tensors = original(num_positions, num_tokens_per_position)
        for t in (tensors.logprob_token_ids, tensors.logprobs, tensors.selected_token_ranks):
            t.zero_()
        return tensors

    empty_cpu.zeroed = True
    LogprobsTensors.empty_cpu = staticmethod(empty_cpu)
