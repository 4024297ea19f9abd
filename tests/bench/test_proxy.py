"""The bench's latency proxy delays each chunk once, from when it arrived, as a network link
does: a request whose headers and body come in two writes travels one delay, not two (the
apply bench compares clients by their round trips through it)."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_plan.py"
DELAY, GAP = 0.5, 0.1  # one delay after two writes GAP apart: 0.6 s; two delays: 1.0 s


def _bench_plan(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))  # as when run: its neighbours importable
    spec = importlib.util.spec_from_file_location("bench_plan", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _receiver() -> tuple[socket.socket, list[tuple[float, bytes]], threading.Thread]:
    """A server that records when each chunk reached it, until the peer closes."""
    server = socket.create_server(("127.0.0.1", 0))
    got: list[tuple[float, bytes]] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(1 << 16):
                got.append((time.monotonic(), data))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, got, thread


def test_each_chunk_arrives_one_delay_after_it_was_sent(monkeypatch):
    server, got, thread = _receiver()
    with server, _bench_plan(monkeypatch).LatencyProxy(server.getsockname()[1], DELAY) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sent_head = time.monotonic()
            client.sendall(b"head")
            time.sleep(GAP)
            sent_body = time.monotonic()
            client.sendall(b"body")
            time.sleep(DELAY + GAP)  # both delivered before the close follows them
        thread.join(10)
    assert b"".join(data for _, data in got) == b"headbody"
    head_at = next(at for at, data in got if data.startswith(b"head"))
    body_at = got[-1][0]
    assert head_at >= sent_head + DELAY and body_at >= sent_body + DELAY  # never early
    # the body waited for its own delay only, not for the head's first (that would be 1.0 s)
    assert body_at - sent_head < DELAY + GAP + 0.25, body_at - sent_head
