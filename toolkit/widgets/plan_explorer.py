"""The plan explorer: the summary table, the rows filtered by class, situation and DN, and one
object's attribute diff, its records (LDAP entry, mapped form, server form) and the exact
requests that applying the plan would send.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import pandas as pd

from toolkit.plan import frames
from toolkit.plan.model import SITUATIONS, Row
from toolkit.plan.plan import Plan
from toolkit.plan.tables import NO_MATHJAX
from toolkit.widgets.common import ALL, View, fitted, json_html, lines_html, table_html


def records_frame(row: Row, desired: dict | None = None) -> pd.DataFrame:
    """One object's attributes: as the entry maps (`ldap`) beside what the server has (`scim`)."""
    return frames.records(row, desired)


def entry_frame(row: Row) -> pd.DataFrame:
    """The LDAP entry as read: one row per attribute, its values joined."""
    return frames.entry(row)


class PlanExplorer(View):
    """Filter a plan's rows and look at one object. Headless: set the dropdowns, `select(dn)`."""

    def __init__(self, plan: Plan, max_rows: int = 50):
        self.plan = plan
        self.max_rows = max_rows
        self._names_cache: frames.Names | None = None
        frame = plan.frame
        classes = sorted(frame["class"].unique()) if len(frame) else []
        present = [s for s in SITUATIONS if len(frame) and (frame["situation"] == s).any()]
        self.summary = widgets.HTML(table_html(plan.summary()))
        self.guard = widgets.HTML(
            lines_html(list(plan.guard.problems), "resync would refuse this plan:")
            + lines_html(list(plan.guard.warnings), "warnings:")
        )
        self.class_filter = fitted(
            widgets.Dropdown(options=[ALL, *classes], value=ALL, description="class")
        )
        self.situation_filter = fitted(
            widgets.Dropdown(options=[ALL, *present], value=ALL, description="situation")
        )
        self.dn_filter = fitted(widgets.Text(description="DN contains", placeholder="part of a DN"))
        self.count = widgets.HTML()
        self.table = widgets.HTML()
        self.object = fitted(
            widgets.Dropdown(options=[], description="object", layout=widgets.Layout(width="60em"))
        )
        self.diff = widgets.HTML()
        self.records = widgets.HTML()
        self.entry = widgets.HTML()
        self.request = widgets.HTML()
        for control in (self.class_filter, self.situation_filter, self.dn_filter):
            control.observe(self._refilter, names="value")
        self.object.observe(self._show_object, names="value")
        self.filtered: pd.DataFrame = frame
        self.selected: Row | None = None
        details = widgets.Tab(
            children=[self.diff, self.request, self.records, self.entry],
        )
        for i, title in enumerate(("changes", "requests", "ldap vs scim", "LDAP entry")):
            details.set_title(i, title)
        self.box = widgets.VBox(
            [
                widgets.HTML(f"<h3>Plan of pipe {plan.pipe}</h3>"),
                self.summary,
                self.guard,
                widgets.HBox([self.class_filter, self.situation_filter, self.dn_filter]),
                self.count,
                self.table,
                self.object,
                details,
            ]
        )
        self._refilter()

    # --- filtering -----------------------------------------------------------------------------

    def _refilter(self, _change: object = None) -> None:
        frame = self.plan.frame
        mask = pd.Series(True, index=frame.index)
        if self.class_filter.value != ALL:
            mask &= frame["class"] == self.class_filter.value
        if self.situation_filter.value != ALL:
            mask &= frame["situation"] == self.situation_filter.value
        if self.dn_filter.value.strip():
            mask &= frame["dn"].str.contains(self.dn_filter.value.strip(), case=False, regex=False)
        self.filtered = frame[mask]
        self.count.value = f"<p>{len(self.filtered)} of {len(frame)} objects</p>"
        self.table.value = self._readable(self.filtered)
        # the picker lists the first rows only: a long list helps no one, the DN filter does
        options = [
            (f"{r.situation}  {r.dn}", int(i))
            for i, r in self.filtered.head(self.max_rows).iterrows()
        ]
        self.object.options = options
        self.object.value = options[0][1] if options else None
        if not options:
            self._show_object()

    # --- one object ----------------------------------------------------------------------------

    def select(self, dn: str) -> Row:
        """Show the object with this DN (clearing filters that hide it)."""
        matches = self.plan.frame.index[self.plan.frame["dn"].str.lower() == dn.lower()]
        if not len(matches):
            raise KeyError(f"no object {dn} in the plan of pipe {self.plan.pipe}")
        index = int(matches[0])
        if index not in self.filtered.index[: self.max_rows]:
            self.class_filter.value = ALL
            self.situation_filter.value = ALL
            self.dn_filter.value = dn
        self.object.value = index
        return self.plan.rows[index]

    def _show_object(self, _change: object = None) -> None:
        index = self.object.value
        if index is None:
            self.selected = None
            for pane in (self.diff, self.request, self.records, self.entry):
                pane.value = "<p><i>no object selected</i></p>"
            return
        row = self.plan.rows[index]
        self.selected = row
        # escaped, and no MathJax: a DN or a reason is data
        head = f"<p class='{NO_MATHJAX}'><b>{row.situation}</b> {html.escape(row.dn)} "
        head += f"({row.class_name}, {row.resource_type}"
        head += f", id {row.scim_id})" if row.scim_id else ")"
        head += f"<br><i>{html.escape(row.reason)}</i></p>" if row.reason else "</p>"
        changes = frames.object_changes(self.plan, row, self._names)
        self.diff.value = head + table_html(frames.short_paths(changes), 1000, index=False)
        self.request.value = (
            json_html([r.as_dict() for r in row.requests])
            if row.requests
            else "<p><i>no request: applying the plan leaves this object as it is</i></p>"
        )
        records = frames.short_paths(records_frame(row, self.plan.desired(row)))
        self.records.value = table_html(records, 1000, index=False)
        self.entry.value = table_html(entry_frame(row), 1000, index=False)

    # --- how tables read -----------------------------------------------------------------------

    @property
    def _names(self) -> frames.Names:
        if self._names_cache is None:
            self._names_cache = frames.Names(self.plan)
        return self._names_cache

    def _readable(self, filtered: pd.DataFrame) -> str:
        """The filtered rows as frames.objects reads them, the first max_rows of them."""
        rows = [self.plan.rows[int(i)] for i in filtered.index[: self.max_rows]]
        shown = frames.objects(Plan(self.plan.pipe, rows))
        note = ""
        if len(filtered) > self.max_rows:
            note = f"<p><i>showing {self.max_rows} of {len(filtered)} rows</i></p>"
        return table_html(shown, None, index=False) + note
