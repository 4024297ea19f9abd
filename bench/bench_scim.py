"""SCIM client overhead: ScimClient against raw httpx on the same real server.

Run: .venv/bin/python bench/bench_scim.py [--users 500]
Prints requests per second for GET-by-id, filtered search and PATCH, with ScimClient and
with a bare httpx.Client, and the ratio (1.0 = no overhead). Both talk to a private
scim2-server (toolkit.lab) on loopback, started and stopped here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

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
    finally:
        server.stop()


if __name__ == "__main__":
    main()
