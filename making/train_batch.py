"""Batches and loss of `rationalyst train`, built so that the model computes logits
only where a label is.

A pair is a long prompt and a short rationale (a median of 20 tokens). The usual
right-padded batch makes the model compute vocabulary-wide logits at every prompt
token, in fp32, and keep them for the backward pass: with the activations of every
layer, 24 GB for a batch of 8 pairs on the 135M model (docs/making.md). Here batches
are left-padded (position ids keep each pair's positions as if unpadded), so every
rationale ends at the last position, and `logits_to_keep` asks the model for the last
few positions only: those of the longest rationale in the batch.
"""

from __future__ import annotations

IGNORE = -100


class RationaleCollator:
    """Left-pads a batch; adds position_ids and logits_to_keep (the span from the
    token before the earliest label to the end)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids, mask, labels, pos = [], [], [], []
        first = width
        for r in rows:
            n = len(r["input_ids"])
            pad = width - n
            ids.append([self.pad_id] * pad + list(r["input_ids"]))
            mask.append([0] * pad + [1] * n)
            labels.append([IGNORE] * pad + list(r["labels"]))
            pos.append([0] * pad + list(range(n)))
            first = min(first, next((i for i, x in enumerate(labels[-1]) if x != IGNORE), width))
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "position_ids": torch.tensor(pos),
            "labels": torch.tensor(labels),
            # Logits at positions first-1 .. width-1 (the last predicts nothing).
            "logits_to_keep": max(2, min(width, width - first + 1)),
        }


def rationale_loss(outputs, labels, num_items_in_batch=None):
    """Mean cross-entropy over the labelled tokens, from the kept logits. With
    gradient accumulation Trainer gives the count over all accumulated batches."""
    import torch.nn.functional as F

    logits = outputs.logits[:, :-1].float()
    target = labels[:, labels.shape[1] - logits.shape[1] :].to(logits.device)
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        target.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    count = num_items_in_batch if num_items_in_batch is not None else (target != IGNORE).sum()
    return total / max(count, 1) if isinstance(count, int) else total / count.clamp(min=1)
