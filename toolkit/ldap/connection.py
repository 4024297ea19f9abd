"""ldap3 connections: TLS verified by default, simple bind, failover in priority order.

Every connection is SYNC with `raise_exceptions=True`, so no LDAP error can pass silently, and
belongs to one user at a time (a SYNC connection is not thread-safe, and OpenLDAP allows only
one paged search per connection).
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Sequence
from pathlib import Path

import ldap3
from ldap3.core import exceptions as lexc

from toolkit.ldap.errors import (
    LdapBindError,
    LdapConnectError,
    LdapOperationError,
    LdapRetriableOperationError,
    LdapTlsError,
    operation_error,
)
from toolkit.ldap.spec import LdapServerSpec

log = logging.getLogger(__name__)

_TLS_MARKERS = ("CERTIFICATE_VERIFY_FAILED", "doesn't match", "certificate", "SSL", "TLS")


def make_tls(spec: LdapServerSpec) -> ldap3.Tls | None:
    """The TLS settings: the chain is always verified; `allow-all` only skips the host name check."""
    if spec.connection_security == "none":
        return None
    ca_file = str(spec.trust_ca_file) if spec.trust_ca_file else None
    if ca_file and not Path(ca_file).is_file():
        raise LdapTlsError(f"trust CA file {ca_file} for {spec.label} does not exist")
    return ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=ca_file,
        valid_names=["*"] if spec.hostname_verification == "allow-all" else None,
        sni=spec.host,
    )


def _who(spec: LdapServerSpec) -> str:
    return f"as {spec.bind_dn}" if spec.bind_dn else "anonymously"


def connect(spec: LdapServerSpec) -> ldap3.Connection:
    """Open, secure and bind one connection to `spec`.

    Raises LdapConnectError (unreachable), LdapTlsError (untrusted certificate or wrong name)
    or LdapBindError (credentials refused, naming the server and bind DN).
    """
    server = ldap3.Server(
        spec.host,
        port=spec.port,
        use_ssl=spec.connection_security == "ssl",
        tls=make_tls(spec),
        get_info=ldap3.NONE,
        connect_timeout=spec.connect_timeout,
    )
    conn = ldap3.Connection(
        server,
        user=spec.bind_dn,
        password=spec.password,
        authentication=ldap3.SIMPLE if spec.bind_dn else ldap3.ANONYMOUS,
        client_strategy=ldap3.SYNC,
        raise_exceptions=True,
        # ldap3 packs it into SO_RCVTIMEO as a C long: whole seconds only
        receive_timeout=max(1, math.ceil(spec.response_timeout)),
        auto_referrals=False,
    )
    try:
        _open(conn, spec)
        _bind(conn, spec)
    except BaseException:
        _close(conn)
        raise
    return conn


def _open(conn: ldap3.Connection, spec: LdapServerSpec) -> None:
    """Connect and secure: LdapConnectError when unreachable, LdapTlsError for any TLS failure."""
    try:
        conn.open(read_server_info=False)
    except (lexc.LDAPCertificateError, ssl.SSLError) as exc:
        raise LdapTlsError(f"TLS with {spec.label} failed: {_reason(exc)}") from None
    except (lexc.LDAPException, OSError) as exc:
        reason = _reason(exc)
        if spec.connection_security == "ssl" and any(m in reason for m in _TLS_MARKERS):
            raise LdapTlsError(f"TLS with {spec.label} failed: {reason}") from None
        raise LdapConnectError(f"cannot connect to {spec.label}: {reason}") from None
    if spec.connection_security != "starttls":
        return
    try:
        if not conn.start_tls(read_server_info=False):
            raise LdapTlsError(f"StartTLS with {spec.label} failed: {conn.result}")
    except lexc.LDAPSocketOpenError as exc:
        raise LdapConnectError(f"cannot connect to {spec.label}: {_reason(exc)}") from None
    except (lexc.LDAPException, ssl.SSLError, OSError) as exc:
        # never fall back to plain text: the operator asked for TLS
        raise LdapTlsError(f"StartTLS with {spec.label} failed: {_reason(exc)}") from None


def _bind(conn: ldap3.Connection, spec: LdapServerSpec) -> None:
    try:
        conn.bind(read_server_info=False)
    except lexc.LDAPOperationResult as exc:
        if exc.result == 49:
            raise LdapBindError(
                f"bind {_who(spec)} to {spec.label} failed: invalid credentials"
            ) from None
        detail = f"{exc.description} ({exc.result}) {exc.message or ''}".rstrip()
        raise LdapBindError(f"bind {_who(spec)} to {spec.label} failed: {detail}") from None
    except (lexc.LDAPException, OSError) as exc:
        raise LdapConnectError(
            f"bind {_who(spec)} to {spec.label} failed: {_reason(exc)}"
        ) from None


def _reason(exc: BaseException) -> str:
    """The text of an ldap3 error (it already includes the nested socket errors)."""
    return str(exc) or type(exc).__name__


def _close(conn: ldap3.Connection) -> None:
    try:
        conn.unbind()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail in many ways
        pass


def close(conn: ldap3.Connection | None) -> None:
    """Unbind and close, ignoring errors of an already broken connection."""
    if conn is not None:
        _close(conn)


def connect_first(servers: Sequence[LdapServerSpec]) -> tuple[ldap3.Connection, LdapServerSpec]:
    """A bound connection to the first server that answers, in priority order.

    A server that cannot be reached is skipped (each within its connect timeout); a refused
    bind or an untrusted certificate stops at once, since the next server would be misconfigured
    the same way and the operator must know.
    """
    if not servers:
        raise LdapConnectError("no LDAP server configured")
    failures: list[str] = []
    for spec in servers:
        try:
            conn = connect(spec)
        except LdapConnectError as exc:
            log.warning("%s; trying the next server", exc)
            failures.append(str(exc))
            continue
        if failures:
            log.warning("failed over to %s", spec.label)
        return conn, spec
    raise LdapConnectError("no LDAP server answered: " + "; ".join(failures))


def result_error(
    exc: lexc.LDAPException, what: str, spec: LdapServerSpec | None
) -> LdapOperationError | LdapRetriableOperationError:
    """Translate an ldap3 exception raised by an operation into our error tree."""
    where = f" on {spec.label}" if spec else ""
    if isinstance(exc, lexc.LDAPOperationResult):
        detail = f"{exc.description} ({exc.result})"
        if exc.message:
            detail += f": {exc.message}"
        return operation_error(f"{what}{where} failed: {detail}", exc.result)
    return operation_error(f"{what}{where} failed: {_reason(exc)}", None)
