"""Frames as HTML tables for people: borders, headers aligned with their columns, numbers to
the right, old values red and new values green, situations in their colour, no MathJax.

One renderer for the HTML report, the notebooks' static tables and the widgets' tables.
Styles are inline: JupyterLab's sanitizer keeps inline styles in an untrusted notebook, and
a widget's HTML gets no stylesheet of ours. The table carries `tex2jax_ignore` and
`mathjax_ignore`: MathJax leaves data alone (LDAP's postalAddress separates lines with `$`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

#: one colour per situation, the same in every chart and table
SITUATION_COLORS = {
    "create": "#2e7d32",
    "modify": "#1565c0",
    "delete": "#c62828",
    "unchanged": "#757575",
    "conflict": "#ef6c00",
    "adopt": "#6a1b9a",
    "out-of-scope": "#9e9e9e",
    "duplicate": "#8d6e63",
}
OLD_BACKGROUND = "#fdecea"
NEW_BACKGROUND = "#e6f4ea"
#: columns shown as old (red) and new (green) values
OLD_COLUMNS = ("old", "removed")
NEW_COLUMNS = ("new", "added")
#: values up to this many characters are kept on one line
SHORT = 32
#: columns shown as a percentage
RATE_COLUMNS = ("rate",)

NO_MATHJAX = "tex2jax_ignore mathjax_ignore"
_TABLE = (
    "border-collapse:collapse;margin:.4em 0;font-size:12px;"
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;table-layout:auto"
)
_CELL = "border:1px solid #c8c8c8;padding:3px 8px;vertical-align:top;text-align:left"
_HEAD = _CELL + ";background:#eef1f5;font-weight:600;white-space:nowrap"
_NUMBER = _CELL + ";text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap"


def table_html(
    frame: pd.DataFrame,
    max_rows: int | None = 50,
    index: bool = False,
    titles: dict[str, str] | None = None,
    empty: str = "no rows",
) -> str:
    """`frame` as an escaped, bordered HTML table, cut to `max_rows` with a note saying so.

    `titles`: a tooltip per column (e.g. the full SCIM path of a shortened attribute name);
    a frame's `attrs["paths"]` serves as titles too."""
    if frame.empty:
        return f'<p class="{NO_MATHJAX}"><i>{html.escape(empty)}</i></p>'
    shown = frame if max_rows is None else frame.head(max_rows)
    if index:  # an unnamed index gets an empty header, not "index"
        shown = shown.rename_axis(frame.index.names if frame.index.name else [""]).reset_index()
    titles = {**frame.attrs.get("paths", {}), **(titles or {})}
    out = [f'<table class="scimsync-table {NO_MATHJAX}" style="{_TABLE}"><thead>']
    out += _header(shown.columns, titles)
    out.append("</thead><tbody>")
    kinds = [_kind(c) for c in shown.columns]
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in shown.columns]
    for values in shown.itertuples(index=False, name=None):
        cells = [_cell(v, k, n) for v, k, n in zip(values, kinds, numeric, strict=True)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if max_rows is not None and len(frame) > max_rows:
        out.append(
            f'<p class="{NO_MATHJAX}"><i>showing {max_rows:,} of {len(frame):,} rows</i></p>'
        )
    return "".join(out)


def _header(columns: pd.Index, titles: dict[str, str]) -> list[str]:
    if isinstance(columns, pd.MultiIndex):  # (attribute, side): one row of groups, one of sides
        top, bottom = [], []
        for name, span in _runs(c[0] for c in columns):
            title = titles.get(str(name))
            tip = f' title="{html.escape(title)}"' if title else ""
            top.append(f'<th colspan="{span}" style="{_HEAD}"{tip}>{html.escape(str(name))}</th>')
        bottom = [f'<th style="{_HEAD}">{html.escape(str(c[-1]))}</th>' for c in columns]
        return ["<tr>" + "".join(top) + "</tr>", "<tr>" + "".join(bottom) + "</tr>"]
    cells = []
    for name in columns:
        title = titles.get(str(name))
        tip = f' title="{html.escape(title)}"' if title else ""
        cells.append(f'<th style="{_HEAD}"{tip}>{html.escape(str(name))}</th>')
    return ["<tr>" + "".join(cells) + "</tr>"]


def _runs(names: Iterable[Any]) -> list[tuple[Any, int]]:
    runs: list[tuple[Any, int]] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1] + 1)
        else:
            runs.append((name, 1))
    return runs


def _kind(column: Any) -> str:
    # (attribute, side) columns: the side, else the attribute (("situation", ""))
    name = str(([c for c in column if c] or [""])[-1] if isinstance(column, tuple) else column)
    if name in OLD_COLUMNS:
        return "old"
    if name in NEW_COLUMNS:
        return "new"
    if name in RATE_COLUMNS:
        return "rate"
    if name == "situation":
        return "situation"
    return ""


def _cell(value: Any, kind: str, numeric: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = ""
    elif kind == "rate" and isinstance(value, int | float):
        text = f"{value:.1%}"
    elif isinstance(value, float):
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    else:
        text = str(value)
    style = _NUMBER if numeric or kind == "rate" else _CELL
    # short values on one line (a name wrapped over two rows reads as two); long ones wrap
    style += ";white-space:nowrap" if len(text) <= SHORT else ";min-width:14em"
    if kind == "old" and text:
        style += f";background:{OLD_BACKGROUND}"
    elif kind == "new" and text:
        style += f";background:{NEW_BACKGROUND}"
    elif kind == "situation" and text in SITUATION_COLORS:
        style += f";color:{SITUATION_COLORS[text]};font-weight:600"
    body = html.escape(text).replace("\n", "<br>")
    return f'<td style="{style}">{body}</td>'


class Table:
    """A frame shown as table_html in a notebook (display(Table(frame))): static HTML that a
    saved notebook shows untrusted, while `frame` stays the pandas object to work with."""

    def __init__(
        self,
        frame: pd.DataFrame,
        max_rows: int | None = 50,
        index: bool = False,
        empty: str = "no rows",
    ):
        self.frame, self.max_rows, self.index, self.empty = frame, max_rows, index, empty

    def _repr_html_(self) -> str:
        return table_html(self.frame, self.max_rows, self.index, empty=self.empty)
