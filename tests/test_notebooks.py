"""The four notebooks run headless with papermill against a real lab (slapd + SCIM server).

Each run is checked by its side effects (the config written, the plan saved, the objects on
the SCIM server) and by its output notebook, which must hold no secret of the lab.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import ldap3
import nbformat
import pytest

from tests.support.widget_lab import ldap_connection
from toolkit.cli import main
from toolkit.config import Config, load_config
from toolkit.lab import lab
from toolkit.lab.process import port_open
from toolkit.notebooks import (
    KINDS,
    NOTEBOOKS,
    NotebookError,
    NotebookFailed,
    declared_parameters,
    notebook_path,
    run_notebook,
)
from toolkit.plan.plan import Plan
from toolkit.scim.client import ScimClient
from toolkit.scim.filters import eq
from toolkit.scim.fromconfig import destination_endpoint
from toolkit.sync.batch import RunOptions, dry_run

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory):
    """A lab the read-only notebooks (explore, dry run) share: 100 users, 10 groups."""
    folder = tmp_path_factory.mktemp("notebook-lab") / "lab"
    state = lab.up(folder, users=100, groups=10)
    yield state
    lab.down(folder)


@pytest.fixture
def own_lab(tmp_path):
    """A lab for one test that writes to it."""
    folder = tmp_path / "lab"
    state = lab.up(folder, users=40, groups=4)
    yield state
    lab.down(folder)


def secrets_of(folder: Path | str) -> list[str]:
    values = [p.read_text().strip() for p in (Path(folder) / "secrets").iterdir()]
    assert values and all(len(v) >= 8 for v in values), "the lab's secret files are missing"
    return values


def assert_no_secret(path: Path, secrets: list[str]) -> None:
    """Nothing in the file (cells, outputs, widget state, metadata) holds a secret."""
    text = path.read_text(encoding="utf-8")
    for secret in secrets:
        for form in (secret, json.dumps(secret)[1:-1]):
            assert form not in text, f"{path.name} holds a secret of the lab"


def outputs_text(path: Path) -> str:
    """Every stream, result and widget state text of an executed notebook."""
    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    parts.append(json.dumps(nb.metadata.get("widgets", {})))
    return "\n".join(parts)


def assert_lab_stopped(folder: Path) -> None:
    assert not (folder / "lab.json").exists(), "the notebook left its lab running"
    config = load_config(folder / "sync.yaml")
    ldap = config.external_servers["lab-ldap"]
    scim_host, scim_port = (
        config.external_servers["lab-scim"].scim_service_url.split("//")[1].split("/")[0].split(":")
    )
    assert not port_open(ldap.server_host_name, ldap.server_port), "slapd still answers"
    assert not port_open(scim_host, int(scim_port)), "the SCIM server still answers"


def scim_user(config: Config, user_name: str) -> dict | None:
    with ScimClient(destination_endpoint(config, config.pipe())) as client:
        found = client.find("User", str(eq("userName", user_name)))
    return found[0] if found else None


# --- the notebooks ----------------------------------------------------------------------------


def test_setup_notebook_starts_its_own_lab_writes_a_config_and_stops_the_lab(tmp_path):
    """The lab lives in a folder the notebook removes: the config refers to copies of its
    secrets (mode 0600, relative references), so it stays valid once the lab is gone."""
    target = tmp_path / "new" / "sync.yaml"
    out = run_notebook(
        "01-setup",
        tmp_path / "01.ipynb",
        {"config_path": "", "lab_users": 20, "output": str(target)},
    )
    written = load_config(target)
    ldap = written.external_servers["source-ds"]
    scim = written.external_servers["scim"]
    assert ldap.password.reference == "${file:.scimsync/secrets/ldap-password}"
    assert scim.oauth_token.reference == "${file:.scimsync/secrets/scim-token}"
    copies = target.parent / ".scimsync" / "secrets"
    for name in ("ldap-password", "scim-token"):
        assert (copies / name).stat().st_mode & 0o777 == 0o600
    assert ldap.password.resolve() and scim.oauth_token.resolve()  # the copies are readable
    assert (target.parent / "scim-resources.xml").is_file()
    assert f"wrote {target}" in outputs_text(out)
    assert "lab stopped" in outputs_text(out)  # headless: the last cell stopped it
    assert main(["--config", str(target), "config", "validate"]) == 0
    secrets = [(copies / name).read_text().strip() for name in ("ldap-password", "scim-token")]
    assert_no_secret(out, secrets)
    assert_no_secret(target, secrets)


def test_setup_notebook_in_a_given_lab_folder_stops_the_lab(tmp_path):
    lab_dir, target = tmp_path / "lab", tmp_path / "new" / "sync.yaml"
    out = run_notebook(
        "01-setup",
        tmp_path / "01.ipynb",
        {"lab_dir": str(lab_dir), "lab_users": 20, "output": str(target), "force": "yes"},
    )
    assert load_config(target).external_servers["source-ds"].password.resolve()
    assert_no_secret(out, secrets_of(lab_dir))
    assert_lab_stopped(lab_dir)


def test_explore_notebook_runs_from_the_cli_with_the_config(shared_lab, tmp_path, capsys):
    out = tmp_path / "02.ipynb"
    code = main(
        [
            "--config",
            shared_lab.config,
            "notebook",
            "run",
            "02",
            "-p",
            "max_rows",
            "5",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    assert f"executed notebook written to {out}" in capsys.readouterr().out
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata.papermill.parameters == {"max_rows": 5, "config_path": shared_lab.config}
    text = outputs_text(out)
    assert "110 directory entries read" in text
    assert "userName" in text and "enterprise:department" in text  # frames.side_by_side
    assert "departmentnumber" in text  # the directory frame
    assert_no_secret(out, secrets_of(shared_lab.folder))


def test_dry_run_notebook_saves_the_plan_and_writes_nothing(shared_lab, tmp_path):
    plan_file, report = tmp_path / "plan.json", tmp_path / "plan.html"
    out = run_notebook(
        "03-dry-run",
        tmp_path / "03.ipynb",
        {
            "config_path": shared_lab.config,
            "output": str(plan_file),
            "report": str(report),
            "situation": "create",
            "full_compare": True,
        },
    )
    plan = Plan.load(plan_file)
    assert len(plan) == 110
    assert plan.totals()["create"] == 110
    assert report.read_text().lstrip().lower().startswith(("<!doctype", "<html"))
    text = outputs_text(out)
    assert "the delete guards pass" in text
    # what was read, and why (the shared lab may have been read before: then incrementally)
    assert re.search(r"^SCIM User: (full read: 0 resources|incremental: )", text, re.M), text
    assert re.search(r"^LDAP users: (full read|incremental): ", text, re.M), text
    assert "attribute changes in 110 objects (create)" in text
    assert "POST /Users" in text  # the picked object's exact request
    assert scim_user(load_config(shared_lab.config), "yusuf.leroy0") is None
    assert_no_secret(out, secrets_of(shared_lab.folder))


def test_outputs_default_to_a_run_folder_not_the_current_one(shared_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(["--config", shared_lab.config, "notebook", "run", "03", "-p", "max_rows", "1"]) == 0
    )
    assert [p.name for p in tmp_path.iterdir()] == ["scimsync-runs"]
    (run,) = (tmp_path / "scimsync-runs").iterdir()
    assert run.name.startswith("03-dry-run-")
    assert sorted(p.name for p in run.iterdir()) == ["03-dry-run.ipynb", "plan.json"]
    assert len(Plan.load(run / "plan.json")) == 110


def test_sync_notebook_applies_a_saved_plan_then_realtime_carries_an_edit(own_lab, tmp_path):
    config = load_config(own_lab.config)
    saved = dry_run(config, RunOptions()).save(tmp_path / "plan.json")  # as 03-dry-run saves it
    preview = tmp_path / "preview.json"
    run_notebook(
        "04-sync",
        tmp_path / "04-preview.ipynb",
        {"config_path": own_lab.config, "output": str(preview)},
    )
    previewed = json.loads(preview.read_text())  # confirm is False by default: nothing applied
    assert previewed["resync"] is None and previewed["realtime"] is None
    assert scim_user(config, "yusuf.leroy0") is None

    first = tmp_path / "first.json"
    out1 = run_notebook(
        "04-sync",
        tmp_path / "04a.ipynb",
        {
            "config_path": own_lab.config,
            "output": str(first),
            "saved_plan": str(saved),
            "confirm": True,
        },
    )
    result = json.loads(first.read_text())
    assert result["resync"]["applied"] == 44 and result["resync"]["failed"] == 0
    assert result["links"] == 44 and result["failures"] == 0
    assert "loaded 44 objects, 44 to change (plan.json)" in outputs_text(out1)

    conn = ldap_connection(own_lab)
    dn = f"uid=yusuf.leroy0,ou=people,{own_lab.suffix}"
    conn.modify(dn, {"title": [(ldap3.MODIFY_REPLACE, ["Chief Notebook Officer"])]})
    conn.unbind()
    second = tmp_path / "second.json"
    out2 = run_notebook(
        "04-sync",
        tmp_path / "04b.ipynb",
        {
            "config_path": own_lab.config,
            "output": str(second),
            "run_resync": False,
            "confirm": True,
        },
    )
    again = json.loads(second.read_text())
    assert again["resync"] is None
    assert again["realtime"]["changes"] >= 1
    assert scim_user(config, "yusuf.leroy0")["title"] == "Chief Notebook Officer"
    secrets = secrets_of(own_lab.folder)
    assert_no_secret(out1, secrets)
    assert_no_secret(out2, secrets)


def test_a_failing_notebook_stops_the_lab_it_started(tmp_path):
    """papermill stops at the failing cell, so the last cell never runs: the kernel's exit
    stops the lab."""
    lab_dir = tmp_path / "lab"
    with pytest.raises(NotebookFailed) as failed:
        run_notebook(
            "03",
            tmp_path / "03.ipynb",
            {"lab_dir": str(lab_dir), "lab_users": 10, "pipe_name": "no-such-pipe"},
        )
    assert "no-such-pipe" in str(failed.value)
    nb = nbformat.read(tmp_path / "03.ipynb", as_version=4)
    assert nb.metadata.papermill.exception is True
    assert_lab_stopped(lab_dir)  # the kernel's exit hook stopped it, not the last cell
    assert_no_secret(tmp_path / "03.ipynb", secrets_of(lab_dir))


# --- the API and CLI around them ---------------------------------------------------------------


def test_unknown_notebooks_and_parameters_are_usage_errors(tmp_path, capsys):
    with pytest.raises(NotebookError, match="05-nope"):
        run_notebook("05-nope", tmp_path / "x.ipynb", {})
    with pytest.raises(NotebookError, match="colour"):
        run_notebook("03-dry-run", tmp_path / "x.ipynb", {"colour": "blue"})
    assert not (tmp_path / "x.ipynb").exists()
    assert main(["notebook", "run", "nope", "--output", str(tmp_path / "y.ipynb")]) == 2
    assert "no notebook 'nope'" in capsys.readouterr().err
    assert notebook_path("dry-run") == notebook_path("03") == notebook_path("03-dry-run")


def test_notebook_list_shows_each_notebook_with_its_typed_parameters(capsys):
    assert main(["notebook", "list"]) == 0
    text = capsys.readouterr().out
    for name in NOTEBOOKS:
        assert name in text
    assert "confirm: bool = False" in text and 'source_search_filter: LdapFilter = ""' in text


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_committed_notebooks_have_no_outputs_and_typed_checked_parameters(name):
    nb = nbformat.read(notebook_path(name), as_version=4)
    nbformat.validate(nb)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and 'config_path: "File" = ' in nb.cells[tagged[0]].source
    declared = declared_parameters(name)  # raises for a parameter without a known type
    assert all(p.kind in KINDS for p in declared.values())
    if "confirm" in declared:
        assert declared["confirm"].kind == "bool" and declared["confirm"].default == "False"
    # the first cell after the parameters checks them, before anything touches a server
    assert f'check_parameters(globals(), "{name}")' in nb.cells[tagged[0] + 1].source
    assert nb.cells[-1].source == "print(session.finish(run))"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs committed"
        for marker in ("/work/", "/tmp/", "/home/", "/root/"):
            assert marker not in cell.source, f"{name}: an absolute path in a cell"
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata
