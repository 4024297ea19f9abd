"""The built wheel holds every file the package needs, and works installed the normal way.

Every other test runs against the source tree (an editable install or PYTHONPATH), which
cannot see a file missing from the package data. This one builds the wheel, checks its
contents against the files under toolkit/, installs it into a fresh venv (dependencies from
the package index) and runs the lab, a dry run and a notebook from a folder outside the repo.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[1]


def package_files() -> set[str]:
    """Every file under toolkit/ (notebook_files followed to notebooks/) but Python caches."""
    found = set()
    for root, _dirs, files in os.walk(REPO / "toolkit", followlinks=True):
        for name in files:
            path = Path(root) / name
            if "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add(path.relative_to(REPO).as_posix())
    return found


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_ships_every_package_file_and_runs_installed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SCIMSYNC_CONFIG")}
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(dist)],
        tmp_path,
        env,
    )
    (wheel,) = dist.glob("scimsync-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(package_files() - shipped)
    assert missing == [], f"not in the wheel: {missing}"
    assert "toolkit/lab/lab.schema" in shipped
    assert "toolkit/notebook_files/04-sync.ipynb" in shipped

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    bin_dir = venv / "bin"
    run([str(bin_dir / "pip"), "install", "-q", str(wheel)], tmp_path, env)

    outside = tmp_path / "elsewhere"  # not the repo: nothing can come from the source tree
    outside.mkdir()
    where = run(
        [str(bin_dir / "python"), "-c", "import toolkit; print(toolkit.__file__)"], outside, env
    )
    assert where.startswith(str(venv)), where
    scimsync = str(bin_dir / "scimsync")
    lab_dir = outside / "lab"
    run(
        [scimsync, "lab", "up", "--dir", str(lab_dir), "--users", "20", "--groups", "2"],
        outside,
        env,
    )
    try:
        config = str(lab_dir / "sync.yaml")
        shown = run([scimsync, "--config", config, "dry-run"], outside, env)
        assert "22" in shown  # 20 users and 2 groups to create
        run(
            [scimsync, "--config", config, "notebook", "run", "03", "--output", "03.ipynb"],
            outside,
            env,
        )
        assert (outside / "03.ipynb").is_file()
    finally:
        run([scimsync, "lab", "down", "--dir", str(lab_dir)], outside, env)
