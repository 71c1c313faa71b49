"""Chat rendering and tokenization on our side, shared by the vLLM backends, so the
in-process and remote engines build exactly the same token ids."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from .engine import PromptTooLong


class ChatTokens:
    tokenizer: object  # a transformers tokenizer of the served model
    name: str
    max_model_len: int

    def render(self, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )

    @cached_property
    def end_of_turn_ids(self) -> tuple[int, ...]:
        """The ids that end an assistant turn: EOS and the chat templates' turn ends
        (<|im_end|>, <|eot_id|>, ...) that this vocabulary has."""
        vocab = self.tokenizer.get_vocab()
        names = (
            "<|im_end|>",
            "<|eot_id|>",
            "<|end_of_text|>",
            "<|endoftext|>",
            "<end_of_turn>",
            "<|end|>",
            "</s>",
        )
        ids = [vocab[n] for n in names if n in vocab]
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return tuple(sorted(set(ids)))

    def _ids(self, text: str) -> list[int]:
        # Rendered chat text already carries its special tokens.
        return self.tokenizer.encode(text, add_special_tokens=False)

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def _check_fits(self, n_prompt: int, max_tokens: int) -> None:
        if n_prompt + max_tokens > self.max_model_len:
            raise PromptTooLong(
                f"prompt of {n_prompt} tokens plus {max_tokens} new tokens exceeds "
                f"{self.name}'s context of {self.max_model_len} tokens: shorten the "
                "input"
            )
