"""Private files (toolkit/config/private.py): the state folder 0700, every file in it 0600,
plans and executed notebooks 0600, with the usual umask 022; a stricter umask stays stricter;
a state folder left 0755/0644 by an earlier version is tightened when it is opened again."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.realtime_env import PEOPLE, ROOT, Rt, make_rt, wait_for
from toolkit.config.private import create_private, open_private, private_dir
from toolkit.errors import FatalError


def scimsync(rt: Rt, *args: str, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "--config", str(rt.config_path), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=180,
        umask=umask,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """Every folder and file under `folder` (itself included), by relative path."""
    out = {".": mode(folder)}
    for path in folder.rglob("*"):
        out[str(path.relative_to(folder))] = mode(path)
    return out


def loosen(folder: Path) -> None:
    """What an earlier version left: folders 0755, files 0644."""
    os.chmod(folder, 0o755)
    for path in folder.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


@pytest.fixture
def rt(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=12, groups=2, resync=False)
    yield rt
    rt.close()


def test_state_files_plans_and_pid_files_are_private(rt, tmp_path):
    loosen(rt.state_dir)
    assert mode(rt.state_dir / "state.db") == 0o644
    out = tmp_path / "out"
    scimsync(rt, "dry-run", "--output", str(out / "plan.json"))
    assert mode(rt.state_dir) == 0o700
    assert mode(out / "plan.json") == 0o600
    assert mode(out) == 0o755  # a folder the user named is created as usual
    scimsync(rt, "resync")
    uid = rt.people()[0]["uid"][0]
    rt.replace(f"uid={uid},{PEOPLE}", title=["realtime"])
    scimsync(rt, "realtime-sync", "start", "--foreground", "--until-idle")
    assert rt.users()[uid]["title"] == "realtime"
    # detached: its pid file and output file while it runs
    scimsync(rt, "realtime-sync", "start")
    pid_file = rt.state_dir / "ldap-to-scim-realtime.pid"
    wait_for(pid_file.exists, 30, "the pid file")
    running = modes(rt.state_dir)  # the database's -wal and -shm exist while it runs
    scimsync(rt, "realtime-sync", "stop")
    assert {"ldap-to-scim-realtime.pid", "state.db-wal", "state.db-shm"} <= set(running)
    assert {name: m for name, m in running.items() if m != (0o700 if name == "." else 0o600)} == {}
    found = modes(rt.state_dir)
    for name in (
        "state.db",
        "ldap-to-scim-sync.log",
        "ldap-to-scim-status.json",
        "ldap-to-scim-realtime.out",
    ):
        assert name in found, sorted(found)
    assert {name: m for name, m in found.items() if m != (0o700 if name == "." else 0o600)} == {}


def test_every_plan_format_is_private(rt, tmp_path):
    for suffix in (".json", ".csv", ".parquet", ".html"):
        plan = tmp_path / f"plan{suffix}"
        scimsync(rt, "dry-run", "--output", str(plan))
        assert mode(plan) == 0o600, suffix
        loosen_file = tmp_path / f"old{suffix}"  # an existing 0644 file written over
        loosen_file.write_text("old")
        os.chmod(loosen_file, 0o644)
        scimsync(rt, "dry-run", "--output", str(loosen_file))
        assert mode(loosen_file) == 0o600, suffix
        assert loosen_file.read_bytes() != b"old", suffix


def test_a_stricter_umask_stays_stricter(rt, tmp_path):
    scimsync(rt, "dry-run")  # the state exists before the stricter run
    plan = tmp_path / "plan.json"
    scimsync(rt, "dry-run", "--output", str(plan), umask=0o277)
    assert mode(plan) == 0o400


def test_helpers(tmp_path):
    folder = private_dir(tmp_path / "a" / ".scimsync")
    assert mode(folder) == 0o700
    with open_private(folder / "log", "a") as out:
        out.write("x\n")
    assert mode(folder / "log") == 0o600
    os.chmod(folder / "log", 0o664)
    with open_private(folder / "log", "a") as out:  # appending keeps the content
        out.write("y\n")
    assert (folder / "log").read_text() == "x\ny\n"
    assert mode(folder / "log") == 0o600
    assert mode(create_private(tmp_path / "plan.parquet")) == 0o600
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(FatalError, match="is a file, not a folder"):
        private_dir(file)


def test_notebook_output_is_private(tmp_path):
    """An executed notebook (papermill) is private too."""
    import nbformat

    from toolkit.notebooks import run_notebook

    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    cell = nbformat.v4.new_code_cell("value: int = 1")
    cell.metadata["tags"] = ["parameters"]
    book.cells = [cell, nbformat.v4.new_code_cell("print(value * 2)")]
    source = tmp_path / "tiny.ipynb"
    nbformat.write(book, source)
    old = os.umask(0o022)
    try:
        output = run_notebook(source, tmp_path / "tiny.out.ipynb", {"value": 21})
    finally:
        os.umask(old)
    assert mode(output) == 0o600
    assert "42" in output.read_text()
