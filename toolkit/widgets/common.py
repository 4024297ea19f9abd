"""What every view shares: rendering frames and problem lists as HTML, a message log, display.

Views write into widget models only (HTML values, `Output.append_stdout`), never through
`with output: print()`: under a headless runner that text would leak into the cell's stdout
instead of the widget (see the notebooks reference, Part B).
"""

from __future__ import annotations

import html
import json
from typing import Any, TypeVar

import ipywidgets as widgets
import pandas as pd

from toolkit.plan import tables

ALL = "(all)"


def table_html(frame: pd.DataFrame, max_rows: int | None = 50, index: bool = True) -> str:
    """A frame as an escaped, bordered HTML table cut to `max_rows` (toolkit.plan.tables)."""
    return tables.table_html(frame, max_rows, index=index)


def lines_html(lines: list[str] | tuple[str, ...], title: str, color: str = "#b00020") -> str:
    """A titled list (problems, failures); empty when there are none."""
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(str(line))}</li>" for line in lines)
    return f'<div class="{tables.NO_MATHJAX}" style="color:{color}"><b>{html.escape(title)}</b><ul>{items}</ul></div>'


def json_html(value: Any) -> str:
    """A value as pretty JSON in a <pre> block."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return pre_html(text)


def pre_html(text: str) -> str:
    # MathJax would typeset a `$` of the data as a formula
    return f'<pre class="{tables.NO_MATHJAX}">{html.escape(text)}</pre>'


W = TypeVar("W", bound=widgets.DOMWidget)


def fitted(widget: W) -> W:
    """`widget` sized to its own text: a button to its label, a description to its words, so
    that no label is cut at the notebook's default width (ipywidgets gives buttons and
    descriptions a fixed width)."""
    if isinstance(widget, widgets.Button | widgets.Checkbox):
        widget.layout.width = "auto"
    style = getattr(widget, "style", None)
    if style is not None and hasattr(style, "description_width"):
        style.description_width = "initial"
    return widget


class Log:
    """A message area written through the widget model (headless-safe)."""

    def __init__(self) -> None:
        self.output = widgets.Output(layout=widgets.Layout(max_height="16em", overflow="auto"))
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        self.lines.append(text)
        self.output.append_stdout(text.rstrip("\n") + "\n")

    def clear(self) -> None:
        self.lines.clear()
        self.output.outputs = ()


class View:
    """A composed view: `box` holds its widgets; displaying the view displays the box.

    Its output also carries a static HTML copy of what the view shows when displayed: a saved
    notebook opened untrusted or without a kernel shows that copy (JupyterLab renders widget
    views from trusted notebooks only) instead of the text `VBox(children=...)`."""

    box: widgets.Box

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return with_static_copy(self.box, f"<{type(self).__name__}: run the notebook>", **kwargs)


def with_static_copy(widget: widgets.Widget, plain: str, **kwargs: Any) -> Any:
    """`widget`'s display data plus a static HTML copy of what it shows (static_html) and a
    short text: what a saved notebook shows where the live widget cannot be."""
    bundle = widget._repr_mimebundle_(**kwargs)
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    if isinstance(data, dict):
        data["text/html"] = static_html(widget)
        data["text/plain"] = plain
    return bundle


def static_html(widget: widgets.Widget) -> str:
    """What a widget tree shows, as plain HTML: HTML widgets' content, tabs under their titles,
    controls as their label and value; buttons and empty parts left out."""
    if isinstance(widget, widgets.HTML | widgets.HTMLMath):
        return widget.value
    if isinstance(widget, widgets.Tab):
        parts = []
        for i, child in enumerate(widget.children):
            title = widget.get_title(i) if hasattr(widget, "get_title") else widget.titles[i]
            parts.append(f"<h4>{html.escape(str(title))}</h4>{static_html(child)}")
        return "".join(parts)
    if isinstance(widget, widgets.Box):
        parts = [static_html(child) for child in widget.children]
        inline = isinstance(widget, widgets.HBox)
        joiner = " &nbsp; " if inline else ""
        return f"<div>{joiner.join(p for p in parts if p)}</div>"
    if isinstance(widget, widgets.Output):
        text = "".join(
            o.get("text", "") for o in widget.outputs if o.get("output_type") == "stream"
        )
        return pre_html(text) if text.strip() else ""
    if isinstance(widget, widgets.ValueWidget) and not isinstance(widget, widgets.Button):
        label = getattr(widget, "description", "")
        value = widget.value
        if isinstance(widget, widgets.Dropdown):
            value = widget.label
        if isinstance(widget, widgets.Password) or value in (None, ""):
            return ""
        return f"<span><b>{html.escape(label)}</b> {html.escape(str(value))}</span>"
    return ""


def error_text(exc: BaseException) -> str:
    """An error for the user: scimsync's own messages as they are, others with their type."""
    from toolkit.errors import ScimsyncError

    return str(exc) if isinstance(exc, ScimsyncError) else f"{type(exc).__name__}: {exc}"
