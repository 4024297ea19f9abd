"""A fault-injecting HTTP/1.1 proxy on loopback, in front of a real server.

Faults a real SCIM server does not produce on demand: 429 with Retry-After, 503 (or any
status with a given body), a stalled answer (read timeout), a late answer ("delay": the
real answer after `stall` seconds), a connection reset, a close without answer. With `tls` it also terminates TLS in front of the plain-HTTP server. `proxy.inject(kind,
count)` arms a fault for the next `count` requests (`when=` only for requests it accepts;
`forward=True` lets the real server process the request first and then answers with the
fault, e.g. a 500 for a POST that did create); everything else is forwarded to the
real server unchanged. Client connections are kept alive (each request is forwarded on its
own upstream connection and re-framed with Content-Length), so faults apply per request
even when the client reuses its pooled connection.
"""

from __future__ import annotations

import collections
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

_MAX_HEAD = 65536


@dataclass
class Seen:
    """One request as the proxy received it (headers lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    fault: str | None = None


@dataclass
class Fault:
    kind: str  # a status ("429", "503", "500"...), "stall", "delay", "reset" or "close"
    retry_after: str | None = None
    stall: float = 5.0
    body: bytes | None = None
    when: Callable[[Seen], bool] | None = None  # only requests this accepts (None: any)
    forward: bool = False  # forward to the real server first, then answer with the fault


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    host: str = "127.0.0.1"
    port: int = 0
    tls: ssl.SSLContext | None = None
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0  # client connections accepted (keep-alive reuse shows as few)
    _faults: collections.deque = field(default_factory=collections.deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sock: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    # --- control -----------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, self.port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def url(self, path: str = "/v2", host: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        retry_after: str | None = None,
        stall: float = 5.0,
        body: bytes | None = None,
        when: Callable[[Seen], bool] | None = None,
        forward: bool = False,
    ) -> None:
        """Answer the next `count` requests (that `when` accepts) with a fault."""
        with self._lock:
            for _ in range(count):
                self._faults.append(Fault(kind, retry_after, stall, body, when, forward))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.seen.clear()
            self.connections = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._faults)

    # --- serving -----------------------------------------------------------------------

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(0.2)
            while not self._stop.is_set():
                request, buffer = self._read_request(conn, buffer)
                if request is None:
                    return
                head, body = request
                seen = _seen(head, body, None)
                with self._lock:
                    fault = self._take_fault(seen)
                    seen.fault = fault.kind if fault else None
                    self.seen.append(seen)
                if fault is not None and fault.kind == "delay":
                    self._stop.wait(fault.stall)
                    fault = None  # then answered like any other request
                if fault is not None:
                    if fault.forward:
                        self._forward(head, body)  # the server acts; its answer is lost
                    self._apply(conn, fault)
                    return
                conn.sendall(self._forward(head, body))
        except OSError:
            return
        finally:
            conn.close()

    def _take_fault(self, seen: Seen) -> Fault | None:
        """The first armed fault for this request, removed from the queue (under the lock)."""
        if not self._faults:  # truth-tested first: a subclass's queue may hide its faults
            return None
        for fault in self._faults:
            if fault.when is None or fault.when(seen):
                self._faults.remove(fault)
                return fault
        return None

    def _read_request(
        self, conn: socket.socket, buffer: bytes
    ) -> tuple[tuple[bytes, bytes] | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            chunk = self._recv(conn)
            if not chunk:
                return None, b""
            buffer += chunk
            if len(buffer) > _MAX_HEAD:
                return None, b""
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = int(_header(head, b"content-length") or 0)
        while len(rest) < length:
            chunk = self._recv(conn)
            if not chunk:
                return None, b""
            rest += chunk
        return (head, rest[:length]), rest[length:]

    def _recv(self, conn: socket.socket) -> bytes:
        while not self._stop.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
        return b""

    def _apply(self, conn: socket.socket, fault: Fault) -> None:
        if fault.kind.isdigit():
            body = fault.body or (
                b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"'
                + fault.kind.encode()
                + b'","detail":"injected fault"}'
            )
            lines = [b"HTTP/1.1 " + fault.kind.encode() + b" Injected"]
            if fault.retry_after is not None:
                lines.append(b"Retry-After: " + fault.retry_after.encode())
            lines += [
                b"Content-Type: application/scim+json",
                b"Content-Length: " + str(len(body)).encode(),
                b"Connection: close",
            ]
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        elif fault.kind == "stall":
            self._stop.wait(fault.stall)
        elif fault.kind == "reset":
            # SO_LINGER 0: close() sends RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault.kind != "close":
            raise ValueError(f"unknown fault {fault.kind!r}")

    def _forward(self, head: bytes, body: bytes) -> bytes:
        """Send one request upstream (Connection: close) and re-frame its whole answer."""
        lines = head.split(b"\r\n")
        kept = [
            ln for ln in lines[1:] if not ln.lower().startswith((b"connection:", b"keep-alive:"))
        ]
        upstream_head = b"\r\n".join([lines[0], *kept, b"Connection: close"])
        with socket.create_connection((self.upstream_host, self.upstream_port), timeout=30) as up:
            up.sendall(upstream_head + b"\r\n\r\n" + body)
            answer = b""
            while chunk := up.recv(65536):
                answer += chunk
        resp_head, _, resp_body = answer.partition(b"\r\n\r\n")
        if (_header(resp_head, b"transfer-encoding") or b"").lower() == b"chunked":
            resp_body = _dechunk(resp_body)
        resp_lines = resp_head.split(b"\r\n")
        drop = (b"connection:", b"keep-alive:", b"transfer-encoding:", b"content-length:")
        kept = [ln for ln in resp_lines[1:] if not ln.lower().startswith(drop)]
        kept.append(b"Content-Length: " + str(len(resp_body)).encode())
        return b"\r\n".join([resp_lines[0], *kept]) + b"\r\n\r\n" + resp_body


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def _seen(head: bytes, body: bytes, fault: Fault | None) -> Seen:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return Seen(method, path, headers, body, fault.kind if fault else None)


class RewritingTransport(httpx.BaseTransport):
    """An httpx transport wrapper around a real server that bends what passes through.

    For server misbehaviour a real server does not produce on demand (a lying
    totalResults, an ignored or 0-based startIndex): `rewrite_request(request)` may return a
    changed request, `rewrite_body(request, body)` a changed JSON response body.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        rewrite_request: Callable[[httpx.Request], httpx.Request] | None = None,
        rewrite_body: Callable[[httpx.Request, Any], Any] | None = None,
    ) -> None:
        self.inner = inner
        self.rewrite_request = rewrite_request
        self.rewrite_body = rewrite_body
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.rewrite_request is not None:
            request = self.rewrite_request(request)
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if self.rewrite_body is None:
            return response
        content = response.read()
        if not content:
            return response
        body = self.rewrite_body(request, json.loads(content))
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(
            response.status_code, headers=headers, content=json.dumps(body).encode()
        )

    def close(self) -> None:
        self.inner.close()


def with_params(request: httpx.Request, **params: Any) -> httpx.Request:
    """A copy of a request with some query parameters replaced."""
    url = request.url.copy_merge_params({k: str(v) for k, v in params.items()})
    return httpx.Request(request.method, url, headers=request.headers, content=request.content)
