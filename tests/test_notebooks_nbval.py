"""nbval on the four notebooks, as part of the default test run.

nbval runs each notebook as it is committed (no papermill, so interactively: every notebook
starts its own lab), cell by cell, and fails on any exception. The committed notebooks hold
no outputs, so nothing is compared: this is `--nbval-lax` in effect, with the notebooks'
own assert cells as the checks. nbval kills its kernel at the end (no exit hook runs): the
labs must still be gone afterwards (the watchdog's job).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from toolkit.notebooks import NOTEBOOKS, notebook_path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_nbval_runs_every_notebook_cell_without_an_error(tmp_path):
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    cells = 0
    for name in NOTEBOOKS:
        # copies: the kernel runs beside the notebook, and its run folder must not land in the repo
        shutil.copy(notebook_path(name), work / f"{name}.ipynb")
        nb = nbformat.read(work / f"{name}.ipynb", as_version=4)
        cells += sum(1 for c in nb.cells if c.cell_type == "code")
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONPATH=str(Path(__file__).parents[1]))
    env.pop("SCIMSYNC_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider", "-q", str(work)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(rf"\b{cells} passed\b", done.stdout), done.stdout[-2000:]
    # each notebook's lab lived in a temporary folder under $TMPDIR: all gone once the kernels are
    deadline = time.monotonic() + 20
    while list(scratch.glob("scimsync-notebook-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(scratch.glob("scimsync-notebook-*")) == [], "a notebook's lab outlived nbval"
