"""Dry run and resync apply at scale, on a private slapd and scim2-server.

Run: .venv/bin/python bench/bench_plan.py [--users 100000] [--groups 50] [--modify 10000]
     [--workers 4] [--rounds 5] [--naive N] [--scim-page-size N] [--latency-ms 5]
     [--plan-repeats 4] [--profile] [--save-inputs FILE]

1. Loads sampledata (users + groups) into slapd offline (slapadd), fills scim2-server with a
   first resync (groups in one POST each; its rate is printed, for information).
2. Two dry runs, each in a fresh child process: LDAP read, SCIM read and plan (mapping,
   correlation, diff, guards: session.timings), the summary frame, the plan's share of the
   total, and the child's peak RSS (VmHWM of /proc/self/status). The first compares every
   object (nothing was found unchanged before) and records the quick check's keys; then
   `title` changes on `--modify` users in LDAP (ldapmodify), and the second dry run maps and
   compares only objects whose inputs changed (toolkit.plan.quickcheck): a scheduled run's
   case. After each dry run, its build() runs again --plan-repeats times on the same inputs
   (CPU-timed: one sample says little on a shared machine); --profile adds a cProfile of it.
3. Apply: the dry run's modify rows applied by the Applier (the code resync runs, at
   `--workers` concurrency), then the same prepared requests (method, URL, JSON body) sent
   by a bare httpx loop at the same concurrency, then by a naive sequential loop; all three
   against the same server in the same state, in this one run. Every PATCH is an idempotent
   `replace title`, and one untimed pass applies the changes first, so each timed round asks
   the server for the same work; --rounds rounds of the three, in rotating order, medians
   reported (later Applier rounds send the same rows again).
4. The same three again through a loopback proxy (a process of its own) that delays each
   request by --latency-ms:
   a SCIM service that far away, as hosted ones are. On loopback the server's CPU, which the
   2 cores share with the client, limits what concurrency can buy.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pickle
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from ldapedit import modify_titles  # noqa: E402

from toolkit.lab import sampledata  # noqa: E402
from toolkit.lab.scimserver import ScimServer  # noqa: E402
from toolkit.lab.slapd import Slapd  # noqa: E402
from toolkit.lab.syncyaml import write_pipe_config  # noqa: E402

PIPE = "bench"
GOALS = {"plan share": 0.25, "plan seconds": 5.0, "peak MB": 1536, "vs bare": 0.90, "vs naive": 3.0}


# --- the dry run, in a child process (its peak RSS is the dry run's alone) ---------------------


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over exec
    from the forking parent, so a child would report the bench's own peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_reference(users: int = 2000, repeats: int = 5) -> float:
    """Seconds of a fixed CPU workload (the default mapping maps and normalizes the same
    2,000 sample users; the fastest of `repeats`), timed beside the plan step: the same work
    in every run, so a window where even the fastest repeat is slow shows here."""
    from toolkit.mapping import load_mapping

    mapping = load_mapping()["User"]
    entries = [
        {k.lower(): v for k, v in e.items()}
        for e in sampledata.generate(users, groups=0, seed=1)
        if "person" in e["objectClass"]
    ]
    for entry in entries:
        entry["dn"] = entry["dn"][0]
    # Without the cyclic collector, as build() runs: a collection of the dry run's whole heap
    # falling inside one repeat would time the collector, not the machine.
    gc.collect()
    gc.disable()
    try:
        times = []
        for _ in range(repeats):
            started = time.process_time()
            for entry in entries:
                mapping.normalize(mapping.to_scim(entry))
            times.append(time.process_time() - started)
    finally:
        gc.enable()
    return min(times)


def child_dry_run(
    config_path: Path,
    rows_out: Path,
    page_size: int | None,
    profile: bool,
    save_inputs: Path | None = None,
    repeats: int = 0,
) -> None:
    from toolkit.config import load_config
    from toolkit.scim.client import ScimClient
    from toolkit.sync import batch

    baseline = peak_rss_mb()
    rss: dict[str, float] = {}
    captured: dict[str, object] = {}
    real_build, real_read_classes, real_read_targets = (
        batch.build,
        batch.read_classes,
        batch.read_targets,
    )

    def read_classes(*args):  # the resident set after each step, for where memory goes
        out = real_read_classes(*args)
        rss["after LDAP read"] = current_rss_mb()
        return out

    reference: list[float] = []  # the CPU reference right before and right after the plan
    reference_seconds = 0.0  # wall time of the first: inside the SCIM read's, taken out below

    def read_targets(*args):
        nonlocal reference_seconds
        out = real_read_targets(*args)
        rss["after SCIM read"] = current_rss_mb()
        started = time.perf_counter()
        reference.append(cpu_reference())
        reference_seconds = time.perf_counter() - started
        return out

    def build(inputs):
        captured["inputs"] = inputs  # for the profile, after the timed run
        return real_build(inputs)

    batch.build, batch.read_classes, batch.read_targets = build, read_classes, read_targets
    options = batch.RunOptions()
    cpu_reference()  # its first run warms up what the ones timed beside the plan use
    started = time.perf_counter()
    with batch.open_session(load_config(config_path), options) as session:
        if page_size:
            session.client.close()
            session.client = ScimClient(replace(session.client.endpoint, page_size=page_size))
        plan = batch.make_plan(session, options)
        total = time.perf_counter() - started - reference_seconds
        reference.append(cpu_reference())
        timings = session.timings
        timings.scim_read -= reference_seconds
        page = session.client.page_size_for()
    rss["after plan"] = current_rss_mb()
    started = time.perf_counter()
    summary = plan.summary()
    summary_seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    with rows_out.open("wb") as out:
        pickle.dump([r for r in plan.rows if r.requests], out)
    rows, totals, skipped = len(plan), plan.totals(), plan.quick_checked
    assert summary.loc["total"].sum() == rows
    del plan, summary
    if save_inputs:  # build()'s inputs, to profile or tune it offline on real data
        save_plan_inputs(captured["inputs"], save_inputs)
    again = build_again(captured["inputs"], repeats)
    profiled = build_profile(captured["inputs"]) if profile else {}
    print(
        json.dumps(
            {
                "state_read": timings.state_read,
                "ldap_read": timings.ldap_read,
                "scim_read": timings.scim_read,
                "plan": timings.plan,
                "plan_cpu": timings.plan_cpu,
                "plan_again": again,
                "reference": reference,
                "state_write": timings.state_write,
                "skipped": skipped,
                "total": total,
                "summary": summary_seconds,
                "rows": rows,
                "totals": totals,
                "peak_mb": peak,
                "baseline_mb": baseline,
                "rss_mb": rss,
                "scim_page_size": page,
                **profiled,
            }
        )
    )


def save_plan_inputs(inputs, path: Path) -> None:
    """Pickle build()'s inputs; each class's mapping goes as its resource name and the
    validator as its discovery (their compiled functions do not pickle): load_plan_inputs()
    takes the mappings from the same mapping file and builds the validator again."""
    classes = [replace(read, mapping=read.mapping.name) for read in inputs.classes]
    validator = inputs.validator.discovery if inputs.validator is not None else None
    with path.open("wb") as out:
        saved = replace(inputs, classes=classes, validator=validator)
        pickle.dump(saved, out, protocol=pickle.HIGHEST_PROTOCOL)


def load_plan_inputs(path: Path, mapping_file: Path | None = None):
    from toolkit.mapping import load_mapping
    from toolkit.scim.validate import Validator

    mappings = load_mapping(mapping_file)
    with path.open("rb") as handle:
        inputs = pickle.load(handle)
    inputs.classes = [replace(read, mapping=mappings[read.mapping]) for read in inputs.classes]
    if inputs.validator is not None:
        inputs.validator = Validator(inputs.validator)
    return inputs


def build_again(inputs, times: int) -> list[float]:
    """CPU seconds of build() on the dry run's own inputs, `times` more times. On a shared
    machine one run is one sample: the same build on the same inputs has measured anywhere
    from 0.94 to 1.66 s within a minute (30,000 users). These give the spread."""
    from toolkit.plan.engine import build

    runs = []
    for _ in range(times):
        gc.collect()
        started = time.process_time()
        build(inputs)  # (it pauses the cyclic GC itself)
        runs.append(time.process_time() - started)
    return runs


def build_profile(inputs) -> dict[str, object]:
    """A cProfile of build() on the dry run's inputs (after the timed run)."""
    from toolkit.plan.engine import build

    out: dict[str, object] = {}
    gc.collect()
    profiler = cProfile.Profile()
    profiler.runcall(build, inputs)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
    out["profile"] = text.getvalue()
    return out


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- setup -------------------------------------------------------------------------------------


def write_config(
    folder: Path, slapd: Slapd, scim: ScimServer, workers: int, chunk: int = 100, name: str = "sync"
) -> Path:
    # every config in `folder` shares its state store
    return write_pipe_config(
        folder / f"{name}.yaml",
        slapd,
        scim.url,
        prefix="bench",
        pipe=PIPE,
        change_detector=None,
        # scim2-server needs minutes to answer one page of 50 groups holding 112,000
        # members; the client would halve the page after each response-timeout (10 s by
        # default), and the bench times the read, not those retries
        scim_props={"response-timeout": "600 s"},
        pipe_props={"num-worker-threads": workers, "member-chunk-size": chunk},
    )


# --- the three ways of sending ---------------------------------------------------------------


def prepared(base_url: str, rows) -> list[tuple[str, str, bytes]]:
    return [
        (r.method, base_url + r.path, json.dumps(r.body, ensure_ascii=False).encode())
        for row in rows
        for r in row.requests
    ]


HEADERS = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}


def bare_loop(requests: list[tuple[str, str, bytes]], workers: int) -> float:
    """The server's limit at this concurrency: one pooled client, `workers` threads."""
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    with httpx.Client(limits=limits, timeout=60, headers=HEADERS) as client:

        def send(item: tuple[str, str, bytes]) -> int:
            method, url, body = item
            response = client.request(method, url, content=body)
            if response.status_code >= 300:
                raise SystemExit(f"{method} {url}: {response.status_code} {response.text[:200]}")
            return response.status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(send, requests):
                pass
        return time.perf_counter() - started


def naive_loop(requests: list[tuple[str, str, bytes]]) -> float:
    """One request after the other, as a first script would do it (with a kept-alive client)."""
    with httpx.Client(timeout=60, headers=HEADERS) as client:
        started = time.perf_counter()
        for method, url, body in requests:
            response = client.request(method, url, content=body)
            if response.status_code >= 300:
                raise SystemExit(f"{method} {url}: {response.status_code} {response.text[:200]}")
        return time.perf_counter() - started


class LatencyProxy:
    """A loopback TCP proxy delivering what the client sends `delay` seconds late: a SCIM
    server that far away, as hosted services are (the answers come back at once)."""

    def __init__(self, target_port: int, delay: float):
        self.target_port, self.delay = target_port, delay
        self.loop = asyncio.new_event_loop()
        self.port = 0

    def __enter__(self) -> LatencyProxy:
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, self.delay), self._pump(up_reader, writer, 0.0)
            )
        except asyncio.CancelledError:  # the proxy is closing
            writer.close()
            up_writer.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float):
        """Each chunk reaches `dst` `delay` after it arrived, as over a network link. The
        reader never waits for the writer: a chunk read only after an earlier one's delay
        would take both delays (a request whose headers and body came in two writes, the
        second a moment late, would travel 10 ms instead of 5)."""
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                arrived, data = await chunks.get()
                if not data:
                    return
                await asyncio.sleep(max(0.0, arrived + delay - self.loop.time()))
                dst.write(data)
                await dst.drain()

        writer = asyncio.ensure_future(deliver())
        try:
            while data := await src.read(1 << 16):
                chunks.put_nowait((self.loop.time(), data))
            chunks.put_nowait((0.0, b""))
            await writer
        except (ConnectionError, asyncio.CancelledError):
            writer.cancel()
        finally:
            dst.close()


def apply_rounds(session, rows, base_url: str, workers: int, rounds: int, naive_n: int | None):
    """Seconds of each round of the Applier, the bare loop and the naive loop (rotating order),
    all sending the dry run's requests to `base_url`."""
    from toolkit.plan.plan import Plan
    from toolkit.scim.client import ScimClient
    from toolkit.sync.apply import Applier

    requests = prepared(base_url, rows)
    client = ScimClient(replace(session.client.endpoint, url=base_url))
    # One untimed pass first: the dry run's PATCHes change each resource once, and the round
    # that made those changes asked the server for more work than the rounds after it (a new
    # version stored). After this pass every timed round sends replaces of the values there.
    bare_loop(requests, workers)
    for row in rows:
        row.etag = None  # the versions the dry run read are gone

    def applier() -> float:
        plan = Plan(pipe=PIPE, rows=rows)
        run = Applier(plan, client, session.store, workers=workers)
        started = time.perf_counter()
        result = run.run()
        seconds = time.perf_counter() - started
        if result.failed:
            raise SystemExit(f"applying failed {result.failed} rows: {result.failures[0].error}")
        return seconds

    ways = {
        "Applier": applier,
        "bare": lambda: bare_loop(requests, workers),
        "naive": lambda: naive_loop(requests[:naive_n]),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    try:
        for i in range(rounds):
            for name in names[i % 3 :] + names[: i % 3]:
                times[name].append(ways[name]())
    finally:
        client.close()
    return times, len(requests), len(requests[:naive_n])


def print_rates(times, n: int, n_naive: int, workers: int, where: str) -> None:
    rate = {
        "Applier": n / statistics.median(times["Applier"]),
        "bare": n / statistics.median(times["bare"]),
        "naive": n_naive / statistics.median(times["naive"]),
    }
    rounds = len(times["Applier"])
    print(
        f"\napply {where}: {n} PATCH requests (replace title), {workers} workers, "
        f"median of {rounds} rounds in rotating order:"
    )
    for name, label in (
        ("Applier", "Applier (resync's apply)"),
        ("bare", f"bare httpx loop, {workers} threads"),
        ("naive", f"naive sequential loop ({n_naive} req)"),
    ):
        shown = " ".join(f"{t:.1f}" for t in times[name])
        print(f"  {label:<36} {rate[name]:7,.0f} req/s   runs (s): {shown}")
    vs_bare, vs_naive = rate["Applier"] / rate["bare"], rate["Applier"] / rate["naive"]
    print(
        f"  goals: Applier / bare = {vs_bare:.2f} >= 0.90 {verdict(vs_bare >= GOALS['vs bare'])}; "
        f"Applier / naive = {vs_naive:.2f} >= 3 {verdict(vs_naive >= GOALS['vs naive'])}; "
        f"bare / naive = {rate['bare'] / rate['naive']:.2f} (what concurrency buys here)"
    )


class ProxyProcess:
    """A LatencyProxy in a process of its own, as the network would be: in the bench's
    process its event loop would take the GIL from the client's threads, slowing a client
    that does more Python per request (the Applier) more than the bare loop."""

    def __init__(self, target_port: int, delay: float):
        self.args = [sys.executable, __file__, "--proxy", str(target_port), str(delay)]
        self.port = 0

    def __enter__(self) -> ProxyProcess:
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.strip().isdigit():
            self.process.kill()
            raise SystemExit(f"the latency proxy did not start: {line!r}")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.stdin:
            self.process.stdin.close()  # the proxy's signal to stop
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def serve_proxy(target_port: int, delay: float) -> None:
    """The child side of ProxyProcess: its port on stdout, then serve until stdin closes."""
    with LatencyProxy(target_port, delay) as proxy:
        print(proxy.port, flush=True)
        sys.stdin.read()


# --- the run -------------------------------------------------------------------------------------


def dry_run_child(config: Path, rows_file: Path, args, save_inputs: Path | None) -> dict:
    """One dry run in a fresh child process; its figures (the child's last output line)."""
    child = [sys.executable, __file__, "--child", str(config), str(rows_file)]
    if args.scim_page_size:
        child += ["--scim-page-size", str(args.scim_page_size)]
    if args.profile:
        child.append("--profile")
    child += ["--plan-repeats", str(args.plan_repeats)]
    if save_inputs:
        child += ["--save-inputs", str(save_inputs.resolve())]
    done = subprocess.run(child, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"dry run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report_dry_run(title: str, dry: dict) -> None:
    total = dry["state_read"] + dry["ldap_read"] + dry["scim_read"] + dry["plan"]
    share = dry["plan"] / total
    totals = dry["totals"]
    print(
        f"\n{title}\n  {dry['rows']} objects ({totals['modify']} modify, "
        f"{totals['unchanged']} unchanged; {dry['skipped']} skipped by the quick check):"
    )
    lines = [
        ("state read (links, keys)", dry["state_read"]),
        ("LDAP read", dry["ldap_read"]),
        (f"SCIM read (page size {dry['scim_page_size']})", dry["scim_read"]),
        ("mapping + correlation + diff", dry["plan"]),
    ]
    for label, seconds in lines:
        print(f"  {label:<33}{seconds:8.2f} s  {seconds / total:6.1%}")
    print(f"  total (make_plan)                {dry['total']:8.2f} s")
    print(f"  CPU time of the plan step        {dry['plan_cpu']:8.2f} s (wall above)")
    runs = [dry["plan_cpu"], *dry["plan_again"]]
    if dry["plan_again"]:
        again = ", ".join(f"{t:.2f}" for t in dry["plan_again"])
        print(
            f"  the same build again (CPU)       {again} s: median of {len(runs)} "
            f"{statistics.median(runs):.2f} s, fastest {min(runs):.2f} s"
        )
    before, after = dry["reference"]
    print(
        f"  CPU reference (fixed work)       {before * 1000:8.0f} ms right before the plan step,"
        f" {after * 1000:.0f} ms right after: plan CPU ="
        f" {dry['plan_cpu'] / statistics.mean(dry['reference']):.1f} x the reference"
    )
    print(f"  keys saved (state, not in total) {dry['state_write']:8.2f} s")
    print(f"  summary frame (not in total)     {dry['summary']:8.2f} s")
    print(
        f"  peak RSS of the dry-run process  {dry['peak_mb']:8.0f} MB (imports alone: {dry['baseline_mb']:.0f} MB)"
    )
    median = statistics.median(runs)
    print(
        f"  goals: plan share {share:.1%} < 25% {verdict(share < GOALS['plan share'])}; "
        f"plan {dry['plan']:.2f} s < 5 s {verdict(dry['plan'] < GOALS['plan seconds'])}"
        + (
            f" (median of {len(runs)} builds {median:.2f} s "
            f"{verdict(median < GOALS['plan seconds'])})"
            if dry["plan_again"]
            else ""
        )
        + f"; peak {dry['peak_mb']:.0f} MB < 1536 MB {verdict(dry['peak_mb'] < GOALS['peak MB'])}"
    )
    print("  resident set: " + ", ".join(f"{k} {v:.0f} MB" for k, v in dry["rss_mb"].items()))
    if "profile" in dry:
        print(f"\ncProfile of build() on the same inputs:\n{dry['profile']}")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--modify", type=int, default=10_000, help="users whose title changes")
    parser.add_argument("--workers", type=int, default=4, help="apply concurrency (all loops)")
    parser.add_argument("--naive", type=int, default=0, help="requests for the naive loop (0: all)")
    parser.add_argument(
        "--scim-page-size",
        type=int,
        default=0,
        help="SCIM read page size (0: the client's choice, the server's maximum up to 1000)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="apply rounds (median reported)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=5.0,
        help="apply again through a proxy adding this one-way delay (0: skip)",
    )
    parser.add_argument(
        "--plan-repeats",
        type=int,
        default=4,
        help="build() again on each dry run's own inputs, CPU-timed (the spread of one machine)",
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of build()")
    parser.add_argument(
        "--save-inputs", type=Path, help="pickle the dry run's build() inputs to this file"
    )
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "ROWS"), help=argparse.SUPPRESS)
    parser.add_argument("--proxy", nargs=2, metavar=("PORT", "DELAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.proxy:
        serve_proxy(int(args.proxy[0]), float(args.proxy[1]))
        return
    if args.child:
        child_dry_run(
            Path(args.child[0]),
            Path(args.child[1]),
            args.scim_page_size,
            args.profile,
            args.save_inputs,
            args.plan_repeats,
        )
        return

    from toolkit.config import load_config
    from toolkit.sync.batch import RunOptions, open_session, resync

    work = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    load = os.getloadavg()[0]
    slapd = Slapd(work / "slapd").create()
    scim: ScimServer | None = None
    try:
        started = time.perf_counter()
        ldif = sampledata.write_ldif(work / "sample.ldif", args.users, args.groups)
        slapd.load_ldif(ldif)
        slapd.start()
        scim = ScimServer(work / "scim").start()
        config = write_config(work, slapd, scim, args.workers)
        # The fill creates each group with all its members in one POST: created in chunks of
        # 100 (the default), scim2-server answers every chunk with the whole group, and the fill
        # of 100,000 users took 35 min instead of about 10. The measured runs use the default.
        fill_config = write_config(work, slapd, scim, args.workers, args.users + 1, "fill")
        objects = args.users + args.groups
        print(
            f"{args.users} users + {args.groups} groups loaded into slapd in {time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        filled = resync(load_config(fill_config), RunOptions())
        seconds = time.perf_counter() - started
        if filled.applied.failed:
            raise SystemExit(f"the filling resync failed {filled.applied.failed} objects")
        print(
            f"filling resync (creates, {args.workers} workers): {objects} objects in {seconds:.1f} s "
            f"({objects / seconds:,.0f} objects/s, read + plan + apply)"
        )

        # --- the dry runs: the first compares every object, the second skips those whose
        # inputs are as when the first found them unchanged (toolkit.plan.quickcheck) ---
        rows_file = work / "rows.pickle"
        first = dry_run_child(config, rows_file, args, save_inputs=None)
        report_dry_run("first dry run after the fill: every object compared", first)

        people = [e["dn"][0] for e in sampledata.generate(args.users, 0) if "uid" in e]
        step = max(1, len(people) // max(1, args.modify))
        changed = people[::step][: args.modify]
        print(
            f"\nldapmodify of {len(changed)} titles in {modify_titles(slapd, work, changed, 'Bench Title'):.1f} s"
        )
        dry = dry_run_child(config, rows_file, args, save_inputs=args.save_inputs)
        report_dry_run("dry run after the edits: objects found unchanged skipped", dry)

        # --- apply: the Applier, the same requests bare, and naive; rounds in rotating order ---
        with rows_file.open("rb") as handle:
            rows = pickle.load(handle)
        if not rows:
            raise SystemExit("the dry run found nothing to apply")
        naive_n = args.naive or None
        with open_session(load_config(config), RunOptions()) as session:
            base_url = session.client.endpoint.base_url
            times, n, n_naive = apply_rounds(
                session, rows, base_url, args.workers, args.rounds, naive_n
            )
            print_rates(times, n, n_naive, args.workers, "on loopback")
            if args.latency_ms:
                with ProxyProcess(scim.port, args.latency_ms / 1000) as proxy:
                    url = base_url.replace(f":{scim.port}", f":{proxy.port}", 1)
                    times, n, n_naive = apply_rounds(
                        session, rows, url, args.workers, args.rounds, naive_n
                    )
                print_rates(
                    times, n, n_naive, args.workers, f"through a {args.latency_ms} ms latency proxy"
                )
        print(
            f"\nload average 1 min: {load:.2f} at start, {os.getloadavg()[0]:.2f} at end ({os.cpu_count()} CPUs)"
        )
    finally:
        if scim is not None:
            scim.stop()
        slapd.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
