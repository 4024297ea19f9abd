"""Run the benchmarks: every bench/bench_*.py in turn, each in its own process.

Run: .venv/bin/python -m bench [NAME ...] [-- ARGS]   (make bench runs them all)
NAME selects benchmarks by name (`plan` or `bench_plan`); ARGS after `--` go to each one
(e.g. `python -m bench plan -- --users 20000`). Each prints its own figures; this runner
prints a header per benchmark, its wall time, and exits 1 if any of them failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(names: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if not names:
        return found
    wanted = {n.removeprefix("bench_").removesuffix(".py") for n in names}
    unknown = wanted - {p.stem.removeprefix("bench_") for p in found}
    if unknown:
        known = ", ".join(p.stem.removeprefix("bench_") for p in found)
        raise SystemExit(f"no benchmark named {', '.join(sorted(unknown))} (have: {known})")
    return [p for p in found if p.stem.removeprefix("bench_") in wanted]


def main(argv: list[str]) -> int:
    names, extra = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    failed = []
    for script in discover(names):
        print(f"== {script.stem} ==", flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(script), *extra], cwd=HERE.parent).returncode
        elapsed = time.perf_counter() - started
        print(
            f"== {script.stem}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {elapsed:.0f} s ==\n",
            flush=True,
        )
        if code:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
