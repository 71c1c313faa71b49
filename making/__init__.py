"""Making a RATIONALYST: extract rationales from text, filter them by the gain in the
following text's likelihood, fine-tune a rationale model (`rationalyst extract`,
`filter`, `train`). Uses the same Engine protocol as the server; the training code
imports no vLLM."""
