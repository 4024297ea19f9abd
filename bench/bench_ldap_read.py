"""Bulk LDAP read: ldapsearch, plain ldap3 and scimsync's reader on the same 100,000 users.

Run: .venv/bin/python bench/bench_ldap_read.py [--users 100000] [--rounds 3] [--page-size 1000]
Generates the users with toolkit.lab.sampledata, bulk-loads them into a private slapd
(toolkit.lab.slapd), then in one run times a full paged subtree read of every entry (all user
attributes plus entryUUID) with each client, round-robin, and prints the median wall time of
each and its ratio to ldapsearch (the goal for our reader: at most 2x).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ldap3  # noqa: E402

from toolkit.lab import sampledata  # noqa: E402
from toolkit.lab.slapd import Slapd  # noqa: E402
from toolkit.ldap import LdapServerSpec, LdapSource, SourceSpec  # noqa: E402

ATTRIBUTES = ["*", "entryUUID"]


def run_ldapsearch(server: Slapd, password_file: Path, page_size: int) -> int:
    argv = [
        "ldapsearch", "-x", "-H", server.url, "-D", server.admin_dn, "-y", str(password_file),
        "-b", server.suffix, "-E", f"pr={page_size}/noprompt", "(objectClass=*)", *ATTRIBUTES,
    ]  # fmt: skip
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"ldapsearch failed: {done.stderr.strip()}")
    return -1  # not counted: its output goes to /dev/null, as in the reference measurement


def run_plain_ldap3(server: Slapd, page_size: int) -> int:
    conn = server.connect()
    count = sum(
        1
        for _ in conn.extend.standard.paged_search(
            server.suffix,
            "(objectClass=*)",
            ldap3.SUBTREE,
            attributes=ATTRIBUTES,
            paged_size=page_size,
            generator=True,
        )
    )
    conn.unbind()
    return count


def run_ours(server: Slapd, page_size: int) -> int:
    spec = LdapServerSpec(
        server.host, server.port, bind_dn=server.admin_dn, password=server.admin_password
    )
    source = LdapSource(SourceSpec([server.suffix], [spec], page_size=page_size))
    return sum(1 for _ in source.iter_entries(server.suffix, attributes=["*"]))


def _cpu() -> float:
    """CPU seconds used so far by this process and its finished children (ldapsearch)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """(wall seconds, client CPU seconds, entries read) of one run."""
    cpu, started = _cpu(), time.perf_counter()
    count = fn()
    return time.perf_counter() - started, _cpu() - cpu, count


def report(expected: int, args: argparse.Namespace, times: dict, cpu: dict) -> None:
    base = statistics.median(times["ldapsearch"])
    print(f"paged read of {expected} entries, page size {args.page_size}, median of {args.rounds}:")
    print(
        f"  {'client':<26} {'median':>8} {'runs':>24} {'client CPU':>11} {'entries/s':>10} "
        f"{'vs ldapsearch':>14}"
    )
    for name, runs in times.items():
        median = statistics.median(runs)
        shown = " ".join(f"{t:.2f}" for t in runs)
        used = statistics.median(cpu[name])
        print(
            f"  {name:<26} {median:>7.2f}s {shown:>24} {used:>10.2f}s {expected / median:>10,.0f} "
            f"{median / base:>13.2f}x"
        )
    print("(client CPU excludes the server's; wall times vary on a shared machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--skip-plain-ldap3", action="store_true", help="it takes about 10-30 s per round"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ldap-"))
    started = time.perf_counter()
    ldif = sampledata.write_ldif(work / "users.ldif", users=args.users, groups=args.groups)
    server = Slapd(work / "slapd").create()
    server.load_ldif(ldif)
    server.start()
    password_file = work / "admin.pw"
    password_file.write_text(server.admin_password)
    password_file.chmod(0o600)
    took = time.perf_counter() - started
    print(f"{args.users} users and {args.groups} groups generated and loaded in {took:.1f} s")
    try:
        clients: dict[str, Callable[[], int]] = {
            "ldapsearch": lambda: run_ldapsearch(server, password_file, args.page_size),
            "scimsync reader": lambda: run_ours(server, args.page_size),
        }
        if not args.skip_plain_ldap3:
            clients["plain ldap3 paged_search"] = lambda: run_plain_ldap3(server, args.page_size)
        clients["ldapsearch"]()  # warm the server's caches once
        times: dict[str, list[float]] = {name: [] for name in clients}
        cpu: dict[str, list[float]] = {name: [] for name in clients}
        expected = args.users + args.groups + 3
        for _ in range(args.rounds):
            for name, fn in clients.items():
                seconds, cpu_seconds, count = timed(fn)
                if count not in (-1, expected):
                    raise SystemExit(f"{name} read {count} entries, expected {expected}")
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
        report(expected, args, times, cpu)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
