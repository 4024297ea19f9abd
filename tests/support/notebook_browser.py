"""JupyterLab in a real browser for the notebook tests: the server, and scenarios run by Playwright.

The server is JupyterLab on a free loopback port with a token and its own settings, runtime,
config and data folders (windowing off, so every cell stays in the DOM; news off). Each scenario
runs in a child process (`python tests/support/notebook_browser.py SPEC.json`) with a time limit, so a
hung browser cannot hang the suite. The child drives Debian's chromium through Playwright: open
a notebook, Run All, look at the page (errors, widgets, labels, MathJax), press buttons, take
screenshots. It writes what it saw to a JSON file after every step; the tests assert on that.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1400, "height": 1000}
REPO = Path(__file__).resolve().parents[2]

#: What a widget shown as text instead of a widget looks like (no widget manager, untrusted).
WIDGET_AS_TEXT = r"\b(VBox|HBox|Box|Tab|Accordion|GridBox)\(children="


def require_browser() -> None:
    """Fail (never skip) when the browser or Playwright is missing, saying how to install them."""
    problems = []
    if not CHROMIUM.is_file():
        problems.append(
            f"{CHROMIUM} is missing: run `sh scripts/system-deps.sh` (Debian's chromium)"
        )
    if importlib.util.find_spec("playwright") is None:
        problems.append("the playwright package is missing: pip install -e '.[test]'")
    assert not problems, "the browser tests cannot run: " + "; ".join(problems)


# --- the JupyterLab server ----------------------------------------------------------------------


@dataclass
class JupyterLab:
    """`jupyter lab` serving `root`, with every Jupyter folder of its own under `home`."""

    root: Path
    home: Path
    port: int = 0
    token: str = ""
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, sub in (
            ("JUPYTERLAB_SETTINGS_DIR", "settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
        ):
            env[name] = str(self.home / sub)
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        # the kernels import this checkout's toolkit
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return env

    def write_settings(self) -> None:
        settings = self.home / "settings"
        for plugin, values in (
            ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
            # with windowing, cells scrolled out of view leave the DOM and their outputs with them
            ("notebook-extension/tracker", {"windowingMode": "none"}),
        ):
            path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, timeout: float = 90) -> JupyterLab:
        from toolkit.lab.process import free_port, wait_until

        self.root.mkdir(parents=True, exist_ok=True)
        self.write_settings()
        self.port, self.token = free_port(), secrets.token_hex(16)
        log = open(self.home / "jupyterlab.log", "wb")  # noqa: SIM115 (the server keeps it)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
            ],
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = process.pid
        try:
            wait_until(lambda: process.poll() is None and self._answers(), timeout, "JupyterLab")
        except TimeoutError as exc:
            self.stop()
            raise AssertionError(f"{exc}; its log:\n{self.log_tail()}") from None
        return self

    def _answers(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/api/status", headers=self.headers(), timeout=2).is_success
        except httpx.HTTPError:
            return False

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log_tail(self, lines: int = 40) -> str:
        path = self.home / "jupyterlab.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def shutdown_kernels(self) -> None:
        """Shut every kernel down (its exit hooks run, e.g. stopping a lab it started)."""
        import httpx

        with httpx.Client(base_url=self.url, headers=self.headers(), timeout=30) as client:
            for session in client.get("/api/sessions").json():
                client.delete(f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        """SIGTERM (JupyterLab shuts its kernels down), SIGKILL to the group if it lingers."""
        from toolkit.lab.process import stop_pid

        if self.pid is None:
            return
        stop_pid(self.pid, timeout=30)
        try:
            os.killpg(self.pid, signal.SIGKILL)  # kernels left behind, if any
        except ProcessLookupError:
            pass
        self.pid = None


# --- the notebooks served ---------------------------------------------------------------------


def copy_notebook(source: Path, target: Path, parameters: dict[str, Any]) -> Path:
    """A copy of a notebook with papermill's injected-parameters cell, as `notebook run` makes it."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(source))
    nbformat.write(parameterize_notebook(nb, parameters), target)
    return target


def run_scenario(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one scenario in a child process; what it saw, also when it was stopped at `timeout`."""
    result = Path(spec["result"])
    spec_file = result.with_suffix(".spec.json")
    spec_file.write_text(json.dumps(spec, indent=2))
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, __file__, str(spec_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its chromium in the same group, killed with it
    )
    try:
        output, _ = child.communicate(timeout=timeout)
        stopped = None
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        stopped = f"the scenario was stopped after {timeout:.0f} s"
    seen = json.loads(result.read_text()) if result.exists() else {}
    seen["seconds"] = round(time.monotonic() - started, 1)
    seen["child_output"] = output.decode(errors="replace")[-4000:]
    if stopped:
        seen["crash"] = stopped + (f" ({seen['crash']})" if seen.get("crash") else "")
    elif child.returncode and not seen.get("crash"):
        seen["crash"] = f"the scenario exited with {child.returncode}"
    return seen


# --- the scenario (runs in the child) ---------------------------------------------------------

# What the page shows, gathered in one call: outputs on stderr (tracebacks), widget errors,
# widgets shown as text, labels cut by their width, MathJax inside outputs.
INSPECT_JS = """
(widgetAsText) => {
  const text = (el) => (el.innerText || el.textContent || '').trim();
  const outputs = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')];
  const labels = '.jupyter-button, .widget-label, .widget-label-basic, .widget-tab .lm-TabBar-tabLabel';
  const shown = (el) => el.getClientRects().length > 0;
  // fractions count: text 0.4 px too wide is already cut with an ellipsis (scrollWidth rounds)
  const contentWidth = (el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return range.getBoundingClientRect().width;
  };
  const roomWidth = (el) => {
    const style = getComputedStyle(el), px = (name) => parseFloat(style[name]) || 0;
    return el.getBoundingClientRect().width - px('paddingLeft') - px('paddingRight')
      - px('borderLeftWidth') - px('borderRightWidth');
  };
  return {
    stderr: [...document.querySelectorAll(
      '.jp-Notebook .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')]
      .map((el) => text(el).slice(0, 2000)),
    widget_errors: [...document.querySelectorAll('.jp-Notebook .jupyter-widgets-error-widget')]
      .map((el) => text(el.parentElement || el).slice(0, 500))
      .concat(outputs.filter((el) => /Error (displaying|rendering) (widget|view)/.test(text(el)))
      .map((el) => text(el).slice(0, 500))),
    widget_text: outputs.filter((el) => new RegExp(widgetAsText).test(text(el)))
      .map((el) => text(el).slice(0, 300)),
    widget_views: document.querySelectorAll('.jp-Notebook .jp-OutputArea .jupyter-widgets').length,
    cut_labels: [...document.querySelectorAll(
      labels.split(', ').map((s) => '.jp-OutputArea ' + s).join(', '))]
      .filter((el) => shown(el) && text(el))
      .map((el) => ({el, need: contentWidth(el), room: roomWidth(el)}))
      .filter(({el, need, room}) => need > room + 0.01 || el.scrollWidth > el.clientWidth)
      .map(({el, need, room}) => ({text: text(el), width_needed: Math.round(need * 10) / 10,
                     width_shown: Math.round(room * 10) / 10,
                     element: el.tagName.toLowerCase() + '.' + [...el.classList].join('.')})),
    // charts: image outputs drawn (a PNG that loaded), and the static tables of toolkit.plan.tables
    charts: [...document.querySelectorAll('.jp-OutputArea-output img')]
      .filter((el) => el.complete && el.naturalWidth > 0).length,
    static_tables: document.querySelectorAll('.jp-OutputArea table.scimsync-table').length,
    // data cells that hold a "$" as text: MathJax had something to typeset there and did not
    dollar_cells: [...document.querySelectorAll('.jp-OutputArea td')]
      .filter((el) => el.textContent.includes('$')).length,
    // where: the table cell or paragraph, its formulas shown as <math>
    mathjax: [...new Set([...document.querySelectorAll(
      '.jp-OutputArea mjx-container, .jp-OutputArea .MathJax, .jp-OutputArea .MathJax_Display')]
      .map((el) => el.closest('td, th, li, p, pre') || el.parentElement))].map((where) => {
        const copy = where.cloneNode(true);
        copy.querySelectorAll('mjx-container, .MathJax').forEach((m) => m.replaceWith('<math>'));
        return copy.textContent.trim().slice(0, 200);
      }),
  };
}
"""

TALL_JS = """
() => Math.max(...[...document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer,'
  + ' .jp-NotebookPanel .jp-Notebook')].map((el) => el.scrollHeight))
"""

PROMPTS_JS = """
() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
  .map((el) => el.textContent.trim())
"""

# Samples every progress bar of one cell every 20 ms (only changes), until stopped.
SAMPLE_JS = """
(cell) => {
  window.__samples = [];
  const t0 = performance.now(), last = new Map();
  window.__sampler = setInterval(() => {
    cell.querySelectorAll('.progress-bar').forEach((bar, i) => {
      const box = bar.closest('.jupyter-widgets');
      const label = box && box.querySelector('.widget-label');
      const sample = {bar: i, width: parseFloat(bar.style.width),
                      label: label ? label.textContent.trim() : ''};
      const key = JSON.stringify(sample);
      if (last.get(i) !== key) {
        last.set(i, key);
        window.__samples.push({...sample, ms: Math.round(performance.now() - t0)});
      }
    });
  }, 20);
}
"""


class Scenario:
    """One notebook in the browser; `seen` is what the tests get, saved after every step."""

    def __init__(self, spec: dict[str, Any], page: Any):
        self.spec, self.page = spec, page
        self.shots = Path(spec["shots"])
        self.shots.mkdir(parents=True, exist_ok=True)
        self.seen: dict[str, Any] = {"notebook": spec["notebook"], "shots": []}

    def save(self) -> None:
        Path(self.spec["result"]).write_text(json.dumps(self.seen, indent=2, default=str))

    def shot(self, name: str, locator: Any = None) -> None:
        path = self.shots / f"{self.spec['name']}-{len(self.seen['shots']):02d}-{name}.png"
        try:
            (self.page if locator is None else locator).screenshot(path=str(path), timeout=15_000)
        except Exception as exc:  # a screenshot that fails must not hide what was seen
            self.seen.setdefault("shot_errors", []).append(f"{path.name}: {exc}")
            return
        self.seen["shots"].append(str(path))

    def status(self) -> str:
        return self.page.locator("#jp-main-statusbar").inner_text()

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while "Idle" not in self.status():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel was still busy after {timeout:.0f} s")
            time.sleep(0.1)

    # --- open and Run All -------------------------------------------------------------------

    def open(self) -> None:
        s = self.spec
        self.page.goto(f"{s['base']}/lab/tree/{s['notebook']}?token={s['token']}&reset")
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        self.wait_idle(90)  # the kernel has started

    def run_all(self, timeout: float) -> None:
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        # a cell is done when its prompt shows a number; after an error the rest show none
        started, deadline = time.monotonic(), time.monotonic() + timeout
        while True:
            prompts = self.page.evaluate(PROMPTS_JS)
            running = any("*" in p for p in prompts)
            if not running and any(re.search(r"\d", p) for p in prompts):
                if "Idle" in self.status():
                    break
            if time.monotonic() > deadline:
                self.seen["prompts"] = prompts
                raise TimeoutError(f"Run All had not finished after {timeout:.0f} s")
            time.sleep(0.2)
        self.seen["run_all_seconds"] = round(time.monotonic() - started, 1)
        self.seen["prompts"] = prompts
        self.seen["unfinished"] = [
            f"code cell {i + 1}: {p or '[ ]'}"
            for i, p in enumerate(prompts)
            if not re.fullmatch(r"\[\d+\]:", p)
        ]
        self.wait_widgets()

    def wait_widgets(self, timeout: float = 20) -> None:
        """Until no output still says 'Loading widget...'; MathJax typesets after that."""
        loading = self.page.locator(".jp-OutputArea-output", has_text="Loading widget...")
        deadline = time.monotonic() + timeout
        while loading.count() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)

    def inspect(self, step: str) -> None:
        found = self.page.evaluate(INSPECT_JS, WIDGET_AS_TEXT)
        self.seen[step] = found
        # labels and MathJax: every step counts (a label can be cut only after Preview)
        for key in ("cut_labels", "mathjax"):
            known = self.seen.setdefault(key, [])
            known.extend(x for x in found[key] if x not in known)

    def shoot_cells(self, step: str, cell: Any = None) -> None:
        """A screenshot of `cell`, or of each code cell with outputs, in a viewport as tall as
        the notebook: JupyterLab scrolls inside its panel, so a tall cell would be cut off.
        """
        height = self.page.evaluate(TALL_JS)
        self.page.set_viewport_size({**VIEWPORT, "height": min(height + 400, 16000)})
        try:
            if cell is not None:
                self.shot(step, cell)
                return
            cells = self.page.locator(".jp-Notebook .jp-CodeCell")
            for i in range(cells.count()):
                if cells.nth(i).locator(".jp-OutputArea-output").count():
                    self.shot(f"{step}-code{i + 1:02d}", cells.nth(i))
        finally:
            self.page.set_viewport_size(VIEWPORT)

    # --- the panels' buttons ----------------------------------------------------------------

    def cell_with_button(self, pattern: str) -> Any:
        button = self.page.locator("button.jupyter-button").filter(has_text=re.compile(pattern))
        return self.page.locator(".jp-Notebook .jp-CodeCell").filter(has=button).first

    def press(self, cell: Any, pattern: str, what: str, timeout: float) -> str:
        """Press a button of a panel; wait until its log says something new and the kernel idles.

        The panels log every press of these buttons, done or failed (their one Output widget);
        returns what was added.
        """
        log = cell.locator(".widget-output").first
        before = log.inner_text() if log.count() else ""
        button = cell.locator("button.jupyter-button").filter(has_text=re.compile(pattern)).first
        self.seen.setdefault("buttons", {})[what] = {
            "label": button.inner_text().strip(),
            "disabled": button.is_disabled(),
        }
        if button.is_disabled():
            self.save()
            raise RuntimeError(f"the {what} button is disabled: {button.inner_text().strip()!r}")
        button.click()
        deadline = time.monotonic() + timeout
        while (log.inner_text() if log.count() else "") == before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: the panel reported nothing within {timeout:.0f} s")
            time.sleep(0.1)
        self.wait_idle(timeout)
        self.wait_still(cell, timeout)
        after = log.inner_text()
        said = after[len(before) :].strip() if after.startswith(before) else after.strip()
        self.seen.setdefault("logs", {})[what] = said
        self.save()
        return said

    def wait_still(self, cell: Any, timeout: float, quiet: float = 1.5) -> None:
        """Until the cell's text and bars stay unchanged for `quiet` s (work left in a thread)."""
        look = "(cell) => cell.innerText + [...cell.querySelectorAll('.progress-bar')].map((b) => b.style.width)"
        handle = cell.element_handle()
        last, since, deadline = None, time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.page.evaluate(look, handle)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the panel was still changing after {timeout:.0f} s")

    def setup_write(self) -> None:
        """01-setup: Write config to a new path, as an analyst would."""
        cell = self.cell_with_button(r"^\s*Write config")
        field = cell.locator(".widget-text", has_text="Write to").locator("input")
        field.fill(self.spec["write_to"])
        field.press("Enter")
        self.secret_typed(cell)
        self.press(cell, r"^\s*Test LDAP", "test-ldap", 60)
        self.press(cell, r"^\s*Test SCIM", "test-scim", 60)
        self.press(cell, r"^\s*Write config", "write", 120)
        self.inspect("after_write")
        self.shoot_cells("after-write", cell)
        self.shoot_cells("after-write-checklist", self.cell_with_button(r"^\s*Check every"))
        self.shoot_cells("after-write-mapping", self.cell_with_button(r"^\s*Map this entry"))

    def secret_typed(self, cell: Any) -> None:
        """A secret typed into a secret field by mistake: it must be cleared, never shown."""
        box = cell.locator(".widget-text", has_text="SCIM bearer token").locator("input")
        kept = box.input_value()
        box.fill(TYPED_SECRET)
        box.press("Enter")
        deadline = time.monotonic() + 20
        while box.input_value() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.seen["secret_typed"] = {
            "value_after": box.input_value(),
            "input_type": box.get_attribute("type"),
            "shown": TYPED_SECRET in self.page.locator(".jp-Notebook").inner_text(),
            "note": cell.locator(".widget-text", has_text="SCIM bearer token")
            .locator("xpath=..")
            .inner_text(),
        }
        self.shoot_cells("secret-typed", cell)
        box.fill(kept)  # the file it held, so that Write config writes
        box.press("Enter")
        self.save()

    def sync_apply(self) -> None:
        """04-sync: Preview, then Apply while sampling the progress bars; SCIM before and after."""
        self.seen["scim_before"] = scim_counts(Path(self.spec["lab_folder"]))
        self.save()
        cell = self.cell_with_button(r"^\s*Preview")
        self.press(cell, r"^\s*Preview", "preview", 120)
        self.inspect("after_preview")
        self.shoot_cells("after-preview", cell)
        self.page.evaluate(SAMPLE_JS, cell.element_handle())
        try:
            self.press(cell, r"^\s*(Apply|Nothing to apply)", "apply", 300)
        finally:
            self.page.evaluate("() => clearInterval(window.__sampler)")
            self.seen["progress"] = self.page.evaluate("() => window.__samples")
            self.save()
        self.seen["scim_after"] = scim_counts(Path(self.spec["lab_folder"]))
        self.inspect("after_apply")
        self.shoot_cells("after-apply", cell)
        if self.spec.get("find"):
            self.find_and_provision()

    def find_and_provision(self) -> None:
        """04-sync: two people change in LDAP; find one by mail, provision it on demand; only
        that one may change on the SCIM server."""
        folder = Path(self.spec["lab_folder"])
        one, other = lab_people(folder)[3:5]
        for person, title in ((one, "Provisioned In The Browser"), (other, "Not Provisioned")):
            set_lab_title(folder, person["dn"], title)
        before = scim_resources(folder)
        cell = self.cell_with_button(r"^\s*Provision")
        field = cell.locator(".widget-text", has_text="value contains").locator("input")
        field.fill(person_mail := one["mail"])
        field.press("Enter")
        count = cell.locator(".widget-html", has_text="objects match").first
        deadline = time.monotonic() + 60
        while not count.inner_text().strip().startswith("1 of") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.seen["find"] = {
            "mail": person_mail,
            "dn": one["dn"],
            "count": count.inner_text().strip(),
            "table": cell.locator(".widget-html table").first.inner_text(),
        }
        self.save()
        cell.locator("select[multiple]").select_option(index=0)
        button = cell.locator("button.jupyter-button").filter(has_text="Provision 1 picked now")
        button.wait_for(timeout=20_000)
        self.press(cell, r"^\s*Provision 1 picked now", "provision", 180)
        after = scim_resources(folder)
        changed = [u["userName"] for u in after["Users"] if u not in before["Users"]]
        self.seen["provision"] = {
            "changed_users": changed,
            "groups_same": after["Groups"] == before["Groups"],
            "users_before": len(before["Users"]),
            "users_after": len(after["Users"]),
            "titles": {
                u["userName"]: u.get("title")
                for u in after["Users"]
                if u["userName"] in (one["uid"], other["uid"])
            },
            "one": one["uid"],
            "other": other["uid"],
            "steps_text": cell.inner_text()[:4000],
        }
        self.inspect("after_provision")
        # the steps' data folded in <details>: open them for the screenshot
        self.page.evaluate(
            "(cell) => cell.querySelectorAll('details').forEach((d) => d.open = true)",
            cell.element_handle(),
        )
        self.shoot_cells("after-provision", cell)
        self.save()
        self.realtime_recent()

    def realtime_recent(self) -> None:
        """04-sync: Run until idle carries the other edit; the panel lists it as applied."""
        cell = self.cell_with_button(r"^\s*Run until idle")
        self.press(cell, r"^\s*Run until idle", "realtime", 180)
        self.seen["recent"] = cell.locator(".widget-html table").nth(1).inner_text()
        self.inspect("after_realtime")
        self.shoot_cells("after-realtime", cell)
        self.save()

    def open_saved(self) -> None:
        """Open an executed notebook as it was saved: no kernel (its kernelspec names none that
        exists: JupyterLab asks, and the dialog is answered "No Kernel"), untrusted, not run."""
        s = self.spec
        self.page.goto(f"{s['base']}/lab/tree/{s['notebook']}?token={s['token']}&reset")
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        dialog = self.page.locator(".jp-Dialog")
        try:
            dialog.wait_for(timeout=15_000)
        except Exception:  # no dialog: nothing to answer
            pass
        if dialog.count():
            self.seen["kernel_dialog"] = dialog.inner_text()[:300]
            no_kernel = dialog.get_by_role("button", name=re.compile("No Kernel"))
            if no_kernel.count():
                no_kernel.first.click()
            else:
                self.page.keyboard.press("Escape")
        self.seen["kernel_status"] = self.status()[:200]
        self.wait_widgets()
        self.inspect("after_open")
        self.save()
        self.shoot_cells("saved")

    def run(self) -> None:
        if self.spec.get("action") == "open-saved":
            self.open_saved()
            return
        self.open()
        self.shot("opened")
        self.run_all(self.spec["run_all_timeout"])
        self.inspect("after_run_all")
        self.save()
        self.shoot_cells("run-all")
        self.save()
        action = self.spec.get("action")
        if action == "setup-write":
            self.setup_write()
        elif action == "sync-apply":
            self.sync_apply()
        self.save()


TYPED_SECRET = "typed-by-mistake-8c1f"


def _lab_ldap(lab_folder: Path) -> Any:
    import ldap3

    state = json.loads((lab_folder / "lab.json").read_text())
    host, port = state["ldap_url"].split("//", 1)[1].rsplit(":", 1)
    password = (lab_folder / "secrets" / "ldap-password").read_text().strip()
    server = ldap3.Server(host, port=int(port))
    return ldap3.Connection(server, state["admin_dn"], password, auto_bind=True), state


def lab_people(lab_folder: Path) -> list[dict[str, str]]:
    """The lab's people (DN, uid, first mail), in DN order."""
    conn, state = _lab_ldap(lab_folder)
    conn.search(f"ou=people,{state['suffix']}", "(uid=*)", attributes=["uid", "mail"])
    people = [
        {"dn": e.entry_dn, "uid": str(e.uid.values[0]), "mail": str(e.mail.values[0])}
        for e in conn.entries
    ]
    conn.unbind()
    return sorted(people, key=lambda p: p["dn"])


def set_lab_title(lab_folder: Path, dn: str, title: str) -> None:
    import ldap3

    conn, _state = _lab_ldap(lab_folder)
    conn.modify(dn, {"title": [(ldap3.MODIFY_REPLACE, [title])]})
    conn.unbind()


def scim_resources(lab_folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every User and Group on the lab's SCIM server, as it answers (versions included)."""
    import httpx

    state = json.loads((lab_folder / "lab.json").read_text())
    url = state["scim_url"].rstrip("/")
    token = (lab_folder / "secrets" / "scim-token").read_text().strip()
    out: dict[str, list[dict[str, Any]]] = {}
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for kind in ("Users", "Groups"):
            found: list[dict[str, Any]] = []
            while True:
                page = client.get(
                    f"{url}/{kind}", params={"startIndex": len(found) + 1, "count": 500}
                )
                page.raise_for_status()
                resources = page.json().get("Resources", [])
                found += resources
                if len(resources) < 500:
                    break
            out[kind] = found
    return out


def scim_counts(lab_folder: Path) -> dict[str, Any]:
    """Users and groups on the SCIM server of the lab in `lab_folder` (and in its LDAP: "lab"),
    or why they cannot be read."""
    import httpx

    state_file = lab_folder / "lab.json"
    if not state_file.exists():
        return {"error": f"no {state_file}: the lab is not running"}
    state = json.loads(state_file.read_text())
    url = state["scim_url"].rstrip("/")
    token = (lab_folder / "secrets" / "scim-token").read_text().strip()
    counts: dict[str, Any] = {"lab": {"Users": state["users"], "Groups": state["groups"]}}
    try:
        for kind in ("Users", "Groups"):
            response = httpx.get(
                f"{url}/{kind}",
                params={"count": 0},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            response.raise_for_status()
            counts[kind] = response.json()["totalResults"]
    except httpx.HTTPError as exc:
        return {"error": f"{url}: {type(exc).__name__}: {exc}"}
    return counts


def main(spec_file: str) -> int:
    from playwright.sync_api import sync_playwright

    spec = json.loads(Path(spec_file).read_text())
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],  # --no-sandbox: CI runs as root
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(30_000)
        scenario = Scenario(spec, page)
        try:
            scenario.run()
        except Exception as exc:
            scenario.seen["crash"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]
            scenario.shot("crash")
            scenario.save()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
