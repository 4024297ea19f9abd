"""Notebook parameters are typed and checked, through `scimsync notebook run` (before a kernel
starts) and through plain papermill (by the notebook's first cell after the parameters).

A probe notebook declares one parameter of every kind, so that one kernel run checks a whole
table; the real notebooks show that a refusal, or `confirm` false in any spelling, applies
nothing to the SCIM server.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from toolkit.cli import main
from toolkit.config import load_config
from toolkit.lab import lab
from toolkit.notebooks import KINDS, NotebookError, check_values, notebook_path, run_notebook
from toolkit.scim.client import ScimClient
from toolkit.scim.fromconfig import destination_endpoint

pytestmark = pytest.mark.timeout(300)

SPELLINGS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "yes": True,
    "Yes": True,
    "YES": True,
    "1": True,
    "false": False,
    "False": False,
    "FALSE": False,
    "no": False,
    "No": False,
    "NO": False,
    "0": False,
}

#: (kind, value, what the refusal says) for every kind.
WRONG = [
    ("bool", "maybe", "expected true/false/yes/no/1/0, got 'maybe'"),
    ("bool", "", "expected true/false/yes/no/1/0, got ''"),
    ("bool", "on", "expected true/false/yes/no/1/0, got 'on'"),
    ("bool", 2, "expected true/false/yes/no/1/0, got 2"),
    ("bool", 0.5, "expected true/false/yes/no/1/0, got 0.5"),
    ("bool", None, "expected true/false/yes/no/1/0, got None"),
    ("int", "many", "expected a whole number, got 'many'"),
    ("int", "2.5", "expected a whole number, got '2.5'"),
    ("int", 2.5, "expected a whole number, got 2.5"),
    ("int", True, "expected a whole number, got True"),
    ("int", -3, "expected a whole number of 0 or more, got -3"),
    ("str", True, "expected text, got True"),
    ("str", 0.5, "expected text, got 0.5"),
    ("LdapFilter", "(uid=", "unbalanced"),
    ("LdapFilter", "uid=a)(", "a filter must start with '('"),
    ("Duration", "5", "expected a duration with a unit"),
    ("Duration", "5 parsecs", "unknown unit 'parsecs'"),
    ("DeleteLimit", "lots", "expected a count (e.g. 500) or a percentage (e.g. 10%), got 'lots'"),
    ("DeleteLimit", "150%", "got '150%'"),
    ("File", "/no/such/file.yaml", "/no/such/file.yaml: no such file"),
    ("Path", "/", "/ is a folder: expected a file name"),
    ("Folder", "/etc/hostname", "/etc/hostname is a file: expected a folder"),
]

RIGHT = [
    ("int", "5", 5),
    ("int", 7, 7),
    ("str", None, ""),
    ("str", 2024, "2024"),  # papermill's CLI reads `-p pipe_name 2024` as a number
    ("LdapFilter", "(&(uid=a*)(!(title=x)))", "(&(uid=a*)(!(title=x)))"),
    ("Duration", "2 h 30 min", "2 h 30 min"),
    ("DeleteLimit", "5%", "5%"),
    ("DeleteLimit", 50, "50"),
    ("File", "", ""),
    ("Path", "out/plan.json", "out/plan.json"),
    ("Folder", "/tmp", "/tmp"),
]


def probe_notebook(folder: Path) -> Path:
    """One parameter of each kind, a boolean per spelling, the check cell, and a cell that
    prints what the check typed (as JSON)."""
    booleans = [f"b{i}: bool = False" for i in range(len(SPELLINGS))]
    others = [
        "n: int = 1",
        's: str = ""',
        'f: "LdapFilter" = ""',
        'd: "Duration" = ""',
        'm: "DeleteLimit" = ""',
        'c: "File" = ""',
        'o: "Path" = ""',
        'r: "Folder" = ""',
    ]
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("\n".join(booleans + others))
    parameters.metadata.tags = ["parameters"]
    nb.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "from toolkit.notebooks import check_parameters\n"
            'run = check_parameters(globals(), "probe")'
        ),
        nbformat.v4.new_code_cell(
            "import json\n"
            "print(json.dumps({'typed': {k: globals()[k] for k in __annotations__},"
            " 'headless': run.headless}))"
        ),
    ]
    path = folder / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def printed(output: Path) -> dict:
    nb = nbformat.read(output, as_version=4)
    return json.loads(nb.cells[-1].outputs[0]["text"])


def spelled() -> dict[str, str]:
    return {f"b{i}": spelling for i, spelling in enumerate(SPELLINGS)}


def expected_booleans() -> dict[str, bool]:
    return {f"b{i}": value for i, value in enumerate(SPELLINGS.values())}


# --- the checks themselves ----------------------------------------------------------------------


@pytest.mark.parametrize("spelling,value", list(SPELLINGS.items()))
def test_every_boolean_spelling_is_read(spelling, value):
    assert check_values({"confirm": "bool"}, {"confirm": spelling}) == {"confirm": value}


@pytest.mark.parametrize("kind,value,message", WRONG)
def test_a_wrong_value_is_refused_naming_the_parameter(kind, value, message):
    with pytest.raises(NotebookError) as refused:
        check_values({"some_param": kind}, {"some_param": value}, "x.ipynb")
    text = str(refused.value)
    assert text.startswith("x.ipynb: parameter some_param: ") and message in text


@pytest.mark.parametrize("kind,value,typed", RIGHT)
def test_a_right_value_is_typed(kind, value, typed):
    assert check_values({"p": kind}, {"p": value}) == {"p": typed}


def test_every_kind_is_in_the_tables():
    assert {k for k, _, _ in WRONG} == set(KINDS)


def test_every_problem_is_named_at_once():
    with pytest.raises(NotebookError) as refused:
        check_values(
            {"confirm": "bool", "max_rows": "int"},
            {"confirm": "nope", "max_rows": "x", "colour": "blue", "size": 1},
        )
    text = str(refused.value)
    assert "no parameter colour, size (it has confirm, max_rows)" in text
    assert "parameter confirm:" in text and "parameter max_rows:" in text


# --- through `scimsync notebook run` and plain papermill -------------------------------------------


def test_notebook_run_reads_every_boolean_spelling(tmp_path, capsys):
    probe, out = probe_notebook(tmp_path), tmp_path / "out.ipynb"
    argv = ["notebook", "run", str(probe), "--output", str(out)]
    for name, spelling in spelled().items():
        argv += ["-p", name, spelling]
    argv += ["-p", "n", "12", "-p", "s", "007", "-p", "m", "5%"]
    assert main(argv) == 0
    shown = printed(out)
    assert shown["typed"] == {
        **expected_booleans(),
        "n": 12,
        "s": "007",  # text stays text
        "f": "",
        "d": "",
        "m": "5%",
        "c": "",
        "o": "",
        "r": "",
    }
    assert shown["headless"] is True


def test_plain_papermill_reads_every_boolean_spelling(tmp_path):
    probe, out = probe_notebook(tmp_path), tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(probe), str(out), parameters={**spelled(), "n": "3"}, progress_bar=False
    )
    shown = printed(out)
    assert {k: v for k, v in shown["typed"].items() if k.startswith("b")} == expected_booleans()
    assert shown["typed"]["n"] == 3
    # only `notebook run` says headless (an output notebook opened in JupyterLab holds the same
    # injected cell); plain papermill's lab stops with its kernel (test_notebooks_session)
    assert shown["headless"] is False


#: one wrong value per parameter of the probe; every name must be in the refusal
WRONG_RUN = {
    "b0": "maybe",
    "n": "many",
    "f": "(uid=",
    "d": "soon",
    "m": "lots",
    "c": "/no/such/config.yaml",
    "o": "/",
    "r": "/etc/hostname",
    "colour": "blue",
}


def test_notebook_run_refuses_wrong_values_before_a_kernel_starts(tmp_path, capsys):
    probe, out = probe_notebook(tmp_path), tmp_path / "out.ipynb"
    argv = ["notebook", "run", str(probe), "--output", str(out)]
    for name, value in WRONG_RUN.items():
        argv += ["-p", name, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for name in WRONG_RUN:
        assert (f"parameter {name}:" if name != "colour" else "no parameter colour") in err
    assert not out.exists()  # refused before papermill wrote anything


def test_plain_papermill_refuses_wrong_values_in_the_notebook(tmp_path):
    probe, out = probe_notebook(tmp_path), tmp_path / "out.ipynb"
    with pytest.raises(PapermillExecutionError) as failed:
        papermill.execute_notebook(str(probe), str(out), parameters=WRONG_RUN, progress_bar=False)
    assert failed.value.ename == "NotebookError"
    for name in WRONG_RUN:
        assert (f"parameter {name}:" if name != "colour" else "no parameter colour") in (
            failed.value.evalue
        )
    assert nbformat.read(out, as_version=4).cells[-1].outputs == []  # it stopped at the check


# --- the real notebooks: a refusal, or confirm false, applies nothing ----------------------------


@pytest.fixture
def small_lab(tmp_path):
    folder = tmp_path / "lab"
    state = lab.up(folder, users=20, groups=2)
    yield state
    lab.down(folder)


def scim_users(config_path: str) -> int:
    config = load_config(Path(config_path))
    with ScimClient(destination_endpoint(config, config.pipe())) as client:
        return len(client.find("User", None))


@pytest.mark.parametrize("spelling", ["no", "FALSE", "0"])
def test_plain_papermill_confirm_false_in_any_spelling_applies_nothing(
    small_lab, tmp_path, spelling
):
    out = tmp_path / "04.ipynb"
    papermill.execute_notebook(
        str(notebook_path("04-sync")),
        str(out),
        parameters={"config_path": small_lab.config, "confirm": spelling},
        progress_bar=False,
    )
    assert scim_users(small_lab.config) == 0
    text = "".join(
        o.get("text", "") for c in nbformat.read(out, 4).cells for o in c.get("outputs", [])
    )
    assert "previewed 22 objects, 22 to change" in text and "preview only" in text


def test_notebook_run_confirm_no_applies_nothing(small_lab, tmp_path, capsys):
    out = tmp_path / "04.ipynb"
    argv = ["--config", small_lab.config, "notebook", "run", "04", "-p", "confirm", "No"]
    assert main(argv + ["--output", str(out)]) == 0
    assert nbformat.read(out, 4).metadata.papermill.parameters["confirm"] is False
    assert scim_users(small_lab.config) == 0


@pytest.mark.parametrize(
    "parameters,named",
    [
        ({"confirm": "sure"}, "parameter confirm:"),
        ({"confirm": "true", "allow_deletes": "please"}, "parameter allow_deletes:"),
        ({"confirm": "true", "max_changes": "many"}, "parameter max_changes:"),
        ({"confirm": "true", "colour": "blue"}, "no parameter colour"),
    ],
)
def test_a_refused_parameter_applies_nothing_under_plain_papermill(
    small_lab, tmp_path, parameters, named
):
    out = tmp_path / "04.ipynb"
    with pytest.raises(PapermillExecutionError) as failed:
        papermill.execute_notebook(
            str(notebook_path("04-sync")),
            str(out),
            parameters={"config_path": small_lab.config, **parameters},
            progress_bar=False,
        )
    assert named in failed.value.evalue
    assert scim_users(small_lab.config) == 0


def test_a_parameter_of_an_unknown_type_is_refused():
    with pytest.raises(NotebookError, match="parameter ratio: its declared type float is none of"):
        check_values({"ratio": "float"}, {"ratio": 0.5})


def test_run_notebook_without_parameters_still_runs_headless(tmp_path):
    """No parameters: papermill injects no cell; the kernel's environment says headless."""
    out = run_notebook(probe_notebook(tmp_path), tmp_path / "out.ipynb", {})
    assert printed(out)["headless"] is True
