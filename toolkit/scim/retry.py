"""Retry policy pieces: Retry-After parsing and exponential backoff with jitter."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Statuses retried in-process; others are classified at once. Singer-SDK style: a 5xx may
# pass (500 included: an overloaded server often answers it), a 4xx other than 429 is this
# request's own fault and retrying it changes nothing. A POST retried after a 5xx that the
# server had in fact applied gets 409, which the sync engine's adopt path handles.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Methods that are safe to send again after a request may already have reached the server.
# PATCH is included: the documents built here (replace/remove an attribute, add/remove
# members) converge when applied twice.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def exponential_backoff(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Delay before retry number `attempt` (1-based): base*2^(attempt-1), capped, equal jitter.

    Equal jitter keeps at least half the exponential delay (so retries really back off) and
    randomises the other half (so parallel workers do not retry in lockstep).
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    rnd = (rng or random).random()
    return ceiling / 2 + rnd * ceiling / 2
