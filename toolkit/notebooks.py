"""The notebooks as a library: list them, check their parameters, run one headless with papermill.

    from toolkit.notebooks import run_notebook
    run_notebook("03-dry-run", "out.ipynb", {"config_path": "sync.yaml", "output": "plan.json"})

Each notebook has a cell tagged `parameters` whose names carry types (`confirm: bool = False`,
`source_search_filter: "LdapFilter" = ""`); papermill injects the given values after it. Both
`run_notebook` (before a kernel starts) and the notebook's first cell after the parameters
(`check_parameters(globals(), NAME)`, so that plain papermill is safe too) check them with
`check_values`: wrong types and unknown names are refused, each error naming the parameter.

A notebook whose `config_path` is empty starts its own lab (`lab_session`). Headless (a
papermill run) its last cell stops the lab; in an interactive session the lab lives as long as
the kernel, so the buttons keep working after Run All: a "Stop lab" button stops it, and the
kernel's exit (or, should the kernel be killed, a watchdog process) stops it and removes it.
"""

from __future__ import annotations

import ast
import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.config import Config, load_config
from toolkit.config.private import create_private
from toolkit.errors import FatalError, ScimsyncError

#: The notebooks, shipped inside the package (in a checkout, a link to `notebooks/`).
NOTEBOOK_DIR = (Path(__file__).parent / "notebook_files").resolve()

#: Where outputs go when a notebook is not told: a new folder per run under this one.
RUNS_DIR = Path("scimsync-runs")

#: Set in the kernel's environment by `run_notebook`: the run is headless.
HEADLESS_ENV = "SCIMSYNC_NOTEBOOK_HEADLESS"

#: The notebooks, in the order of the job, with what each one does.
NOTEBOOKS: dict[str, str] = {
    "01-setup": "create-sync-pipe-config as a form: write a config, show it, validate it",
    "02-explore": "the directory data and the mapped SCIM records, side by side in pandas",
    "03-dry-run": "the dry run: summary, per-class tables, changes, an object's diff; saves the plan",
    "04-sync": "resync behind a confirm button, then realtime sync until idle, and the status",
}


class NotebookError(FatalError):
    """No such notebook, or a parameter that is unknown or of the wrong type."""


class NotebookFailed(ScimsyncError):
    """A cell of a notebook run raised; the output notebook shows which and why."""

    def __init__(self, output: Path, exec_count: int | None, ename: str, evalue: str):
        self.output, self.exec_count, self.ename, self.evalue = output, exec_count, ename, evalue
        where = f"cell In [{exec_count}]" if exec_count is not None else "a cell"
        super().__init__(f"{output}: {where} raised {ename}: {evalue}")


def notebook_path(name_or_path: str | Path) -> Path:
    """A notebook file: an existing path, a name of NOTEBOOKS, or a unique part of one ("03", "dry-run")."""
    given = Path(name_or_path)
    if given.suffix == ".ipynb" and given.is_file():
        return given
    text = str(name_or_path).removesuffix(".ipynb")
    if text in NOTEBOOKS:
        return NOTEBOOK_DIR / f"{text}.ipynb"
    found = [name for name in NOTEBOOKS if name.startswith(text) or name.endswith(text)]
    if len(found) == 1:
        return NOTEBOOK_DIR / f"{found[0]}.ipynb"
    raise NotebookError(
        f"no notebook {str(name_or_path)!r}: use one of {', '.join(NOTEBOOKS)} or a path to an .ipynb file"
    )


@dataclass(frozen=True)
class Parameter:
    """A notebook parameter as its `parameters` cell declares it."""

    name: str
    kind: str  # a key of KINDS
    default: str  # as written in the cell
    help: str


def declared_parameters(name_or_path: str | Path) -> dict[str, Parameter]:
    """The parameters of a notebook's `parameters` cell, with their declared kinds."""
    import papermill

    source = notebook_path(name_or_path)
    found = papermill.inspect_notebook(str(source))
    declared = {
        name: Parameter(name, info["inferred_type_name"], info["default"], info["help"])
        for name, info in found.items()
    }
    untyped = [p.name for p in declared.values() if p.kind not in KINDS]
    if untyped:
        raise NotebookError(
            f"{source.name}: parameter {', '.join(untyped)} has no type ({', '.join(KINDS)})"
        )
    return declared


def notebook_parameters(name_or_path: str | Path) -> dict[str, str]:
    """The parameters of a notebook's `parameters` cell with their default values (as written)."""
    return {name: p.default for name, p in declared_parameters(name_or_path).items()}


# --- parameter kinds: each takes a value as papermill passes it, returns it typed -------------

BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str) and str(value).strip().lower() in BOOLEANS:
        return BOOLEANS[str(value).strip().lower()]
    raise ValueError(f"expected true/false/yes/no/1/0, got {value!r}")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        raise ValueError(f"expected a whole number, got {value!r}")
    if number < 0:
        raise ValueError(f"expected a whole number of 0 or more, got {number}")
    return number


def _text(value: Any) -> str:
    """Text; None (papermill's `none`) is empty, a whole number (papermill's CLI reads `-p x 7`
    as 7) its digits. Anything else (true, 0.5, a list) was meant for another parameter."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {value!r}")


def _file(value: Any) -> str:
    text = _text(value)
    if text and not Path(text).expanduser().is_file():
        raise ValueError(f"{text}: no such file")
    return text


def _path(value: Any) -> str:
    text = _text(value)
    if text and Path(text).expanduser().is_dir():
        raise ValueError(f"{text} is a folder: expected a file name")
    return text


def _folder(value: Any) -> str:
    text = _text(value)
    if text and Path(text).expanduser().exists() and not Path(text).expanduser().is_dir():
        raise ValueError(f"{text} is a file: expected a folder")
    return text


def _ldap_filter(value: Any) -> str:
    from toolkit.config.ldapfilter import parse_filter

    text = _text(value)
    if text:
        parse_filter(text)  # FilterError says where the filter is wrong
    return text


def _duration(value: Any) -> str:
    from toolkit.config.durations import parse_duration

    text = _text(value)
    if text:
        parse_duration(text)
    return text


def _delete_limit(value: Any) -> str:
    from toolkit.config.properties import parse_delete_limit

    text = _text(value)
    if text:
        try:
            parse_delete_limit(text)
        except ScimsyncError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None
    return text


#: The kinds a parameters cell may declare: builtins, or a quoted name ("LdapFilter").
KINDS: dict[str, Callable[[Any], Any]] = {
    "bool": _bool,
    "int": _int,
    "str": _text,
    "File": _file,  # an existing file (empty: none)
    "Path": _path,  # a file to write (empty: the default)
    "Folder": _folder,  # a folder, made if missing (empty: the default)
    "LdapFilter": _ldap_filter,  # an RFC 4515 filter
    "Duration": _duration,  # "500 ms", "2 h"
    "DeleteLimit": _delete_limit,  # "50" or "5%"
}


def check_values(
    declared: dict[str, str], given: dict[str, Any], where: str = "notebook"
) -> dict[str, Any]:
    """`given` typed by the `declared` kinds (name -> kind); NotebookError naming every
    unknown parameter and every parameter of the wrong type. Nothing is touched on a server."""
    problems = []
    unknown = sorted(set(given) - set(declared))
    if unknown:
        problems.append(
            f"no parameter {', '.join(unknown)} (it has {', '.join(declared) or 'none'})"
        )
    typed = {}
    for name, value in given.items():
        if name not in declared:
            continue
        kind = KINDS.get(declared[name])
        if kind is None:
            problems.append(
                f"parameter {name}: its declared type {declared[name]} is none of {', '.join(KINDS)}"
            )
            continue
        try:
            typed[name] = kind(value)
        except ValueError as exc:
            problems.append(f"parameter {name}: {exc}")
    if problems:
        raise NotebookError(f"{where}: " + "; ".join(problems))
    return typed


def new_run_folder(name: str) -> Path:
    """A new folder for one run's outputs: scimsync-runs/NAME-YYYYmmdd-HHMMSS (not made yet)."""
    folder = RUNS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while folder.exists():
        n += 1
        folder = RUNS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    return folder


# --- in the notebook: its first cell after the parameters --------------------------------------


@dataclass
class NotebookRun:
    """One run of a notebook, as its first cell after the parameters sees it."""

    name: str
    headless: bool
    run_dir: Path | None = None  # the `run_dir` parameter; None: made when first needed

    def folder(self) -> Path:
        """The run folder for this run's outputs (made on first use, never the cwd itself)."""
        if self.run_dir is None:
            self.run_dir = new_run_folder(self.name)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self.run_dir

    def output(self, given: str, default_name: str) -> Path:
        """`given`, or `default_name` in the run folder."""
        return Path(given).expanduser() if given else self.folder() / default_name


def _injected_names(history: list[str]) -> set[str]:
    """The names papermill's injected-parameters cell assigned (it starts with '# Parameters')."""
    names: set[str] = set()
    for source in history:
        if source.lstrip().startswith("# Parameters"):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Assign):
                    names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def check_parameters(namespace: dict[str, Any], name: str) -> NotebookRun:
    """Check the parameters in a kernel's `namespace` (`globals()`) and type them in place.

    The declared set is the parameters cell's annotated names; a name that papermill's
    injected cell assigned but the cell does not declare is refused. Headless is a run of
    `run_notebook`, which says so in the kernel's environment.
    """
    annotations = namespace.get("__annotations__", {})
    declared = {
        k: (v if isinstance(v, str) else getattr(v, "__name__", str(v)))
        for k, v in annotations.items()
    }
    history = list(namespace.get("In", []))
    injected = _injected_names(history)
    given = {k: namespace[k] for k in set(declared) | injected if k in namespace}
    namespace.update(check_values(declared, given, f"{name}.ipynb"))
    # only `run_notebook` says headless: a notebook papermill ran, opened again in JupyterLab,
    # holds the same injected cell, and its lab must then outlive Run All (plain papermill's
    # lab is stopped when the kernel shuts down, as every notebook's is)
    headless = os.environ.get(HEADLESS_ENV) == "1"
    run_dir = namespace.get("run_dir") or None
    return NotebookRun(name, headless, Path(run_dir).expanduser() if run_dir else None)


# --- headless: papermill -----------------------------------------------------------------------


def _kernel_manager_class() -> type:
    """A kernel manager for quiet headless runs: IPC sockets (no "running over TCP without
    encryption" warning) and no SIGINT at shutdown (jupyter_client interrupts an idle kernel
    before asking it to shut down, which ipykernel logs as "KeyboardInterrupt caught")."""
    from jupyter_client import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:  # a real interrupt (a cell timing out) still goes through
                await super()._async_interrupt_kernel()

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            env = dict(kw.pop("env", None) or os.environ)
            env[HEADLESS_ENV] = "1"
            return await super()._async_pre_start_kernel(env=env, **kw)

    return QuietKernelManager


def run_notebook(
    name_or_path: str | Path,
    output_path: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    cwd: str | Path | None = None,
    progress: bool = False,
    timeout: float | None = None,
) -> Path:
    """Run a notebook headless with papermill; the executed notebook is written to `output_path`.

    The parameters are checked (and typed) before a kernel starts: NotebookError for an unknown
    notebook or parameter, or a value of the wrong type; NotebookFailed when a cell raises (the
    output notebook is still written and shows the failing cell).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = notebook_path(name_or_path)
    declared = {name: p.kind for name, p in declared_parameters(source).items()}
    typed = check_values(declared, dict(parameters or {}), source.name)
    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    create_private(output)  # papermill rewrites it by name, keeping the mode: 0600
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=typed,
            cwd=str(cwd) if cwd is not None else None,
            progress_bar=progress,
            execution_timeout=timeout,
            kernel_manager_class=_kernel_manager_class(),
        )
    except PapermillExecutionError as exc:
        raise NotebookFailed(output, exc.exec_count, exc.ename, exc.evalue) from None
    return output


# --- what the notebooks call ------------------------------------------------------------------


@dataclass
class LabSession:
    """The config a notebook works on: the one given, or that of a lab it started itself.

    Displayed, a session that started a lab shows what runs and a "Stop lab" button.
    """

    config_path: Path
    lab_folder: Path | None = None  # set when this session started the lab
    _owned_dir: Path | None = field(default=None, repr=False)  # a temporary folder to remove
    _watchdog: Any = field(default=None, repr=False)
    stopped: bool = False
    _status: Any = field(default=None, repr=False)  # the view's label and button, once shown
    _button: Any = field(default=None, repr=False)

    def config(self) -> Config:
        return load_config(self.config_path)

    def stop(self) -> None:
        """Stop the lab this session started (idempotent); a given config is left alone.

        The lab's folder (config, secret files) stays until the kernel exits, so that a widget
        pressed afterwards reports servers that do not answer, not missing files.
        """
        if self.stopped or self.lab_folder is None:
            return
        from toolkit.lab import lab

        self.stopped = True
        try:
            lab.down(self.lab_folder)
        except lab.LabError:
            pass  # already down (`scimsync lab down` on its folder)
        self._show()

    def close(self) -> None:
        """Stop the lab and remove its temporary folder (the kernel's exit does this)."""
        self.stop()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None

    def finish(self, run: NotebookRun) -> str:
        """The last cell: headless, stop the lab now; interactive, keep it for the buttons."""
        if self.lab_folder is None:
            return "done (the given config's servers are left alone)"
        if run.headless:
            self.stop()
            return "lab stopped"
        if self.stopped:
            return "the lab was stopped"
        return (
            "the lab keeps running for the buttons above; press Stop lab, "
            "or shut the kernel down (which stops it)"
        )

    # --- the view ---------------------------------------------------------------------------

    def _text(self) -> str:
        if self.lab_folder is None:
            return f"config {self.config_path.name}"
        if self.stopped:
            return "lab stopped: its servers no longer answer; the widgets above will say so"
        return "lab started for this notebook; it runs until you press Stop lab or the kernel shuts down"

    def _show(self) -> None:
        if self._status is not None and self._button is not None:
            self._status.value = self._text()
            self._button.disabled = self.stopped

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if self.lab_folder is None:
            return {"text/plain": self._text()}
        import ipywidgets as widgets

        self._status = widgets.Label(self._text())
        self._button = widgets.Button(description="Stop lab", icon="stop", disabled=self.stopped)
        self._button.on_click(lambda _b: self.stop())
        from toolkit.widgets.common import with_static_copy

        view = widgets.HBox([self._button, self._status])
        return with_static_copy(view, self._text(), **kwargs)  # saved notebooks: the text


def lab_session(
    config_path: str | Path = "",
    lab_users: int = 100,
    lab_dir: str | Path = "",
    lab_groups: int = 10,
) -> LabSession:
    """`config_path`, or (when empty) a lab started in `lab_dir` (empty: a temporary folder).

    A lab started here is stopped by `stop()` (Stop lab, or a headless run's last cell), and
    when the kernel exits: by an exit hook, and by a watchdog process should the kernel be killed.
    """
    if str(config_path):
        path = Path(config_path).expanduser()
        if not path.is_file():
            raise NotebookError(f"config_path {path}: no such file")
        return LabSession(path)
    from toolkit.lab import lab, watchdog

    owned = None if str(lab_dir) else Path(tempfile.mkdtemp(prefix="scimsync-notebook-"))
    folder = Path(lab_dir).expanduser() if str(lab_dir) else owned / "lab"  # type: ignore[operator]
    try:
        state = lab.up(folder, users=lab_users, groups=lab_groups)
    except BaseException:
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)
        raise
    session = LabSession(Path(state.config), Path(state.folder), owned)
    session._watchdog = watchdog.watch(os.getpid(), Path(state.folder), owned)
    atexit.register(session.close)
    return session
