"""The lab a notebook starts, as an interactive session sees it: it outlives Run All so that the
buttons keep working, a Stop lab stops it (and the widgets then say the server is gone), and
the kernel's end stops and removes it, also when the kernel is killed. Headless runs through
`scimsync notebook run` are quiet on stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from toolkit.config import load_config
from toolkit.lab.process import port_open
from toolkit.notebooks import notebook_path
from toolkit.scim.client import ScimClient
from toolkit.scim.fromconfig import destination_endpoint

pytestmark = pytest.mark.timeout(300)


def interactive(name: str, lab_users: int = 20) -> nbformat.NotebookNode:
    """The notebook as a user edits it in JupyterLab: no papermill, a smaller lab."""
    nb = nbformat.read(notebook_path(name), as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    cell.source = cell.source.replace("lab_users: int = 100", f"lab_users: int = {lab_users}")
    return nb


def run_all(client: NotebookClient, nb: nbformat.NotebookNode) -> None:
    for index, cell in enumerate(nb.cells):
        client.execute_cell(cell, index)


def run_cell(client: NotebookClient, nb: nbformat.NotebookNode, source: str) -> str:
    """Run one more cell in the live kernel (a button press); its stdout."""
    cell = nbformat.v4.new_code_cell(source)
    nb.cells.append(cell)
    client.execute_cell(cell, len(nb.cells) - 1)
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")


def lab_of(client: NotebookClient, nb: nbformat.NotebookNode) -> dict:
    return json.loads(
        run_cell(
            client,
            nb,
            "import json, os\n"
            "print(json.dumps({'folder': str(session.lab_folder),"
            " 'config': str(session.config_path), 'pid': os.getpid()}))",
        )
    )


def servers(config_path: str) -> list[tuple[str, int]]:
    config = load_config(Path(config_path))
    ldap = config.external_servers["lab-ldap"]
    host_port = config.external_servers["lab-scim"].scim_service_url.split("//")[1].split("/")[0]
    host, port = host_port.split(":")
    return [(ldap.server_host_name, ldap.server_port), (host, int(port))]


def wait_gone(folder: Path, addresses: list[tuple[str, int]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not folder.exists() and not any(port_open(h, p) for h, p in addresses):
            return
        time.sleep(0.2)
    raise AssertionError(f"the lab in {folder} outlived its kernel")


def scim_user_names(config_path: str) -> set[str]:
    config = load_config(Path(config_path))
    with ScimClient(destination_endpoint(config, config.pipe())) as client:
        return {u["userName"] for u in client.find("User", None)}


def test_after_run_all_the_lab_stays_up_and_the_buttons_work(tmp_path):
    nb = interactive("04-sync")
    client = NotebookClient(nb, kernel_name="python3", timeout=180)
    with client.setup_kernel(cwd=str(tmp_path)):
        run_all(client, nb)
        last = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        assert "the lab keeps running for the buttons above" in last
        lab = lab_of(client, nb)
        addresses = servers(lab["config"])
        assert all(port_open(h, p) for h, p in addresses), "Run All stopped the lab"

        # Preview, then Apply: the SCIM server gets the users
        shown = run_cell(
            client,
            nb,
            "panel.preview_button.click()\n"
            "print(panel.error, panel.pending, panel.confirm_button.disabled)",
        )
        assert shown.split() == ["None", "30", "False"]  # 20 users, 10 groups
        assert run_cell(client, nb, "panel.confirm_button.click(); print(panel.error)") == "None\n"
        assert "yusuf.leroy0" in scim_user_names(lab["config"])

        # Stop lab: the servers stop, the folder stays until the kernel ends
        run_cell(client, nb, "session.stop()")
        assert not any(port_open(h, p) for h, p in addresses)
        assert Path(lab["folder"]).is_dir()
        error = run_cell(client, nb, "panel.preview_button.click(); print(panel.error)")
        assert "no LDAP server answered" in error and "Connection refused" in error
        assert "does not exist" not in error
        run_cell(client, nb, "live.run_button.click(); print(live.error)")
        assert "no LDAP server answered" in nb.cells[-1].outputs[-1]["text"]
    # the kernel shut down: its exit stopped the lab and removed the folder
    wait_gone(Path(lab["folder"]).parent, addresses)


def test_a_killed_kernel_leaves_no_lab_behind(tmp_path):
    nb = interactive("02-explore")
    nb.cells = nb.cells[: 1 + [i for i, c in enumerate(nb.cells) if "lab_session(" in c.source][0]]
    client = NotebookClient(nb, kernel_name="python3", timeout=180)
    with client.setup_kernel(cwd=str(tmp_path)):
        run_all(client, nb)
        lab = lab_of(client, nb)
        addresses = servers(lab["config"])
        assert all(port_open(h, p) for h, p in addresses)
        os.kill(lab["pid"], signal.SIGKILL)  # no exit hook runs: the watchdog stops the lab
        wait_gone(Path(lab["folder"]).parent, addresses)


def test_a_headless_run_is_quiet_on_stderr(tmp_path):
    """No "Kernel is running over TCP without encryption", no "KeyboardInterrupt caught"."""
    env = {k: v for k, v in os.environ.items() if k != "SCIMSYNC_CONFIG"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "notebook", "run", "03", "-p", "lab_users", "10"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "executed notebook written to scimsync-runs/03-dry-run-" in done.stdout


def test_setup_write_after_run_all_gives_a_config_that_outlives_the_lab(tmp_path, capsys):
    from toolkit.cli import main

    nb = interactive("01-setup")
    target = tmp_path / "mine" / "sync.yaml"
    client = NotebookClient(nb, kernel_name="python3", timeout=180)
    with client.setup_kernel(cwd=str(tmp_path)):
        run_all(client, nb)
        lab = lab_of(client, nb)
        addresses = servers(lab["config"])
        shown = run_cell(
            client,
            nb,
            f"wizard.config_path.value = {str(target)!r}\n"
            "wizard.preview_button.click()\n"
            "wizard.write_button.click()\n"
            "print(wizard.error)",
        )
        assert shown == "None\n"
    wait_gone(Path(lab["folder"]).parent, addresses)
    # the lab's folder is gone; the config refers to its own copies of the secrets
    config = load_config(target)
    assert config.external_servers["source-ds"].password.resolve()
    assert config.external_servers["scim"].oauth_token.resolve()
    assert main(["--config", str(target), "config", "validate"]) == 0
