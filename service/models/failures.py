"""Failed loads and when to try them again.

A weights file that appears later (a volume mounted late, a sync job still copying) must be picked up
without a restart, while a model that keeps failing must not cost a full load attempt per request: each
failure doubles the cool-down, up to a cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    reason: str  # short, for clients
    attempts: int
    retry_at: float  # monotonic seconds

    def wait(self, now: float) -> float:
        return max(0.0, self.retry_at - now)

    def retry_after_header(self, now: float) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.wait(now))))}


@dataclass(frozen=True)
class Backoff:
    first_s: float = 5.0
    max_s: float = 300.0

    def next(self, previous: Failure | None, reason: str, now: float) -> Failure:
        attempts = (previous.attempts if previous else 0) + 1
        delay = min(self.max_s, self.first_s * 2 ** (attempts - 1))
        return Failure(reason, attempts, now + delay)
