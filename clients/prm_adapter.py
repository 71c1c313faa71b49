"""RATIONALYST's scorer in the call shape of search-and-learn's PRMs
(huggingface/search-and-learn, `sal.models.reward_models.PRM.score`): questions and,
per question, a list of completions whose steps are separated by blank lines, in;
per question, per completion, one score per step, out. Their beam search and DVTS
can then run on POST /score.

    from rationalyst.clients.prm_adapter import RationalystPRM
    prm = RationalystPRM("http://127.0.0.1:8000")
    prm.score(["What is 3 + 4?"], [["3 + 4 = 7.\\n\\nThe answer is: 7"]])
    # [[[-0.41, -0.12]]]: one list per question, per completion, per step

Scores are mean token log-probs (<= 0), not probabilities: search-and-learn
aggregates them with last/min/prod, and `last` and `min` keep their meaning; for
`prod`, pass `as_probability=True` to get exp(score). `strategy="judge"` scores with
the verifier's reward 0-3 and `strategy="prm"` with a PRM's probability (both left
as they are).
"""

from __future__ import annotations

import math

from .client import RationalystClient

STEP_SEPARATOR = "\n\n"  # search-and-learn's step delimiter


class RationalystPRM:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        as_probability: bool = False,
        **score_fields,
    ) -> None:
        self.base_url, self.api_key = base_url, api_key
        self.as_probability = as_probability
        self.fields = score_fields  # e.g. task, score_decay

    def _value(self, score: float | None) -> float:
        logprob = self.fields.get("strategy", "rationalyst") in ("rationalyst", "explicit")
        if score is None:
            return 0.0 if self.as_probability or not logprob else float("-inf")
        return math.exp(score) if self.as_probability and logprob else float(score)

    def score(self, questions: list[str], outputs: list[list[str]]) -> list[list[list[float]]]:
        out: list[list[list[float]]] = []
        with RationalystClient(self.base_url, api_key=self.api_key) as client:
            for question, completions in zip(questions, outputs, strict=True):
                per_completion = []
                for text in completions:
                    steps = [s for s in (p.strip() for p in text.split(STEP_SEPARATOR)) if s]
                    if not steps:
                        per_completion.append([])
                        continue
                    r = client.score(question, steps, **self.fields)
                    per_completion.append([self._value(s["score"]) for s in r["steps"]])
                out.append(per_completion)
        return out
