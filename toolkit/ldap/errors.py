"""The LDAP layer's errors, in the toolkit's three kinds (fatal, retriable, skippable).

Messages name the server, the bind DN, the base DN or the file and line concerned; they never
contain a password.
"""

from __future__ import annotations

from toolkit.errors import FatalError, RetriableError, ScimsyncError

# LDAP result codes worth retrying: timeLimitExceeded, busy, unavailable, unwillingToPerform
# is not among them (it usually means a configuration problem), but server-side time limits are.
RETRIABLE_RESULT_CODES = frozenset({3, 51, 52, 80})


class LdapError(ScimsyncError):
    """Base of the LDAP layer's errors (each is also fatal or retriable)."""


class LdapConnectError(LdapError, RetriableError):
    """No server of the list answered (refused, unreachable, timed out, TLS handshake failed)."""


class LdapTlsError(LdapError, FatalError):
    """The server's certificate was not trusted or did not match its name."""


class LdapBindError(LdapError, FatalError):
    """The server refused the bind DN and password."""


class _WithResultCode(LdapError):
    def __init__(self, message: str, result_code: int | None = None):
        super().__init__(message)
        self.result_code = result_code


class LdapOperationError(_WithResultCode, FatalError):
    """An LDAP operation ended with an error result: nothing partial is ever returned."""


class LdapRetriableOperationError(_WithResultCode, RetriableError):
    """An operation failed in a way that may pass later: busy, unavailable, timeouts, lost connection."""


class LdifError(LdapError, FatalError):
    """An LDIF file that cannot be used as a snapshot; the message names the file and line."""


class ChangeFeedError(LdapError, FatalError):
    """The change feed is missing, unreadable, or no longer holds the changes a cursor needs."""


class CursorError(LdapError, FatalError):
    """A cursor string that does not belong to this change detector."""


def operation_error(
    message: str, result_code: int | None
) -> LdapOperationError | LdapRetriableOperationError:
    """The right kind of error for an LDAP result code."""
    if result_code is None or result_code in RETRIABLE_RESULT_CODES:
        return LdapRetriableOperationError(message, result_code)
    return LdapOperationError(message, result_code)
