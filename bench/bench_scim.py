"""SCIM client overhead: ScimClient against raw httpx on the same real server.

Run: .venv/bin/python bench/bench_scim.py [--users 500] [--latency-ms 5]
Prints requests per second for GET-by-id, filtered search and PATCH, with ScimClient and
with a bare httpx.Client, and the ratio (1.0 = no overhead). Both talk to a private
scim2-server (toolkit.lab) on loopback, started and stopped here.

Then Bulk against single requests, through the latency proxy of bench_plan (a far server):
creating the same number of users in /Bulk requests, one by one, and one by one on the
pipe's default num-worker-threads (as the Applier sends them), with the ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from bench.bench_plan import ProxyProcess  # noqa: E402
from toolkit.lab.scimserver import ScimServer  # noqa: E402
from toolkit.scim import ScimClient, ScimEndpoint, eq  # noqa: E402


def _rate(fn, items) -> float:
    started = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args()
    server = ScimServer(Path(tempfile.mkdtemp(prefix="bench-scim-"))).start()
    try:
        client = ScimClient(ScimEndpoint(server.url))
        ops = [
            client.bulk_operation("POST", "User", data={"userName": f"bench{i:05}"})
            for i in range(args.users)
        ]
        users = [(r.id, f"bench{r.index:05}") for r in client.bulk(ops)]
        raw = httpx.Client(base_url=server.url, headers={"Accept": "application/scim+json"})
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "t"}],
        }
        cases = {
            "GET by id": (
                lambda u: client.get("User", u[0]),
                lambda u: raw.get(f"/Users/{u[0]}").json(),
            ),
            "GET filter eq": (
                lambda u: client.search("User", eq("userName", u[1])),
                lambda u: raw.get("/Users", params={"filter": f'userName eq "{u[1]}"'}).json(),
            ),
            "PATCH": (
                lambda u: client.patch("User", u[0], patch["Operations"], if_match=False),
                lambda u: raw.patch(f"/Users/{u[0]}", json=patch),
            ),
        }
        print(f"{'case':<16}{'ScimClient/s':>14}{'httpx/s':>10}{'ratio':>8}")
        for name, (ours, bare) in cases.items():
            r_bare = _rate(bare, users)
            r_ours = _rate(ours, users)
            print(f"{name:<16}{r_ours:>14.0f}{r_bare:>10.0f}{r_ours / r_bare:>8.2f}")
        raw.close()
        client.close()
        with ProxyProcess(server.port, args.latency_ms / 1000) as proxy:
            bulk_against_single(f"http://127.0.0.1:{proxy.port}/v2", args.users, args.latency_ms)
    finally:
        server.stop()


def bulk_against_single(url: str, n: int, latency_ms: float, workers: int = 4) -> None:
    """Creates per second through the proxy: /Bulk, one by one, and one by one on threads."""
    client = ScimClient(ScimEndpoint(url))

    def created(prefix: str) -> list[dict]:
        return [{"userName": f"{prefix}{i:05}"} for i in range(n)]

    started = time.perf_counter()
    ops = [client.bulk_operation("POST", "User", data=body) for body in created("b")]
    assert all(r.ok for r in client.bulk(ops))
    bulk = n / (time.perf_counter() - started)
    one = _rate(lambda body: client.create("User", body), created("s"))
    with ThreadPoolExecutor(workers) as pool:
        started = time.perf_counter()
        list(pool.map(lambda body: client.create("User", body), created("t")))
        threads = n / (time.perf_counter() - started)
    caps = client.discovery.capabilities
    print(
        f"\ncreates through a {latency_ms:g} ms proxy ({n} users; Bulk up to "
        f"{caps.bulk_max_operations} operations a request)"
    )
    print(f"{'way':<28}{'creates/s':>10}{'vs Bulk':>9}")
    for name, rate in (
        ("/Bulk", bulk),
        ("one by one", one),
        (f"one by one, {workers} threads", threads),
    ):
        print(f"{name:<28}{rate:>10.0f}{rate / bulk:>9.2f}")
    client.close()


if __name__ == "__main__":
    main()
