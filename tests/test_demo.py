"""`scimsync demo` (what `make demo` runs) walks the notebook path on a lab and keeps its results."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from toolkit.cli import main
from toolkit.lab.process import port_open

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_demo_runs_the_notebooks_on_a_lab_and_keeps_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--users", "40", "--groups", "4"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "scimsync-demo"  # the default, kept
    executed = ["02-explore", "03-dry-run", "04-sync-resync", "04-sync-realtime"]
    for name in executed:
        nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        assert nb.metadata.papermill.exception is not True
        assert f"scimsync-demo/{name}.ipynb" in out  # each path is printed
    assert (folder / "plan.html").read_text().lstrip().lower().startswith(("<!doctype", "<html"))
    assert "scimsync-demo/plan.html" in out
    resync = json.loads((folder / "04-sync-resync.json").read_text())["resync"]
    assert resync["applied"] == 44 and resync["failed"] == 0
    realtime = json.loads((folder / "04-sync-realtime.json").read_text())["realtime"]
    assert realtime["changes"] >= 4  # the hire, the title, the leaver, the group
    assert "8. dry-run after realtime sync: unchanged" in out and "create" not in out.split("8.")[1]
    assert "next: open them in JupyterLab" in out and "scimsync lab up" in out
    # the lab is stopped and removed: its ports no longer answer
    ldap, scim = re.search(
        r"slapd at ldap://([\d.]+:\d+), SCIM at http://([\d.]+:\d+)", out
    ).groups()
    for address in (ldap, scim):
        host, port = address.split(":")
        assert not port_open(host, int(port))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scimsync-demo"]
