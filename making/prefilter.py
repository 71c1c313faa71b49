"""`rationalyst prefilter`: the paper's selection of unlabelled documents before
extraction. A document is kept when it has at most `max_chars` characters (2,000)
and its sentence embedding has cosine >= `threshold` (0.3) with the mean embedding
of a reasoning set (the paper: MiniLM or mpnet over GSM8K, ECQA... training data).

The embedding model is a sentence-transformers checkpoint given by path, or
`wordllama`, the small model that ships in a PyPI wheel (making/embeddings.py). Without
one, a cheap lexical stand-in scores the same way: TF-IDF vectors fitted on the
reasoning set, cosine with their mean. Its scale is not the embeddings': its
default (0.1) comes from one small check (docs/making-at-scale.md), set it on your data.

The corpus is streamed in batches (documents.iter_documents, so `--shard` works as
in extract). Output: kept.jsonl (id, text, similarity), prefilter_stats.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from . import embeddings
from .documents import Document, InputError, iter_documents

FILES = ("kept.jsonl", "prefilter_stats.json")
EMBEDDING_THRESHOLD = 0.3  # the paper's
LEXICAL_THRESHOLD = 0.1  # TF-IDF cosines are smaller than embeddings'
BUNDLED_THRESHOLD = 0.2  # and WordLlama's than MiniLM's (docs/making-at-scale.md)
INSTALL = embeddings.INSTALL


def default_threshold(model: str | None) -> float:
    if model is None:
        return LEXICAL_THRESHOLD
    return BUNDLED_THRESHOLD if model == embeddings.BUNDLED else EMBEDDING_THRESHOLD


class EmbeddingScorer:
    """Cosine of each text's sentence embedding with the reasoning set's mean."""

    def __init__(self, model: str, batch_size: int = 64):
        self.embedder = embeddings.load(model, batch_size)
        self.name = f"embedding {self.embedder.name}"
        self.centre = None

    def fit(self, reasoning: Sequence[str]) -> None:
        import numpy as np

        mean = self.embedder.encode(reasoning).mean(axis=0)
        self.centre = mean / max(float(np.linalg.norm(mean)), 1e-12)

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float(x) for x in self.embedder.encode(texts) @ self.centre]


class LexicalScorer:
    """TF-IDF over the reasoning set's vocabulary, cosine with its mean vector."""

    name = "lexical tf-idf"

    def __init__(self):
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
        except ImportError:
            raise InputError(f"the lexical scorer needs scikit-learn: {INSTALL}") from None
        # Numbers count (reasoning data is full of them, and "3" says arithmetic);
        # stop words do not: without them any English prose looks close.
        self.vec = TfidfVectorizer(
            sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", stop_words="english"
        )
        self.centre = None

    def fit(self, reasoning: Sequence[str]) -> None:
        import numpy as np

        mean = np.asarray(self.vec.fit_transform(reasoning).mean(axis=0)).ravel()
        self.centre = mean / max(float(np.linalg.norm(mean)), 1e-12)

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float(x) for x in self.vec.transform(list(texts)) @ self.centre]


def reasoning_texts(paths: Sequence[str]) -> list[str]:
    texts = [d.text for d in iter_documents(paths) if d.text and d.text.strip()]
    if not texts:
        raise InputError(f"--reasoning: no documents in {', '.join(paths)}")
    return texts


def _batches(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for d in docs:
        batch.append(d)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run(
    scorer,
    corpus: Iterable[Document],
    out: Path,
    threshold: float,
    max_chars: int,
    batch_size: int = 256,
    progress: bool = True,
    total: int | None = None,
) -> dict:
    """Score the corpus in batches and keep what passes; returns the stats (also in
    prefilter_stats.json). Documents too long are never scored."""
    from tqdm import tqdm

    stats = {"read": 0, "kept": 0, "too_long": 0, "below_threshold": 0, "empty": 0, "not_utf8": 0}
    bar = tqdm(total=total, desc="prefilter", unit="doc", disable=not progress)
    with open(out / "kept.jsonl", "w", encoding="utf-8") as f:
        for batch in _batches(corpus, batch_size):
            todo = []
            for d in batch:
                stats["read"] += 1
                if d.text is None:
                    stats["not_utf8"] += 1
                elif not d.text.strip():
                    stats["empty"] += 1
                elif len(d.text) > max_chars:
                    stats["too_long"] += 1
                else:
                    todo.append(d)
            sims = scorer.score([d.text for d in todo]) if todo else []
            for d, sim in zip(todo, sims):
                if sim >= threshold:
                    stats["kept"] += 1
                    f.write(
                        json.dumps(
                            {"id": d.id, "text": d.text, "similarity": round(sim, 4)},
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
                else:
                    stats["below_threshold"] += 1
            bar.update(len(batch))
    bar.close()
    stats.update(scorer=scorer.name, threshold=threshold, max_chars=max_chars)
    (out / "prefilter_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    return stats
