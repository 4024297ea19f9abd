"""The one error tree of scimsync.

Every error the toolkit raises on purpose derives from ScimsyncError, in one of three kinds
(after the Singer SDK): fatal errors stop a run (authentication, configuration), retriable
errors may succeed if tried again later (a busy server, a reset connection), and skippable
errors fail one object only, so that a failing resource never stops the others.
"""

from __future__ import annotations


class ScimsyncError(Exception):
    """Base of every error scimsync raises on purpose."""


class FatalError(ScimsyncError):
    """The run cannot go on: wrong credentials, bad configuration, unusable server."""


class RetriableError(ScimsyncError):
    """May succeed when tried again: connect errors, timeouts, 429 and 503."""


class SkippableError(ScimsyncError):
    """Fails one object only; the run goes on with the others."""
