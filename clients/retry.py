"""When to retry an HTTP call, and how long to wait: one small function.

Why not a library: tenacity and stamina decide from exceptions, so honouring a
response's Retry-After takes a custom wait function with them too; httpx-retries
(a transport) would be one more dependency for these few lines, and hides the
attempts from the client, which must not retry a stream once its 200 has started."""

from __future__ import annotations

import math
import random

RETRY_STATUSES = (429, 503)
BACKOFF_BASE, BACKOFF_CAP, RETRY_AFTER_CAP = 0.5, 8.0, 60.0


def retry_delay(attempt: int, retry_after: str | None = None) -> float:
    """`Retry-After` seconds if given (capped), else jittered exponential backoff."""
    try:
        after = float(retry_after) if retry_after is not None else None
    except ValueError:
        after = None
    if after is not None and math.isfinite(after):
        return min(max(after, 0.0), RETRY_AFTER_CAP)
    return min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2)
