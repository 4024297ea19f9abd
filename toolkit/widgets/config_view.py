"""The config viewer: servers, sources, destinations, pipes and classes as tables, the YAML,
and a Validate button. Everything comes from `Config.to_dict()`, so secrets show as their
`${env:}`/`${file:}` references only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from toolkit.config import Config, Problem, load_config, validate_file
from toolkit.config.document import dump_document
from toolkit.widgets.common import Log, View, error_text, fitted, lines_html, pre_html, table_html


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(value)  # nested objects (sync classes): their names
    return value


def section_frame(section: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per named object of a config section, one column per property."""
    rows = {name: {k: _cell(v) for k, v in props.items()} for name, props in section.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def classes_frame(data: dict[str, Any]) -> pd.DataFrame:
    """Every sync class of every pipe, in evaluation order."""
    rows = []
    for pipe, props in data["sync-pipes"].items():
        for name, cls in props.get("sync-classes", {}).items():
            rows.append({"pipe": pipe, "class": name, **{k: _cell(v) for k, v in cls.items()}})
    frame = pd.DataFrame(rows)
    if "evaluation-order-index" in frame.columns:
        frame = frame.sort_values(["pipe", "evaluation-order-index"], kind="stable")
    return frame.reset_index(drop=True)


class ConfigViewer(View):
    """A config as tables and YAML, with a Validate button (`validate_button.click()` headless)."""

    def __init__(self, config: Config | str | Path):
        self.config = config if isinstance(config, Config) else load_config(config)
        self.data = self.config.to_dict()  # secrets as references only
        self.problems: list[Problem] | None = None
        self.title = widgets.HTML(f"<h3>Sync configuration {self.config.path.name}</h3>")
        sections = [
            ("servers", table_html(section_frame(self.data["external-servers"]))),
            ("sources", table_html(section_frame(self.data["sync-sources"]))),
            ("destinations", table_html(section_frame(self.data["sync-destinations"]))),
            ("pipes", table_html(section_frame(self.data["sync-pipes"]))),
            ("classes", table_html(classes_frame(self.data), index=False)),
            ("YAML", pre_html(dump_document(self.data))),
        ]
        self.tabs = widgets.Tab(children=[widgets.HTML(body) for _, body in sections])
        for i, (name, _) in enumerate(sections):
            self.tabs.set_title(i, name)
        self.validate_button = fitted(widgets.Button(description="Validate", icon="check"))
        self.validate_button.on_click(self._validate)
        self.result = widgets.HTML()
        self.log = Log()
        self.box = widgets.VBox(
            [self.title, self.tabs, self.validate_button, self.result, self.log.output]
        )

    def tab_html(self, name: str) -> str:
        """The HTML of one tab, by its title."""
        for i, child in enumerate(self.tabs.children):
            if self.tabs.get_title(i) == name:
                return child.value
        raise KeyError(name)

    def _validate(self, _button: widgets.Button | None = None) -> None:
        try:
            self.problems = validate_file(self.config.path)
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self.log.say(error_text(exc))
            return
        if self.problems:
            self.result.value = lines_html(
                [p.located(self.config.path.name) for p in self.problems],
                f"{len(self.problems)} problem(s)",
            )
        else:
            self.result.value = f'<p style="color:green">{self.config.path.name}: valid</p>'
