"""Sentence embeddings for the making pipeline (the prefilter and the leak guard).

Two kinds of model:
- a sentence-transformers checkpoint given by path (the paper's MiniLM or mpnet);
- `wordllama`: WordLlama's 256-dimension model, which ships inside its PyPI wheel
  (MIT, 16 MB of weights). Our machines reach no model hub, so this is the one
  embedding model that every install has. It is a pooled token-embedding model,
  fast on a CPU and weaker than a transformer encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .documents import InputError

BUNDLED = "wordllama"
INSTALL = "pip install 'rationalyst-server[prefilter]'"


class Embedder:
    """Unit-length sentence embeddings: rows of `encode(texts)`, cosine = dot."""

    name: str

    def encode(self, texts: Sequence[str]):
        raise NotImplementedError

    def cosine(self, a: str, b: str) -> float:
        x, y = self.encode([a, b])
        return float(x @ y)


class WordLlamaEmbedder(Embedder):
    def __init__(self):
        import wordllama

        # The weights and tokenizer are package files; pointing the cache at the package
        # makes the loader find them without trying the hub.
        self.model = wordllama.WordLlama.load(
            cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )
        self.name = BUNDLED

    def encode(self, texts: Sequence[str]):
        return self.model.embed(list(texts), norm=True)


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, model_path: str, batch_size: int = 64):
        path = Path(model_path)
        if not path.is_dir():
            raise InputError(
                f"no such directory: {model_path} (a sentence-transformers model saved on "
                f"disk, or '{BUNDLED}' for the bundled model)"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise InputError(
                f"the embedding model needs sentence-transformers: {INSTALL}"
            ) from None
        try:
            self.model = SentenceTransformer(str(path))  # a GPU when there is one
        except Exception as exc:  # noqa: BLE001 - any load failure is the user's path
            raise InputError(
                f"{model_path}: not a sentence-transformers model ({type(exc).__name__}: {exc})"
            ) from None
        self.batch_size = batch_size
        self.name = f"sentence-transformers {path.name}"

    def encode(self, texts: Sequence[str]):
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


def load(spec: str, batch_size: int = 64) -> Embedder:
    """'wordllama' (bundled) or a sentence-transformers directory."""
    if spec == BUNDLED:
        return WordLlamaEmbedder()
    return SentenceTransformerEmbedder(spec, batch_size)
