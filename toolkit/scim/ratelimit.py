"""A thread-safe token bucket: at most `rate` operations per second across all worker threads
(a request carries one, a /Bulk request one per operation in it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token bucket with capacity `burst` refilled at `rate` tokens per second.

    `acquire()` blocks until a token is available. Each caller reserves its slot under the
    lock and sleeps outside it, so waiting threads do not serialise on the lock. A rate of
    0 (or less) means unlimited, and `acquire()` returns at once.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def reserve(self, tokens: int = 1) -> float:
        """Take tokens (possibly going into debt) and return how long to wait for them."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= tokens
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, tokens: int = 1) -> float:
        """Wait for `tokens` tokens; returns the time waited."""
        delay = self.reserve(tokens)
        if delay > 0:
            self._sleep(delay)
        return delay
