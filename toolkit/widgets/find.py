"""Find and act: search a plan's objects on both sides by any attribute, page through every
match, pick some, provision them on demand (toolkit.sync.ondemand) and export what is shown.

The search looks at the LDAP entry as read, the SCIM resource the mapping makes and the one
the server has: `mail`, `uid`, `employeeNumber`, `userName`, `emails.value`, `id` (the SCIM
id), an extension's attribute by its short name (`employeeNumber` for the enterprise
extension's), or any attribute at all.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from toolkit.config import Config
from toolkit.plan.model import Row
from toolkit.plan.plan import Plan
from toolkit.sync.batch import RunOptions, dry_run
from toolkit.sync.ondemand import ObjectReport, OnDemandResult, provision
from toolkit.widgets.common import Log, View, error_text, fitted, json_html, table_html

ANY = "(any attribute)"
#: Offered first in the attribute list: what analysts look people up by.
COMMON = ["mail", "uid", "cn", "employeeNumber", "userName", "emails.value", "id", "dn"]
PAGE_COLUMNS = ["class", "situation", "dn", "scim_id", "matched"]
EXPORTS = [("CSV", ".csv"), ("Parquet", ".parquet"), ("HTML", ".html")]
MARKS = {True: ("&#10004;", "green"), False: ("&#10008;", "#b00020"), None: ("&ndash;", "gray")}


# --- the search (pure) ---------------------------------------------------------------------------


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(attribute path, value) of every scalar in a SCIM resource; an extension's attributes
    also under their short name (`employeeNumber` beside `urn:...:User.employeeNumber`)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("schemas", "meta"):
                continue
            if key.startswith("urn:") and isinstance(inner, dict):
                yield from _leaves(inner, key)  # full name
                yield from _leaves(inner, "")  # short name
            else:
                yield from _leaves(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for inner in value:
            yield from _leaves(inner, path)
    elif value is not None:
        yield path, str(value)


def object_values(row: Row, desired: dict[str, Any] | None) -> dict[str, list[str]]:
    """Every value of one object by attribute name (lower case): the LDAP entry's, the mapped
    resource's and the server's, the DN and the SCIM id."""
    found: dict[str, list[str]] = {"dn": [row.dn]}
    if row.scim_id:
        found["id"] = [row.scim_id]
    for name, values in (row.source or {}).items():
        if name == "dn":
            continue
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str | int | float):
                found.setdefault(name.lower(), []).append(str(value))
    for resource in (desired, row.target):
        for name, value in _leaves(resource or {}):
            kept = found.setdefault(name.lower(), [])
            if value not in kept:
                kept.append(value)
    return found


class SearchIndex:
    """The plan's values by object, built once (a few seconds at 100,000 objects)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.values = [object_values(row, plan.desired(row)) for row in plan.rows]
        names: dict[str, str] = {}
        for row in plan.rows:  # names as spelled (the index keys are lower case)
            for name in row.source or {}:
                names.setdefault(name.lower(), name)
        for found in self.values:
            for key in found:
                names.setdefault(key, key)
        self.names = names

    def attributes(self) -> list[str]:
        """The attribute names to offer: the common ones present, then all others."""
        common = [n for n in COMMON if n.lower() in self.names]
        rest = sorted({v for k, v in self.names.items() if v not in common}, key=str.lower)
        return [*common, *rest]

    def search(self, text: str, attribute: str | None = None) -> pd.DataFrame:
        """The objects with a value containing `text` (any case); every object for an empty
        text. Columns: the plan's list columns and `matched` (attribute=value)."""
        needle = text.strip().lower()
        key = attribute.lower() if attribute and attribute != ANY else None
        hits: list[int] = []
        matched: list[str] = []
        for i, found in enumerate(self.values):
            hit = _match(found, needle, key)
            if hit is not None:
                hits.append(i)
                matched.append(hit)
        frame = self.plan.frame.iloc[hits][["class", "situation", "dn", "scim_id"]].copy()
        frame["matched"] = matched
        return frame


def _match(found: dict[str, list[str]], needle: str, key: str | None) -> str | None:
    if not needle:
        return ""
    for name, values in found.items() if key is None else [(key, found.get(key, []))]:
        for value in values:
            if needle in value.lower():
                return f"{name}={value}"
    return None


def export(plan: Plan, indexes: list[int], path: Path | str) -> Path:
    """The objects at `indexes` as a plan file of their own: .csv, .parquet, .html (or .json),
    written as `dry-run --output` writes (Plan.save; private, 0600)."""
    rows = [plan.rows[i] for i in indexes]
    return replace(plan, rows=rows, _frame=None).save(path)


# --- the view ------------------------------------------------------------------------------------


class Finder(View):
    """Search, page, pick, provision on demand, export. Headless: set `attribute` and `text`,
    `search_button.click()`, `pick(dn)`, `provision_button.click()`, `export_button.click()`."""

    def __init__(
        self,
        config: Config,
        plan: Plan | None = None,
        options: RunOptions | None = None,
        page_size: int = 20,
    ):
        self.config = config
        self.options = options or RunOptions()
        self.pipe = config.pipe(self.options.pipe_name).name
        self.page_size = page_size
        self.plan: Plan | None = None
        self.index: SearchIndex | None = None
        self.found = pd.DataFrame(columns=PAGE_COLUMNS)
        self.page = 0
        self.picked: dict[int, str] = {}  # plan row index -> DN, across pages and searches
        self.result: OnDemandResult | None = None
        self.error: str | None = None
        self.exported: Path | None = None

        self.attribute = fitted(widgets.Combobox(options=[], value=ANY, description="attribute"))
        self.text = fitted(
            widgets.Text(
                description="value contains",
                placeholder="mail, name, id, part of a DN",
                continuous_update=False,  # searched on Enter (or Search), not per key
            )
        )
        self.search_button = fitted(widgets.Button(description="Search", icon="search"))
        self.reload_button = fitted(
            widgets.Button(description="Read both sides again (dry run)", icon="refresh")
        )
        self.count = widgets.HTML()
        self.prev_button = fitted(widgets.Button(description="Previous page", icon="arrow-left"))
        self.next_button = fitted(widgets.Button(description="Next page", icon="arrow-right"))
        self.table = widgets.HTML()
        self.choices = widgets.SelectMultiple(
            options=[], rows=8, description="pick", layout=widgets.Layout(width="70em")
        )
        self.picked_html = widgets.HTML()
        self.clear_button = fitted(widgets.Button(description="Clear picks", icon="times"))
        self.provision_button = fitted(
            widgets.Button(description="Provision picked now", button_style="warning", icon="bolt")
        )
        self.steps = widgets.HTML()
        self.export_format = fitted(
            widgets.Dropdown(options=EXPORTS, value=".csv", description="export as")
        )
        self.export_path = fitted(
            widgets.Text(
                description="to file",
                placeholder="empty: found-objects beside the config",
                layout=widgets.Layout(width="36em"),
            )
        )
        self.export_button = fitted(widgets.Button(description="Export matches", icon="download"))
        self.log = Log()
        for button, handler in (
            (self.search_button, self._search),
            (self.reload_button, self._reload),
            (self.prev_button, lambda _b: self._turn(-1)),
            (self.next_button, lambda _b: self._turn(+1)),
            (self.clear_button, self._clear),
            (self.provision_button, self._provision),
            (self.export_button, self._export),
        ):
            button.on_click(handler)
        self.text.observe(self._search, names="value")
        self.choices.observe(self._picks_changed, names="value")
        self.box = widgets.VBox(
            [
                widgets.HTML(f"<h3>Find and provision on demand, pipe {self.pipe}</h3>"),
                widgets.HBox([self.attribute, self.text, self.search_button, self.reload_button]),
                self.count,
                widgets.HBox([self.prev_button, self.next_button]),
                self.table,
                self.choices,
                widgets.HBox([self.picked_html, self.clear_button, self.provision_button]),
                self.steps,
                widgets.HBox([self.export_format, self.export_path, self.export_button]),
                self.log.output,
            ]
        )
        if plan is not None:
            self.use_plan(plan)
        else:
            self.count.value = "<p><i>press Read both sides to search</i></p>"
        self._show_picked()

    # --- the plan searched -----------------------------------------------------------------

    def use_plan(self, plan: Plan) -> None:
        self.plan = plan
        self.index = SearchIndex(plan)
        self.attribute.options = [ANY, *self.index.attributes()]
        self.picked.clear()
        self._search()

    def _reload(self, _button: widgets.Button | None = None) -> None:
        self.error = None
        try:
            plan = dry_run(self.config, replace(self.options, dns=None))
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self._fail("read both sides", exc)
            return
        self.use_plan(plan)
        self.log.say(f"read both sides: {len(plan.rows)} objects")

    # --- search and pages ------------------------------------------------------------------

    def _search(self, _source: object = None) -> None:
        if self.index is None:
            self._reload()
            return
        attribute = self.attribute.value.strip() or ANY
        self.found = self.index.search(self.text.value, attribute)
        self.page = 0
        self._show_page()

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.found) // self.page_size))

    def _turn(self, step: int) -> None:
        self.page = min(max(0, self.page + step), self.pages - 1)
        self._show_page()

    def page_frame(self) -> pd.DataFrame:
        start = self.page * self.page_size
        return self.found.iloc[start : start + self.page_size]

    def _show_page(self) -> None:
        total = len(self.plan.rows) if self.plan is not None else 0
        shown = self.page_frame()
        first = self.page * self.page_size + 1 if len(shown) else 0
        read = time.strftime("%H:%M:%S", time.localtime(self.plan.created_at)) if self.plan else ""
        self.count.value = (
            f"<p>{len(self.found):,} of {total:,} objects match; showing {first:,}&ndash;"
            f"{first + len(shown) - 1 if len(shown) else 0:,} (page {self.page + 1} of "
            f"{self.pages}). Both sides as read at {read}.</p>"
        )
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        self.table.value = table_html(shown, self.page_size, index=False)
        options = [(f"{r.situation}  {r.dn}", int(i)) for i, r in shown.iterrows()]
        self._updating = True
        try:
            self.choices.options = options
            self.choices.value = tuple(i for _, i in options if i in self.picked)
        finally:
            self._updating = False

    # --- picks -----------------------------------------------------------------------------

    def pick(self, dn: str) -> None:
        """Pick the object with this DN (wherever it is in the matches)."""
        assert self.plan is not None, "no plan: read both sides first"
        for i, row in enumerate(self.plan.rows):
            if row.dn.lower() == dn.lower() and row.source is not None:
                self.picked[i] = row.dn
                self._show_page()
                self._show_picked()
                return
        raise KeyError(f"no entry {dn} in the plan of pipe {self.pipe}")

    def _picks_changed(self, _change: object = None) -> None:
        if getattr(self, "_updating", False):
            return
        on_page = {i for _, i in self.choices.options}
        for i in on_page - set(self.choices.value):
            self.picked.pop(i, None)
        for i in self.choices.value:
            self.picked[i] = self.plan.rows[i].dn if self.plan is not None else str(i)
        self._show_picked()

    def _clear(self, _button: widgets.Button | None = None) -> None:
        self.picked.clear()
        self._show_page()
        self._show_picked()

    def _show_picked(self) -> None:
        n = len(self.picked)
        names = ", ".join(list(self.picked.values())[:3]) + (" ..." if n > 3 else "")
        self.picked_html.value = f"<p><b>{n} picked</b> {html.escape(names)}</p>"
        self.provision_button.description = (
            f"Provision {n} picked now" if n else "Provision picked now"
        )
        self.provision_button.disabled = not n

    # --- act -------------------------------------------------------------------------------

    def dns(self) -> list[str]:
        """The picked entries' DNs (a resource no entry has cannot be provisioned)."""
        return list(dict.fromkeys(self.picked.values()))

    def _provision(self, _button: widgets.Button | None = None) -> None:
        self.error = None
        dns = self.dns()
        self.provision_button.disabled = True
        try:
            self.result = provision(self.config, dns, self.options)
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self._fail("provision on demand", exc)
            return
        finally:
            self.provision_button.disabled = not self.picked
        self.steps.value = "".join(report_html(r) for r in self.result.reports)
        done = len(self.result.reports) - self.result.failed
        self.log.say(
            f"provisioned on demand: {done} done, {self.result.failed} failed ({', '.join(dns)})"
        )
        self.log.say("the list shows both sides as read before: Read both sides again for now")

    def _export(self, _button: widgets.Button | None = None) -> None:
        self.error = None
        if self.plan is None:
            self.log.say("export: nothing found yet")
            return
        suffix = self.export_format.value
        given = self.export_path.value.strip()
        path = Path(given).expanduser() if given else self.config.path.parent / "found-objects"
        if path.suffix.lower() != suffix:
            path = path.with_name(path.name + suffix) if not path.suffix else path
        try:
            self.exported = export(self.plan, [int(i) for i in self.found.index], path)
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self._fail("export", exc)
            return
        self.log.say(f"exported {len(self.found)} objects to {self.exported}")

    def _fail(self, action: str, exc: BaseException) -> None:
        self.error = f"{action}: {error_text(exc)}"
        self.log.say(self.error)


def report_html(report: ObjectReport) -> str:
    """One object's steps as provision on demand shows them: a mark, the step, what it found,
    and (folded) the data it looked at."""
    mark, color = MARKS[report.ok]
    head = (
        f'<h4 style="margin:0.6em 0 0.2em"><span style="color:{color}">{mark}</span> '
        f"{html.escape(report.dn)}</h4>"
    )
    items = []
    for step in report.steps:
        sign, tint = MARKS[step.ok]
        detail = html.escape(step.detail)
        data = (
            f"<details><summary>show</summary>{json_html(step.data)}</details>"
            if step.data not in (None, [], {})
            else ""
        )
        items.append(
            f'<tr style="vertical-align:top"><td style="color:{tint}">{sign}</td>'
            f'<td style="white-space:nowrap;padding-right:1em"><b>{html.escape(step.name)}</b></td>'
            f"<td>{detail}{data}</td></tr>"
        )
    return head + '<table style="border-collapse:collapse">' + "".join(items) + "</table>"
