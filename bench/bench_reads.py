"""Incremental and parallel reads (issue 20), on a private slapd and scim2-server.

Run: .venv/bin/python -m bench reads -- [--users 100000] [--groups 50] [--changed 0.01]
     [--workers 4] [--latency-ms 5]

1. Loads sampledata into slapd (slapadd), fills scim2-server with a first resync, and runs
   one dry run (it reads what the fill wrote; from then on a run reads what changed).
2. Changes `--changed` of the users on each side: `title` with ldapmodify in LDAP, and
   `title` with a PATCH on other users in SCIM (as an application beside the pipe would).
3. Times a dry run that reads only what changed, then a `--full-read` dry run of the same
   data (both compare every object, so the quick check's keys cannot make them differ), and
   checks the two plans are identical: every row, every request. Goal: the incremental dry
   run takes at most 10% of the full one.
4. Reads every user through a loopback proxy delaying each request by --latency-ms (a
   hosted service's distance; bench_plan's proxy), sequentially and with --workers pages in
   flight. Goal: the parallel read is at least 3x the sequential one.
5. Reads every user entry from slapd on 1 connection and split across 4 (read-connections,
   toolkit.ldap.split), on loopback and through the proxy delaying by --ldap-latency-ms; no
   goal, the ratio is printed. --only-ldap-split runs only this part (no SCIM server).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from bench_plan import ProxyProcess, write_config  # noqa: E402
from ldapedit import modify_titles  # noqa: E402

from toolkit.lab import sampledata  # noqa: E402
from toolkit.lab.scimserver import ScimServer  # noqa: E402
from toolkit.lab.slapd import Slapd  # noqa: E402
from toolkit.sync import reads  # noqa: E402

GOALS = {"incremental share": 0.10, "parallel speed-up": 3.0}


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def edit_scim_titles(base_url: str, ids: list[str], workers: int) -> float:
    """PATCH `title` on these users, as an application beside the pipe would."""
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Edited in SCIM"}],
    }
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=600) as client:

        def patch(rid: str) -> None:
            response = client.patch(f"/Users/{rid}", json=body)
            if response.status_code not in (200, 204):
                raise SystemExit(f"PATCH /Users/{rid}: {response.status_code} {response.text}")

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(patch, ids))
    return time.perf_counter() - started


def timed_dry_run(config: Path, full_read: bool):
    """A dry run's plan, its seconds (config loaded, session opened, closed) and where they went."""
    from toolkit.config import load_config
    from toolkit.sync.batch import RunOptions, make_plan, open_session

    started = time.perf_counter()
    options = RunOptions(full_read=full_read, full_compare=True)
    with open_session(load_config(config), options) as session:
        plan = make_plan(session, options)
        t = session.timings
    seconds = time.perf_counter() - started
    where = (
        f"state {t.state_read:.1f} s, LDAP read {t.ldap_read:.1f} s, SCIM read {t.scim_read:.1f} s, "
        f"plan {t.plan:.1f} s, state write {t.state_write:.1f} s"
    )
    return plan, seconds, where


@contextlib.contextmanager
def requests_logged(path: Path):
    """The SCIM client's debug lines (each request with its time) into `path`."""
    handler = logging.FileHandler(path)
    logger = logging.getLogger("toolkit.scim")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def slowest(path: Path, n: int = 6) -> list[str]:
    """The requests of a logged run, slowest first: `GET /Users?count=0 -> 200 in 812 ms`."""
    found = []
    for line in path.read_text().splitlines():
        match = re.match(r"(\w+) (\S+) -> (\d+) in ([\d.]+) ms", line)
        if match:
            method, url, _, ms = match.groups()
            found.append((float(ms), f"{method} {unquote(url.split('/v2', 1)[-1])} {ms} ms"))
    found.sort(reverse=True)
    return [text for _, text in found[:n]] + [f"{len(found)} requests in all"]


def plan_rows(plan) -> list[str]:
    """Every row as the saved plan writes it (requests included), in a stable order."""
    from toolkit.plan.report import _row_json

    return sorted(json.dumps(_row_json(r), sort_keys=True, default=str) for r in plan.rows)


def read_users(url: str, workers: int) -> tuple[int, float]:
    from toolkit.scim.client import ScimClient
    from toolkit.scim.endpoint import ScimEndpoint

    with ScimClient(ScimEndpoint(url, response_timeout=600)) as client:
        client.discovery  # noqa: B018 - discovery is not what is timed
        started = time.perf_counter()
        n = sum(1 for _ in client.iter_resources("User", workers=workers))
        return n, time.perf_counter() - started


def read_ldap_users(
    slapd: Slapd, port: int, connections: int, listing: bool, ids: list[str] | None = None
) -> tuple[int, float]:
    """Every user entry (or, `listing`, its id and stamps) read and kept, as a dry run reads
    them (kept: entries dropped at once would spare one connection the garbage collector's
    passes over the entries the split read holds): the best of 3."""
    from toolkit.ldap import LdapServerSpec, LdapSource, SourceSpec

    server = LdapServerSpec(slapd.host, port, bind_dn=slapd.admin_dn, password=slapd.admin_password)
    spec = SourceSpec([slapd.suffix], [server], read_connections=connections)
    wanted = ["entryUUID", *reads.STAMPS] if listing else None
    best, n = float("inf"), 0
    for _ in range(3):
        with LdapSource(spec) as source:
            started = time.perf_counter()  # the split's planning (schema, ids) is timed too
            found = list(
                source.iter_entries(
                    slapd.suffix, "(objectClass=inetOrgPerson)", wanted, split=True, ids=ids
                )
            )
            best, n = min(best, time.perf_counter() - started), len(found)
        del found
    return n, best


def bench_ldap_split(slapd: Slapd, latency_ms: float) -> None:
    """1 connection against 4, on loopback and through the latency proxy (no goal)."""
    links = [("loopback", None)] + (
        [(f"a {latency_ms:g} ms proxy", latency_ms)] if latency_ms else []
    )
    from toolkit.ldap import LdapServerSpec, LdapSource, SourceSpec

    server = LdapServerSpec(
        slapd.host, slapd.port, bind_dn=slapd.admin_dn, password=slapd.admin_password
    )
    with LdapSource(SourceSpec([slapd.suffix], [server])) as source:
        found = source.iter_entries(slapd.suffix, "(objectClass=inetOrgPerson)", ["entryUUID"])
        ids = [e["entryuuid"][0] for e in found]
    for link, delay in links:
        with contextlib.ExitStack() as stack:
            port = slapd.port
            if delay is not None:
                port = stack.enter_context(ProxyProcess(slapd.port, delay / 1000)).port
            for what, listing in (("full read", False), ("id listing", True)):
                n1, one = read_ldap_users(slapd, port, 1, listing)
                n4, four = read_ldap_users(slapd, port, 4, listing)
                # as a run after the first splits: bounds from the ids its last read found
                n4h, hinted = read_ldap_users(slapd, port, 4, listing, ids)
                if not n1 == n4 == n4h:
                    raise SystemExit(f"the split {what} read {n4}/{n4h} entries, one search {n1}")
                print(
                    f"LDAP {what} of {n1} users through {link}: 1 connection {one:.2f} s, "
                    f"4 connections {four:.2f} s (ids listed first, speed-up {one / four:.2f}x), "
                    f"{hinted:.2f} s (ids of a last read, speed-up {one / hinted:.2f}x) "
                    f"(load {os.getloadavg()[0]:.2f})"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--changed", type=float, default=0.01, help="share changed on each side")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--ldap-latency-ms", type=float, default=5.0)
    parser.add_argument("--only-ldap-split", action="store_true", help="skip the SCIM parts")
    args, _ = parser.parse_known_args()  # `make bench` passes every bench the same options

    from toolkit.config import load_config
    from toolkit.sync.batch import RunOptions, resync

    work = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    load = os.getloadavg()[0]
    slapd = Slapd(work / "slapd").create()
    scim: ScimServer | None = None
    try:
        ldif = sampledata.write_ldif(work / "sample.ldif", args.users, args.groups)
        slapd.load_ldif(ldif)
        slapd.start()
        if args.only_ldap_split:
            bench_ldap_split(slapd, args.ldap_latency_ms)
            print(f"\nload average 1 min: {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
            return
        scim = ScimServer(work / "scim").start()
        config = write_config(work, slapd, scim, args.workers)
        fill = write_config(work, slapd, scim, args.workers, args.users + 1, "fill")
        started = time.perf_counter()
        if resync(load_config(fill), RunOptions()).applied.failed:
            raise SystemExit("the filling resync failed")
        print(
            f"fill: {args.users} users + {args.groups} groups in {time.perf_counter() - started:.1f} s"
        )
        # a read starts SAFETY before the server's time when the last began: a run within that
        # window of the fill reads the fill's last writes again (a schedule's runs are apart)
        time.sleep(reads.SAFETY.total_seconds() + 2)
        plan, seconds, _ = timed_dry_run(config, full_read=False)
        print(f"first dry run after the fill ({seconds:.1f} s):")
        for note in plan.reads:
            print(f"  {_text(note)}")
        del plan

        n = max(1, int(args.users * args.changed))
        people = [e["dn"][0] for e in sampledata.generate(args.users, 0) if "uid" in e]
        in_ldap = people[::2][:n]
        with httpx.Client(base_url=scim.url, timeout=600) as client:
            ids = []
            start = 1
            while len(ids) < 2 * n:  # users of the other half: not the ones changed in LDAP
                page = client.get("/Users", params={"startIndex": start, "count": 1000})
                found = page.json().get("Resources", [])
                if not found:
                    break
                ids += [r["id"] for r in found]
                start += len(found)
        in_scim = ids[1::2][:n]
        print(
            f"\nchanged: {len(in_ldap)} titles with ldapmodify in "
            f"{modify_titles(slapd, work, in_ldap, 'Bench Reads'):.1f} s, {len(in_scim)} titles "
            f"by PATCH in SCIM in {edit_scim_titles(scim.url, in_scim, args.workers):.1f} s"
        )

        with requests_logged(work / "requests.log"):
            incremental, inc_seconds, inc_timings = timed_dry_run(config, full_read=False)
        inc_rows = plan_rows(incremental)
        inc_reads = incremental.reads
        del incremental
        full, full_seconds, full_timings = timed_dry_run(config, full_read=True)
        same = plan_rows(full) == inc_rows
        share = inc_seconds / full_seconds
        print(f"\nincremental dry run: {inc_seconds:.1f} s ({inc_timings})")
        print("  its SCIM requests, slowest first: " + "; ".join(slowest(work / "requests.log")))
        for note in inc_reads:
            print(f"  {_text(note)}")
        print(f"--full-read dry run: {full_seconds:.1f} s ({full_timings})")
        for note in full.reads:
            print(f"  {_text(note)}")
        print(
            f"  goals: incremental / full = {share:.1%} <= 10% "
            f"{verdict(share <= GOALS['incremental share'])}; plans identical "
            f"({len(inc_rows)} rows, every request): {verdict(same)}; "
            f"totals {full.totals()}"
        )
        del full

        if args.latency_ms:
            with ProxyProcess(scim.port, args.latency_ms / 1000) as proxy:
                url = scim.url.replace(f":{scim.port}", f":{proxy.port}", 1)
                n_seq, sequential = read_users(url, 1)
                n_par, parallel = read_users(url, args.workers)
            speed = sequential / parallel
            print(
                f"\nfull SCIM read of {n_seq} users through a {args.latency_ms:g} ms latency proxy: "
                f"sequential {sequential:.1f} s, {args.workers} pages in flight {parallel:.1f} s "
                f"({n_par} users)"
            )
            print(
                f"  goal: parallel / sequential speed = {speed:.2f}x >= 3x "
                f"{verdict(speed >= GOALS['parallel speed-up'])}"
            )
        print()
        bench_ldap_split(slapd, args.ldap_latency_ms)
        print(
            f"\nload average 1 min: {load:.2f} at start, {os.getloadavg()[0]:.2f} at end "
            f"({os.cpu_count()} CPUs)"
        )
    finally:
        if scim is not None:
            scim.stop()
        slapd.stop()
        shutil.rmtree(work, ignore_errors=True)


def _text(note: dict) -> str:
    from toolkit.sync.reads import ReadNote

    return ReadNote(**note).text()


if __name__ == "__main__":
    main()
