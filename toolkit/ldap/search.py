"""Fast paged subtree reads on an ldap3 connection.

ldap3 decodes responses with pyasn1 and copies them several times, which makes a bulk read
about 13 times slower than `ldapsearch` (reference/ldap-servers.md, section 2). For the bulk
path only, this module keeps ldap3 for everything it does well (connecting, TLS, binding,
encoding the request and its filter) and reads the responses itself from the connection's
socket with a small decoder that knows just the three PDUs a search returns: SearchResultEntry,
SearchResultReference and SearchResultDone. Entries are decoded as their bytes arrive, and
the next page is requested as soon as the current page's end has arrived, so the server works
while the caller decodes (one page ahead at most, so memory stays bounded).

Every page must end with result code 0; anything else (a size or time limit, a lost
connection, a malformed PDU) raises, so a read never ends short without an error.
"""

from __future__ import annotations

import logging
import select
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

import ldap3
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from pyasn1.codec.ber import encoder

from toolkit.ldap.ad import guid_bytes, normalize_entry
from toolkit.ldap.connection import close
from toolkit.ldap.errors import LdapRetriableOperationError, operation_error

log = logging.getLogger(__name__)


class ReadEntry(dict):
    """An entry as read, with a digest of its bytes on the wire (DN and every attribute value,
    in the server's order): equal digests, equal entries, told in one comparison."""

    __slots__ = ("digest",)

    digest: bytes


PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
_PAGED_OID = PAGED_RESULTS_OID.encode()
_RECV_SIZE = 1 << 18
_ENTRY, _REFERENCE, _DONE, _EXTENDED, _INTERMEDIATE = 0x64, 0x73, 0x65, 0x78, 0x79

RESULT_NAMES = {
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    4: "sizeLimitExceeded",
    10: "referral",
    11: "adminLimitExceeded",
    12: "unavailableCriticalExtension",
    32: "noSuchObject",
    34: "invalidDNSyntax",
    48: "inappropriateAuthentication",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    80: "other",
}


def value_of(raw: bytes) -> str | bytes:
    """An attribute value as text when it is UTF-8, else the bytes (photos, certificates)."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def entry_from_raw(dn: str, raw_attributes: dict[str, list[bytes]]) -> dict[str, Any]:
    """Our entry form from an ldap3 response item (`dn`, `raw_attributes`)."""
    entry: dict[str, Any] = {"dn": dn}
    for name, values in raw_attributes.items():
        if values:  # ldap3 lists requested attributes the server did not return as empty
            entry.setdefault(name.lower(), []).extend(value_of(v) for v in values)
    return normalize_entry(entry) if "objectguid" in entry else entry


def request_attributes(
    attributes: Sequence[str] | None, unique_id_attribute: str | None
) -> list[str]:
    """The attribute list to ask for: all user attributes by default, plus the unique id."""
    wanted = list(attributes) if attributes else ["*"]
    if unique_id_attribute and wanted != ["1.1"]:
        if unique_id_attribute.lower() not in {a.lower() for a in wanted}:
            wanted.append(unique_id_attribute)
    return wanted


def _send_search(
    conn: ldap3.Connection,
    base_dn: str,
    search_filter: str,
    attributes: list[str],
    scope: str,
    page_size: int,
    cookie: bytes | None,
) -> int:
    request = search_operation(
        base_dn,
        search_filter,
        scope,
        ldap3.DEREF_NEVER,
        attributes,
        0,
        0,
        False,
        conn.auto_escape,
        conn.auto_encode,
        None,
        None,
        False,
    )
    message_id = conn.server.next_message_id()
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    message["controls"] = build_controls_list([paged_search_control(False, page_size, cookie)])
    with conn.connection_lock:
        conn.socket.sendall(encoder.encode(message))
    return message_id


def _header(buf: bytes, p: int) -> tuple[int, int]:
    """(start of contents, length) of the TLV at `p`."""
    length = buf[p + 1]
    p += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[p : p + n], "big")
        p += n
    return p, length


# Values shared per attribute (a read's first SHARED_VALUES distinct values of each): a title,
# a city or an object class then exists once, not once per entry. At 100,000 users the
# duplicates were 1.2 KB per entry; unique values (uid, mail) only cost a failed look-up.
SHARED_VALUES = 1024
Shared = dict[str, dict[bytes, str | bytes]]


def decode_entry(
    buf: bytes, p: int, end: int, names: dict[bytes, str], shared: Shared | None = None
) -> dict[str, Any]:
    """Decode the contents of a SearchResultEntry between `p` and `end`.

    Written flat on purpose: this loop runs once per attribute of every entry read, and each
    function call or tuple it avoids is measurable on a 100,000-entry read. `shared` (one
    per read) lets equal values of an attribute share one object.
    """
    entry = ReadEntry(dn=None)
    entry.digest = blake2b(buf[p:end], digest_size=16).digest()
    length = buf[p + 1]
    p += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[p : p + n], "big")
        p += n
    entry["dn"] = buf[p : p + length].decode()
    p += length
    length = buf[p + 1]  # the attribute list's SEQUENCE: skip its header
    p += 2
    if length & 0x80:
        p += length & 0x7F
    while p < end:
        length = buf[p + 1]  # one PartialAttribute's SEQUENCE: skip its header
        p += 2
        if length & 0x80:
            p += length & 0x7F
        length = buf[p + 1]  # the attribute type
        p += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(buf[p : p + n], "big")
            p += n
        q = p + length
        name = names.get(buf[p:q])
        if name is None:
            name = names[buf[p:q]] = buf[p:q].decode().lower()
        length = buf[q + 1]  # the SET OF values
        p = q + 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(buf[p : p + n], "big")
            p += n
        set_end = p + length
        memo = None if shared is None else shared.get(name)
        if memo is None and shared is not None:
            memo = shared[name] = {}
        values: list[str | bytes] | None = None
        while p < set_end:
            length = buf[p + 1]
            p += 2
            if length & 0x80:
                n = length & 0x7F
                length = int.from_bytes(buf[p : p + n], "big")
                p += n
            q = p + length
            raw = buf[p:q]
            value = memo.get(raw) if memo is not None else None
            if value is None:
                try:
                    value = raw.decode()
                except UnicodeDecodeError:
                    value = raw
                if memo is not None and len(memo) < SHARED_VALUES:
                    memo[raw] = value
            if values is None:
                values = [value]  # exactly sized: most attributes hold one value
            else:
                values.append(value)
            p = q
        if values is None:
            values = []
        if name in entry:  # the same type twice (options aside, servers do not do this)
            entry[name].extend(values)
        else:
            entry[name] = values
    if "objectguid" in entry:  # Active Directory: its GUID in string form (toolkit.ldap.ad)
        normalize_entry(entry)
    return entry


def decode_done(buf: bytes, p: int, end: int) -> tuple[int, str, bytes | None]:
    """(result code, diagnostic message, paged-results cookie or None) of a SearchResultDone.

    `p` is the position of the SearchResultDone tag; `end` the end of the whole message, since
    the controls follow the protocol operation.
    """
    p, length = _header(buf, p)
    op_end = p + length
    p, length = _header(buf, p)
    code = int.from_bytes(buf[p : p + length], "big")
    p += length
    p, length = _header(buf, p)  # matchedDN
    p += length
    p, length = _header(buf, p)
    diagnostic = buf[p : p + length].decode(errors="replace")
    cookie = None
    if op_end < end and buf[op_end] == 0xA0:
        p, length = _header(buf, op_end)
        controls_end = p + length
        while p < controls_end:
            p, length = _header(buf, p)
            control_end = p + length
            p, length = _header(buf, p)
            oid = buf[p : p + length]
            p += length
            if p < control_end and buf[p] == 0x01:  # criticality
                p, length = _header(buf, p)
                p += length
            if oid == _PAGED_OID and p < control_end and buf[p] == 0x04:
                p, length = _header(buf, p)  # the control value: OCTET STRING holding a SEQUENCE
                p, length = _header(buf, p)
                p, length = _header(buf, p)  # size estimate
                p += length
                p, length = _header(buf, p)
                cookie = bytes(buf[p : p + length])
            p = control_end
    return code, diagnostic, cookie


class _Responses:
    """The search responses arriving on a socket, cut into messages, one page ahead.

    Messages are framed as their bytes arrive; when a page's SearchResultDone is framed, the
    next page is requested at once, so the server prepares it while the caller still decodes
    the entries before it. Only one page is ever requested ahead.
    """

    def __init__(self, conn: ldap3.Connection, request: Callable[[bytes | None], int], what: str):
        self.sock = conn.socket
        self.request = request
        self.what = what
        self.frames: deque[tuple[bytes, int, int, int, tuple[int, str, bytes | None] | None]] = (
            deque()
        )
        self.parts: list[bytes] = []  # bytes received but not yet framed (an incomplete message)
        self.have = 0
        self.need = 0  # size of the incomplete message, when its header has arrived
        self.outstanding = request(None)  # the message id whose responses are arriving
        self.dones = 0  # SearchResultDones framed but not yet consumed
        self.deferred: bytes | None = None  # a cookie whose page is not requested yet
        self.last_done = False  # the last page's SearchResultDone has been framed

    @property
    def should_look_ahead(self) -> bool:
        """Whether to look for the current page's end, to request the next page early."""
        return not self.dones and not self.last_done

    def consumed_done(self) -> None:
        """The caller reached a page's end: request the page after next if it is known."""
        self.dones -= 1
        if self.deferred is not None and self.dones <= 1:
            cookie, self.deferred = self.deferred, None
            self.outstanding = self.request(cookie)

    def fill(self, block: bool) -> None:
        """Frame what has arrived; wait for data when `block`, else only take what is there."""
        if not block:
            pending = getattr(self.sock, "pending", None)
            if not (pending and pending()) and not select.select([self.sock], [], [], 0)[0]:
                return
        chunk = self.sock.recv(_RECV_SIZE)
        if not chunk:
            raise LdapRetriableOperationError(
                f"{self.what}: the server closed the connection; the read is incomplete"
            )
        if self.need and self.have + len(chunk) < self.need:
            self.parts.append(chunk)
            self.have += len(chunk)
            return
        if self.parts:
            self.parts.append(chunk)
            chunk = b"".join(self.parts)
        try:
            rest = self._frame(chunk)
        except (IndexError, ValueError) as exc:
            raise LdapRetriableOperationError(
                f"{self.what}: malformed response ({exc}); the read is incomplete"
            ) from None
        self.parts = [rest] if rest else []
        self.have = len(rest)

    def _frame(self, buf: bytes) -> bytes:
        """Append the complete messages in `buf` to `frames`; return the incomplete rest."""
        size, p, frames = len(buf), 0, self.frames
        self.need = 0
        while size - p >= 2:
            length = buf[p + 1]
            q = p + 2
            if length & 0x80:
                n = length & 0x7F
                if size - q < n:
                    break
                length = int.from_bytes(buf[q : q + n], "big")
                q += n
            end = q + length
            if end > size:
                self.need = end - p
                break
            r = q + 2 + buf[q + 1]  # skip the messageID
            got_id = int.from_bytes(buf[q + 2 : r], "big")
            op = buf[r]
            if got_id != self.outstanding:
                raise _unexpected(got_id, op, self.what, buf[r:end])
            if op == _ENTRY:
                length = buf[r + 1]
                r += 2
                if length & 0x80:
                    r += length & 0x7F
                frames.append((buf, r, end, op, None))
            elif op == _DONE:
                done = decode_done(buf, r, end)
                frames.append((buf, r, end, op, done))
                if done[0] == 0 and done[2]:
                    if self.dones:  # a page ahead is already requested: no more
                        self.deferred = done[2]
                    else:
                        self.outstanding = self.request(done[2])
                else:
                    self.last_done = True
                self.dones += 1
            elif op == _REFERENCE:
                log.warning("%s: a continuation reference was not followed", self.what)
            elif op != _INTERMEDIATE:
                raise _unexpected(got_id, op, self.what, buf[r:end])
            p = end
        return buf[p:]


def paged_search(
    conn: ldap3.Connection,
    base_dn: str,
    search_filter: str = "(objectClass=*)",
    attributes: Sequence[str] | None = None,
    page_size: int = 1000,
    scope: str = ldap3.SUBTREE,
    label: str = "",
) -> Iterator[dict[str, Any]]:
    """Entries below `base_dn` matching `search_filter`, read page by page on `conn`.

    `conn` must be used by nothing else meanwhile. If the iteration stops early (an error, or
    the caller stops reading), the connection is closed, since unread responses would
    otherwise confuse its next operation.
    """
    what = f"search of {base_dn}" + (f" on {label}" if label else "")
    wanted = list(attributes) if attributes else ["*"]
    names: dict[bytes, str] = {}
    shared: Shared = {}
    finished = False

    def request(cookie: bytes | None) -> int:
        return _send_search(conn, base_dn, search_filter, wanted, scope, page_size, cookie)

    try:
        responses = _Responses(conn, request, what)
        frames, count = responses.frames, 0
        while True:
            if not frames:
                responses.fill(block=True)
                continue
            buf, p, end, op, done = frames.popleft()
            if done is None:
                try:
                    entry = decode_entry(buf, p, end, names, shared)
                except (IndexError, ValueError) as exc:
                    raise LdapRetriableOperationError(
                        f"{what}: malformed entry ({exc}); the read is incomplete"
                    ) from None
                yield entry
                count += 1
                if not count & 63 and responses.should_look_ahead:
                    responses.fill(block=False)  # request the next page as early as possible
                continue
            responses.consumed_done()
            code, diagnostic, cookie = done
            if code != 0:
                name = RESULT_NAMES.get(code, "error")
                detail = f": {diagnostic}" if diagnostic else ""
                raise operation_error(
                    f"{what} stopped with {name} ({code}){detail}; the read is incomplete", code
                )
            if not cookie:
                finished = True
                return
    except TimeoutError:
        raise LdapRetriableOperationError(
            f"{what}: no answer within {conn.receive_timeout} s; the read is incomplete"
        ) from None
    except OSError as exc:
        raise LdapRetriableOperationError(
            f"{what}: connection lost ({exc}); the read is incomplete"
        ) from None
    finally:
        if not finished:
            close(conn)


def _unexpected(got_id: int, op: int, what: str, body: bytes = b"") -> LdapRetriableOperationError:
    if got_id == 0 and op == _EXTENDED:  # notice of disconnection (RFC 4511 4.4.1)
        try:
            _, diagnostic, _ = decode_done(body, 0, len(body))
        except (IndexError, ValueError):
            diagnostic = ""
        return LdapRetriableOperationError(
            f"{what}: the server ended the session ({diagnostic or 'notice of disconnection'}); "
            "the read is incomplete"
        )
    return LdapRetriableOperationError(
        f"{what}: unexpected response (message {got_id}, operation 0x{op:02x}); the read is incomplete"
    )


# --- one page, entries decoded on demand (change feeds) -----------------------------------------


class EncodedEntry:
    """A SearchResultEntry as it arrived: its DN decoded, its attributes only on `decode()`.

    A change feed re-reads a window of entries it has mostly delivered already; the DN tells
    which, so those are never decoded again.
    """

    __slots__ = ("dn", "_buf", "_start", "_end", "_names")

    def __init__(self, buf: bytes, start: int, end: int, names: dict[bytes, str]):
        p, length = _header(buf, start)
        self.dn = buf[p : p + length].decode()
        self._buf, self._start, self._end, self._names = buf, start, end, names

    def decode(self) -> dict[str, Any]:
        """The entry in the form `paged_search` yields (values text when UTF-8, else bytes)."""
        return decode_entry(self._buf, self._start, self._end, self._names)


@dataclass(frozen=True)
class AnyOf:
    """The filter `(|(attribute=value)...)`, sent as BER encoded here: ldap3's filter parser
    takes about 8 ms for 100 values, most of what re-reading 100 changed entries costs."""

    attribute: str
    values: tuple[str, ...]

    def __str__(self) -> str:  # for messages
        return f"(|({self.attribute}=...) x {len(self.values)})"


_SCOPES = {ldap3.BASE: 0, ldap3.LEVEL: 1, ldap3.SUBTREE: 2}


def _ber(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _ber_int(tag: int, value: int) -> bytes:
    """A non-negative INTEGER (or ENUMERATED) in its shortest two's complement form."""
    return _ber(tag, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encode_any_of_search(
    message_id: int,
    base_dn: str,
    search_filter: AnyOf,
    attributes: Sequence[str],
    scope: str,
    page_size: int,
    cookie: bytes | None,
) -> bytes:
    """An LDAPMessage holding a paged SearchRequest for `search_filter` (RFC 4511, 2696):
    the same bytes as ldap3 sends for the same search."""
    if not search_filter.values:
        raise ValueError("AnyOf needs at least one value")
    attribute = _ber(0x04, search_filter.attribute.encode())
    binary = search_filter.attribute.lower() == "objectguid"  # asserted as its 16 bytes
    terms = [
        _ber(0xA3, attribute + _ber(0x04, guid_bytes(v) if binary else v.encode()))
        for v in search_filter.values
    ]
    flt = terms[0] if len(terms) == 1 else _ber(0xA1, b"".join(terms))
    request = _ber(
        0x63,
        _ber(0x04, base_dn.encode())
        + _ber_int(0x0A, _SCOPES[scope])
        + _ber_int(0x0A, 0)  # derefAliases: never
        + _ber_int(0x02, 0)  # no size limit
        + _ber_int(0x02, 0)  # no time limit
        + _ber(0x01, b"\x00")  # typesOnly: false
        + flt
        + _ber(0x30, b"".join(_ber(0x04, a.encode()) for a in attributes)),
    )
    paging = _ber(0x30, _ber_int(0x02, page_size) + _ber(0x04, cookie or b""))
    control = _ber(0x30, _ber(0x04, _PAGED_OID) + _ber(0x04, paging))  # not critical
    return _ber(0x30, _ber_int(0x02, message_id) + request + _ber(0xA0, control))


def search_page(
    conn: ldap3.Connection,
    base_dn: str,
    search_filter: str | AnyOf,
    attributes: Sequence[str] | None,
    page_size: int,
    scope: str = ldap3.SUBTREE,
    label: str = "",
) -> tuple[list[EncodedEntry], bool]:
    """The first `page_size` entries of a paged search, and whether the server had more.

    When it has more, the rest of the search is abandoned (a page of size 0 with the cookie,
    RFC 2696), so the connection is free for its next operation. A result code other than
    0 raises (operation_error, with the code); a broken read closes the connection.
    """
    what = f"search of {base_dn}" + (f" on {label}" if label else "")
    wanted = list(attributes) if attributes else ["*"]
    names: dict[bytes, str] = {}
    size = max(1, page_size)
    finished = False

    def request(cookie: bytes | None) -> int:
        # the page, then (if the server has more) the request that abandons the rest
        paged = size if cookie is None else 0
        if isinstance(search_filter, str):
            return _send_search(conn, base_dn, search_filter, wanted, scope, paged, cookie)
        message_id = conn.server.next_message_id()
        data = encode_any_of_search(
            message_id, base_dn, search_filter, wanted, scope, paged, cookie
        )
        with conn.connection_lock:
            conn.socket.sendall(data)
        return message_id

    try:
        responses = _Responses(conn, request, what)
        frames = responses.frames
        entries: list[EncodedEntry] = []
        more = False
        while True:
            if not frames:
                responses.fill(block=True)
                continue
            buf, p, end, _, done = frames.popleft()
            if done is None:
                if not more:
                    entries.append(EncodedEntry(buf, p, end, names))
                continue
            code, diagnostic, cookie = done
            if more:  # the abandon request's answer: the page read is complete whatever it says
                finished = True
                return entries, True
            if code != 0:
                finished = True  # a clean answer: the connection is still usable
                name = RESULT_NAMES.get(code, "error")
                detail = f": {diagnostic}" if diagnostic else ""
                raise operation_error(f"{what} stopped with {name} ({code}){detail}", code)
            if not cookie:
                finished = True
                return entries, False
            more = True  # `responses` has sent the abandon request: wait for its answer
    except (IndexError, ValueError) as exc:
        raise LdapRetriableOperationError(f"{what}: malformed entry ({exc})") from None
    except TimeoutError:
        raise LdapRetriableOperationError(
            f"{what}: no answer within {conn.receive_timeout} s"
        ) from None
    except OSError as exc:
        raise LdapRetriableOperationError(f"{what}: connection lost ({exc})") from None
    finally:
        if not finished:
            close(conn)
