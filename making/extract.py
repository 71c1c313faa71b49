"""`rationalyst extract`: documents -> implicit rationales -> checked triples.

Two modes. `rewrite` is the reference's: the model regenerates the document with
`<BOT>rationale<EOT>` between sentences, and the output is kept only if it still
matches the input. `insert` never regenerates the text: at each sentence boundary the
model writes only the rationale linking the text so far to the next sentence, so it
decodes far fewer tokens and cannot modify the text. Both reject leaks (rationales
that restate the following text).

Output (append-only, resumable): documents.jsonl (one record per finished document),
triples.jsonl, extract_stats.json.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from rationalyst.supervisor.concurrency import gather_or_cancel
from rationalyst.supervisor.engine import Engine, PromptTooLong

from . import embeddings, leak, prompts, render, split
from .documents import Document
from .store import Appender, read_jsonl, write_jsonl

SKIP_REASONS = (
    "empty",
    "not UTF-8",
    "text modified",
    "unpaired markers",
    "no rationale",
    "leak",
    "truncated",
)
FILES = ("documents.jsonl", "triples.jsonl", "extract_stats.json")


@dataclass(frozen=True)
class ExtractConfig:
    mode: str = "insert"
    max_rationale_tokens: int = 48
    leak_threshold: float = 0.7  # rapidfuzz similarity (0-1) that counts as a leak
    min_similarity: float = 0.9  # rewrite: stripped output vs input
    max_boundaries: int = 0  # insert: rationales per document, 0 = all
    leak_meaning: float = leak.MEANING_THRESHOLD  # embedding cosine that counts as one
    leak_embedder: str | None = embeddings.BUNDLED  # None: the lexical rules only


class Extractor:
    def __init__(self, engine: Engine, cfg: ExtractConfig):
        self.engine, self.cfg = engine, cfg
        self.guard = leak.LeakGuard(cfg.leak_threshold, cfg.leak_meaning, cfg.leak_embedder)
        empty = (
            prompts.insert_messages("", "")
            if cfg.mode == "insert"
            else prompts.rewrite_messages("")
        )
        self.overhead = engine.count_tokens(engine.render(empty))

    def _budget(self) -> int:
        """Tokens of document text a prompt (and, in rewrite, its output) can hold."""
        room = self.engine.max_model_len - self.overhead - 16
        if self.cfg.mode == "insert":
            return room - self.cfg.max_rationale_tokens
        # The output repeats the text and adds rationales: keep text under ~40%.
        return int(room * 0.4)

    def cut(self, text: str) -> tuple[str, bool]:
        """The longest run of whole sentences that fits the context."""
        budget = self._budget()
        if self.engine.count_tokens(text) <= budget:
            return text, False
        kept = ""
        for seg in split.sentences(text):
            if self.engine.count_tokens(kept + seg) > budget:
                break
            kept += seg
        return kept.rstrip(), True

    async def process(self, doc: Document) -> tuple[list[dict], dict]:
        rec = {
            "id": doc.id,
            "source": doc.source,
            "status": "skipped",
            "reason": None,
            "triples": 0,
            "rationales": 0,
            "leaks": 0,
            "empty": 0,
            "truncated": 0,
            "leak_reasons": {},
            "cut": False,
        }
        if doc.text is None:
            rec["reason"] = "not UTF-8"
            return [], rec
        if not doc.text.strip():
            rec["reason"] = "empty"
            return [], rec
        if self.cfg.mode == "insert":
            triples = await self._insert(doc, rec)
        else:
            text, rec["cut"] = self.cut(doc.text)
            triples = await self._rewrite(doc.id, text, rec)
        if triples:
            rec["status"], rec["triples"] = "kept", len(triples)
        elif rec["reason"] is None:
            rec["reason"] = (
                "leak" if rec["leaks"] else "truncated" if rec["truncated"] else "no rationale"
            )
        rows = [
            {"id": f"{doc.id}#{k}", "doc_id": doc.id, **asdict(t)} for k, t in enumerate(triples)
        ]
        return rows, rec

    def _keep(self, triples: list[split.Triple], rec: dict) -> list[split.Triple]:
        kept = []
        for t in triples:
            rec["rationales"] += 1
            why = self.guard.reason(t.rationale, t.following, t.preceding)
            if why:
                rec["leaks"] += 1
                rec["leak_reasons"][why] = rec["leak_reasons"].get(why, 0) + 1
            else:
                kept.append(t)
        return kept

    def _pairs(self, doc: Document, rec: dict) -> list[tuple[str, str]]:
        """Where to ask: a question/answer item where the server asks (after the
        question, between steps); plain text between sentences. Pairs past the
        context are cut (rec["cut"])."""
        if doc.problem is None:
            text, rec["cut"] = self.cut(doc.text)
            return split.boundaries(text)
        pairs, budget = [], self._budget()
        for so_far, nxt in render.qa_boundaries(doc.problem, doc.steps):
            if self.engine.count_tokens(so_far + " " + nxt) > budget:
                rec["cut"] = True
                break
            pairs.append((so_far, nxt))
        return pairs

    async def _insert(self, doc: Document, rec: dict) -> list[split.Triple]:
        pairs = self._pairs(doc, rec)
        if self.cfg.max_boundaries:
            pairs = pairs[: self.cfg.max_boundaries]

        async def one(i: int, so_far: str, nxt: str) -> str | None:
            prompt = self.engine.render(prompts.insert_messages(so_far, nxt))
            try:
                gen = await self.engine.generate(
                    prompt,
                    self.cfg.max_rationale_tokens,
                    ["\n"],
                    f"extract-{doc.id}-{i}",
                    session=f"extract-{doc.id}",
                )  # 1 replica
            except PromptTooLong:
                return ""
            if gen.completions[0].finish_reason == "length":
                return None  # cut off by the token cap: an unfinished thought
            return split.clean_rationale(gen.completions[0].text)

        outs = await gather_or_cancel(*(one(i, a, b) for i, (a, b) in enumerate(pairs)))
        triples = []
        for (so_far, nxt), r in zip(pairs, outs):
            if r is None:
                rec["truncated"] += 1
            elif r:
                triples.append(split.Triple(so_far, r, nxt))
            else:
                rec["empty"] += 1
        return self._keep(triples, rec)

    async def _rewrite(self, doc_id: str, text: str, rec: dict) -> list[split.Triple]:
        prompt = self.engine.render(prompts.rewrite_messages(text))
        n_prompt = self.engine.count_tokens(prompt)
        room = self.engine.max_model_len - n_prompt
        want = 2 * self.engine.count_tokens(text) + 64
        gen = await self.engine.generate(prompt, max(1, min(want, room)), [], f"extract-{doc_id}")
        output = gen.completions[0].text
        if gen.completions[0].finish_reason == "length":  # cut off: its end is missing
            rec["truncated"] += 1
            rec["reason"] = "truncated"
            return []
        try:
            pieces = split.parse_markers(output)
        except split.MarkerError:
            rec["reason"] = "unpaired markers"
            return []
        if split.similarity(split.strip_rationales(pieces), text) < self.cfg.min_similarity:
            rec["reason"] = "text modified"
            return []
        triples, drops = split.triples_from_pieces(pieces)
        rec["empty"] += drops["empty"]
        return self._keep(triples, rec)


def resume_state(out: Path) -> set[str]:
    """Ids of finished documents; drops triples of a document that did not finish
    (written before an interrupt cut its record), so a rerun cannot duplicate them."""
    done = {r["id"] for r in read_jsonl(out / "documents.jsonl")}
    rows = read_jsonl(out / "triples.jsonl")
    good = [r for r in rows if r.get("doc_id") in done]
    if len(good) != len(rows):
        write_jsonl(out / "triples.jsonl", good)
    return done


def write_stats(out: Path, total: int) -> dict:
    recs = read_jsonl(out / "documents.jsonl")
    reasons = Counter(r["reason"] for r in recs if r["status"] == "skipped")
    stats = {
        "documents": total,
        "read": len(recs),
        "kept": sum(r["status"] == "kept" for r in recs),
        "skipped": {k: reasons.get(k, 0) for k in SKIP_REASONS},
        "cut_to_context": sum(r["cut"] for r in recs),
        "rationales": sum(r["rationales"] for r in recs),
        "rationales_empty": sum(r["empty"] for r in recs),
        # Cut off by --max-rationale-tokens (finish reason "length"): dropped.
        "rationales_truncated": sum(r.get("truncated", 0) for r in recs),
        "rationales_leak": sum(r["leaks"] for r in recs),
        "rationales_leak_by_reason": {
            k: sum(r.get("leak_reasons", {}).get(k, 0) for r in recs) for k in split.LEAK_REASONS
        },
        "triples": sum(r["triples"] for r in recs),
    }
    (out / "extract_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    return stats


async def run(
    engine: Engine,
    docs: Iterable[Document],
    out: Path,
    cfg: ExtractConfig,
    concurrency: int = 8,
    progress: bool = True,
    total: int | None = None,
) -> dict:
    """Extract every unfinished document, `concurrency` at a time; returns the stats.
    `docs` may be a stream (documents.iter_documents), with `total` its length."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    done = resume_state(out)
    total = len(docs) if total is None else total  # type: ignore[arg-type]
    pending = (d for d in docs if d.id not in done)  # streamed: never all in memory
    ex = Extractor(engine, cfg)
    triples, records = Appender(out / "triples.jsonl"), Appender(out / "documents.jsonl")
    bar = tqdm(
        total=total,
        initial=len(done),
        desc=f"extract ({cfg.mode})",
        unit="doc",
        disable=not progress,
    )

    async def worker() -> None:
        for doc in pending:  # one shared iterator: each document goes to one worker
            rows, rec = await ex.process(doc)
            # Triples first, then the record that marks the document done.
            triples.write(rows)
            records.write([rec])
            bar.update(1)

    try:
        await gather_or_cancel(*(worker() for _ in range(max(1, concurrency))))
    finally:
        bar.close()
        triples.close()
        records.close()
        stats = write_stats(out, total)
    return stats
