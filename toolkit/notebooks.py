"""The notebooks as a library: list them, run one headless with papermill.

    from toolkit.notebooks import run_notebook
    run_notebook("03-dry-run", "out.ipynb", {"config_path": "sync.yaml", "output": "plan.json"})

Each notebook has a cell tagged `parameters`; papermill injects the given values after it.
A notebook whose `config_path` is empty starts its own lab (`lab_session`) and stops it at
the end, also when a cell fails: papermill stops at the first failing cell, so the lab is
stopped by the kernel's exit hook as well as by the notebook's last cell.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.config import Config, load_config
from toolkit.config.private import create_private
from toolkit.errors import FatalError, ScimsyncError

#: Where the notebooks live: `notebooks/` beside the package (a source checkout or editable install).
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

#: The notebooks, in the order of the job, with what each one does.
NOTEBOOKS: dict[str, str] = {
    "01-setup": "create-sync-pipe-config as a form: write a config, show it, validate it",
    "02-explore": "the directory data and the mapped SCIM records, side by side in pandas",
    "03-dry-run": "the dry run: summary, per-class tables, changes, an object's diff; saves the plan",
    "04-sync": "resync behind a confirm button, then realtime sync until idle, and the status",
}


class NotebookError(FatalError):
    """No such notebook or parameter."""


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


def notebook_parameters(name_or_path: str | Path) -> dict[str, Any]:
    """The parameters of a notebook's `parameters` cell with their default values."""
    import papermill

    found = papermill.inspect_notebook(str(notebook_path(name_or_path)))
    return {name: info["default"] for name, info in found.items()}


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

    NotebookError for an unknown notebook or parameter; NotebookFailed when a cell raises
    (the output notebook is still written and shows the failing cell).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = notebook_path(name_or_path)
    parameters = dict(parameters or {})
    known = notebook_parameters(source)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise NotebookError(
            f"{source.name}: no parameter {', '.join(unknown)} (it has {', '.join(known) or 'none'})"
        )
    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    create_private(output)  # papermill rewrites it by name, keeping the mode: 0600
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            cwd=str(cwd) if cwd is not None else None,
            progress_bar=progress,
            execution_timeout=timeout,
        )
    except PapermillExecutionError as exc:
        raise NotebookFailed(output, exc.exec_count, exc.ename, exc.evalue) from None
    return output


def parse_parameter(text: str) -> Any:
    """A `-p KEY VALUE` value as papermill's CLI reads it: None, booleans, numbers, else text."""
    if text in ("None", "none", "null"):
        return None
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# --- what the notebooks call ------------------------------------------------------------------


@dataclass
class LabSession:
    """The config a notebook works on: the one given, or that of a lab it started itself."""

    config_path: Path
    lab_folder: Path | None = None  # set when this session started the lab
    _owned_dir: Path | None = field(default=None, repr=False)
    closed: bool = False

    def config(self) -> Config:
        return load_config(self.config_path)

    def close(self) -> None:
        """Stop the lab this session started (idempotent); a given config is left alone."""
        if self.closed or self.lab_folder is None:
            return
        self.closed = True
        from toolkit.lab import lab

        try:
            lab.down(self.lab_folder)
        finally:
            if self._owned_dir is not None:
                shutil.rmtree(self._owned_dir, ignore_errors=True)


def lab_session(
    config_path: str | Path = "",
    lab_users: int = 100,
    lab_groups: int = 10,
    lab_dir: str | Path = "",
) -> LabSession:
    """`config_path`, or (when empty) a lab started in `lab_dir` (empty: a temporary folder).

    The lab is stopped by `close()`, and by the interpreter's exit when a cell fails first.
    """
    if str(config_path):
        path = Path(config_path)
        if not path.is_file():
            raise NotebookError(f"config_path {path}: no such file")
        return LabSession(path)
    from toolkit.lab import lab

    owned = None if str(lab_dir) else Path(tempfile.mkdtemp(prefix="scimsync-notebook-"))
    folder = Path(lab_dir) if str(lab_dir) else owned / "lab"  # type: ignore[operator]
    try:
        state = lab.up(folder, users=lab_users, groups=lab_groups)
    except BaseException:
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)
        raise
    session = LabSession(Path(state.config), Path(state.folder), owned)
    atexit.register(session.close)
    return session
