"""The four notebooks clicked through in JupyterLab by a real browser (Playwright, Debian's chromium).

Each notebook is opened, Run All, and looked at: every cell ran, no traceback or stderr output,
no widget error, widgets shown as widgets, every button and label readable in full, no MathJax
in data. Then the buttons an analyst presses after Run All: 01-setup's Write config (the config
must validate and its secret files exist), 04-sync's Preview and Apply (the SCIM server must
change), and, on a lab of 2,000 users, the apply's progress bar must show values between 0 and
100%. Each scenario runs once (module scope); the tests assert on what it saw. Screenshots are
kept in the pytest tmp folder (its path is printed) and named in the failure messages.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.notebook_browser import JupyterLab, copy_notebook, require_browser, run_scenario
from toolkit.cli import main
from toolkit.lab import lab
from toolkit.notebooks import NOTEBOOKS, notebook_path, run_notebook

pytestmark = pytest.mark.timeout(900)

BIG_LAB_USERS = 2000


class Scenarios:
    """Runs each scenario once, on demand, and keeps what it saw."""

    def __init__(self, server: JupyterLab, work: Path):
        self.server, self.work = server, work
        self.shots = work / "shots"
        self.seen: dict[str, dict[str, Any]] = {}
        self.labs: list[Path] = []  # labs the notebooks started: stopped at the end if still up
        self.own_labs: list[Path] = []  # labs these tests started

    def lab_dir(self, name: str) -> Path:
        folder = self.work / "labs" / name
        self.labs.append(folder)
        return folder

    def spec(self, name: str) -> tuple[dict[str, Any], dict[str, Any], float]:
        """The notebook's parameters, the scenario's extra fields, and its time limit."""
        if name == "01-setup":
            return (
                {
                    "lab_dir": str(self.lab_dir(name)),
                    "output": str(self.work / "setup-run" / "sync.yaml"),
                },
                {
                    "action": "setup-write",
                    "write_to": str(self.work / "setup-browser" / "sync.yaml"),
                },
                300,
            )
        if name == "04-sync":
            folder = self.lab_dir(name)
            return (
                {"lab_dir": str(folder)},
                {"action": "sync-apply", "lab_folder": str(folder), "find": True},
                420,
            )
        if name == "04-sync-2000":
            # a config given: the lab is this test's, 2,000 users and 10 groups to create
            folder = self.work / "labs" / name
            state = lab.up(folder, users=BIG_LAB_USERS, groups=10)
            self.own_labs.append(folder)
            return (
                {"config_path": state.config},
                {"action": "sync-apply", "lab_folder": str(folder)},
                480,
            )
        if name == "03-dry-run-saved":
            return {"lab_dir": str(self.lab_dir(name))}, {"action": "open-saved"}, 240
        return {"lab_dir": str(self.lab_dir(name))}, {}, 240

    def get(self, name: str) -> dict[str, Any]:
        if name not in self.seen:
            self.seen[name] = self._run(name)
        return self.seen[name]

    def _run(self, name: str) -> dict[str, Any]:
        parameters, extra, timeout = self.spec(name)
        if extra.get("action") == "open-saved":  # executed by papermill, as `notebook run` does
            saved = self.server.root / f"{name}.ipynb"
            run_notebook(name.removesuffix("-saved"), saved, parameters, cwd=self.work)
            without_kernel(saved)
        else:
            source = notebook_path(name.removesuffix("-2000"))
            copy_notebook(source, self.server.root / f"{name}.ipynb", parameters)
        spec = {
            "name": name,
            "notebook": f"{name}.ipynb",
            "base": self.server.url,
            "token": self.server.token,
            "shots": str(self.shots),
            "result": str(self.work / f"{name}.seen.json"),
            "run_all_timeout": timeout / 2,
            **extra,
        }
        try:
            return run_scenario(spec, timeout)
        finally:
            self.server.shutdown_kernels()

    def stop_labs(self) -> None:
        """Stop the labs the notebooks (or the tests) left running, by the PIDs in lab.json."""
        for folder in self.labs:
            deadline = time.monotonic() + 15  # a kernel's exit hook may be stopping it now
            while (folder / "lab.json").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            if (folder / "lab.json").exists():
                lab.down(folder)
        for folder in self.own_labs:
            lab.down(folder)


def without_kernel(path: Path) -> None:
    """The notebook names no kernel nor language: JupyterLab asks which kernel to start, and
    the scenario answers No Kernel."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("kernelspec", None)
    nb.metadata.pop("language_info", None)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory, request):
    require_browser()
    work = tmp_path_factory.mktemp("browser")
    server = JupyterLab(work / "root", work / "jupyter").start()
    runs = Scenarios(server, work)
    try:
        yield runs
    finally:
        server.stop()
        runs.stop_labs()
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        message = f"browser screenshots: {runs.shots}"
        if reporter is not None:
            reporter.write_line(message)
        else:
            print(message)


def described(seen: dict[str, Any]) -> str:
    """What the failure message adds: the crash, the panels' logs, where the screenshots are."""
    parts = []
    if seen.get("crash"):
        parts.append(f"scenario stopped: {seen['crash']}")
    for what, said in seen.get("logs", {}).items():
        parts.append(f"{what} said: {said[:600]}")
    shots = seen.get("shots", [])
    if shots:
        parts.append(f"screenshots in {Path(shots[0]).parent} ({len(shots)})")
    return "\n".join(parts)


def ran(seen: dict[str, Any]) -> dict[str, Any]:
    """What Run All showed; fails when the scenario did not get that far."""
    assert "after_run_all" in seen, f"Run All did not complete\n{described(seen)}"
    return seen["after_run_all"]


# --- every notebook after Run All ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_run_all_runs_every_cell_without_an_error(scenarios, name):
    seen = scenarios.get(name)
    page = ran(seen)
    assert seen["unfinished"] == [], f"cells not run: {seen['unfinished']}\n{described(seen)}"
    assert page["stderr"] == [], f"stderr or traceback output: {page['stderr']}\n{described(seen)}"
    assert page["widget_errors"] == [], f"widget errors: {page['widget_errors']}"


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_run_all_shows_widgets_as_widgets(scenarios, name):
    seen = scenarios.get(name)
    page = ran(seen)
    assert page["widget_views"] > 0, f"no widget rendered\n{described(seen)}"
    assert page["widget_text"] == [], f"widgets shown as text: {page['widget_text']}"


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_every_button_and_label_is_readable_in_full(scenarios, name):
    seen = scenarios.get(name)
    ran(seen)
    cut = [
        f"{c['text']!r} ({c['width_needed']} px in {c['width_shown']} px)"
        for c in seen["cut_labels"]
    ]
    assert cut == [], f"labels cut by their width: {cut}\n{described(seen)}"


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_no_mathjax_in_outputs(scenarios, name):
    seen = scenarios.get(name)
    ran(seen)
    assert seen["mathjax"] == [], (
        f"MathJax typeset data in: {seen['mathjax'][:5]}\n{described(seen)}"
    )


# --- the buttons after Run All ----------------------------------------------------------------


def secret_files(config: Path) -> list[Path]:
    """The files a config's `${file:...}` references name (relative ones beside the config)."""
    found = re.findall(r"\$\{file:([^}]+)\}", config.read_text())
    return [config.parent / f if not Path(f).is_absolute() else Path(f) for f in found]


def test_setup_write_after_run_all_writes_a_config_that_validates(scenarios, capsys):
    seen = scenarios.get("01-setup")
    ran(seen)
    written = Path(scenarios.work / "setup-browser" / "sync.yaml")
    assert written.is_file(), f"Write config wrote nothing to {written}\n{described(seen)}"
    capsys.readouterr()
    code = main(["--config", str(written), "config", "validate"])
    assert code == 0, f"config validate: {capsys.readouterr().out}"
    secrets = secret_files(written)
    assert secrets, f"{written} references no secret file"
    missing = [str(p) for p in secrets if not p.is_file()]
    assert missing == [], f"{written} references secret files that do not exist: {missing}"


@pytest.mark.parametrize("name", ["04-sync", "04-sync-2000"])
def test_sync_preview_and_apply_after_run_all_change_the_scim_server(scenarios, name):
    seen = scenarios.get(name)
    ran(seen)
    before, after = seen.get("scim_before", {}), seen.get("scim_after", {})
    assert "error" not in before, f"SCIM server after Run All: {before['error']}\n{described(seen)}"
    assert "apply" in seen.get("logs", {}), f"Apply was not pressed\n{described(seen)}"
    assert "error" not in after, f"SCIM server after Apply: {after['error']}\n{described(seen)}"
    lab_size = before["lab"]
    assert (before["Users"], before["Groups"]) == (0, 0), f"SCIM server after Run All: {before}"
    assert (after["Users"], after["Groups"]) == (lab_size["Users"], lab_size["Groups"]), (
        f"SCIM server after Apply: {after}, the lab's LDAP: {lab_size}\n{described(seen)}"
    )


def test_sync_apply_of_2000_objects_moves_the_progress_bar(scenarios):
    seen = scenarios.get("04-sync-2000")
    ran(seen)
    samples = seen.get("progress")
    assert samples, f"no progress bar sampled during Apply\n{described(seen)}"
    widths = [s["width"] for s in samples]
    between = [w for w in widths if 0 < w < 100]
    shown = [(s["ms"], s["label"], round(s["width"], 1)) for s in samples]
    assert between, (
        f"the progress bar never showed a value between 0 and 100%: {shown[:20]}\n{described(seen)}"
    )


# --- readable views (issue 19) -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["02-explore", "03-dry-run"])
def test_views_show_charts_and_bordered_tables_with_dollars_as_text(scenarios, name):
    seen = scenarios.get(name)
    page = ran(seen)
    assert page["charts"] >= 2, f"charts drawn: {page['charts']}\n{described(seen)}"
    assert page["static_tables"] > 0, f"no table of toolkit.plan.tables\n{described(seen)}"
    # the lab's postal addresses hold "$" (LDAP's line separator): shown, never typeset
    assert page["dollar_cells"] > 0, f"no data cell holds a $: nothing to check\n{described(seen)}"
    assert seen["mathjax"] == [], f"MathJax in: {seen['mathjax'][:5]}"


def test_a_saved_output_notebook_shows_charts_and_tables_without_a_kernel(scenarios):
    seen = scenarios.get("03-dry-run-saved")
    assert "after_open" in seen, f"the saved notebook was not opened\n{described(seen)}"
    page = seen["after_open"]
    assert "Idle" not in seen["kernel_status"], f"a kernel ran: {seen['kernel_status']}"
    assert page["charts"] >= 2, f"charts shown: {page['charts']}\n{described(seen)}"
    assert page["static_tables"] > 0, f"no static table\n{described(seen)}"
    assert page["widget_text"] == [], f"widgets shown as text: {page['widget_text'][:3]}"
    assert page["stderr"] == [], f"stderr output: {page['stderr'][:3]}"
    assert seen["mathjax"] == [], f"MathJax in: {seen['mathjax'][:5]}"


# --- setup: connection tests and secret fields; sync: find and provision on demand -----------


def test_setup_test_buttons_connect_and_a_typed_secret_is_cleared_unseen(scenarios):
    seen = scenarios.get("01-setup")
    ran(seen)
    logs = seen.get("logs", {})
    assert logs.get("test-ldap") == "test LDAP: connected", f"{logs}\n{described(seen)}"
    assert logs.get("test-scim") == "test SCIM: connected", f"{logs}\n{described(seen)}"
    typed = seen.get("secret_typed")
    assert typed, f"no secret typed\n{described(seen)}"
    assert typed["input_type"] == "password" and typed["value_after"] == ""
    assert not typed["shown"] and "cleared" in typed["note"], typed


def test_sync_search_finds_a_person_by_mail(scenarios):
    seen = scenarios.get("04-sync")
    ran(seen)
    found = seen.get("find")
    assert found, f"the search was not made\n{described(seen)}"
    assert found["count"].startswith("1 of"), found
    assert found["dn"] in found["table"] and found["mail"] in found["table"], found


def test_sync_provision_on_demand_changes_that_object_and_nothing_else(scenarios):
    seen = scenarios.get("04-sync")
    ran(seen)
    done = seen.get("provision")
    assert done, f"provision on demand was not pressed\n{described(seen)}"
    assert "provisioned on demand: 1 done, 0 failed" in seen["logs"]["provision"], seen["logs"]
    assert done["changed_users"] == [done["one"]], done
    assert done["groups_same"] and done["users_before"] == done["users_after"], done
    assert done["titles"][done["one"]] == "Provisioned In The Browser", done["titles"]
    assert done["titles"][done["other"]] != "Not Provisioned", done["titles"]
    for step in ("class and scope", "correlation", "action", "request", "response", "resource"):
        assert step in done["steps_text"], f"step {step!r} not shown"


def test_sync_realtime_panel_lists_the_changes_it_applied(scenarios):
    seen = scenarios.get("04-sync")
    ran(seen)
    done, recent = seen.get("provision"), seen.get("recent")
    assert done and recent, f"the realtime panel was not run\n{described(seen)}"
    lines = [line for line in recent.splitlines() if f"uid={done['other']}," in line]
    assert lines, f"the other edit is not among the recent changes: {recent[:1000]}"
    assert "title" in lines[0] and "applied" in lines[0], lines[0]
