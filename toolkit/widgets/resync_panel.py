"""The resync panel: Preview (a dry run), then a confirm button that applies that same plan.

The previewed plan (or one saved before, `use_saved_plan`) is applied with resync's
`saved_plan`, which refuses when an object changed since the plan was made: what was
confirmed is what is applied. The confirm button
shows the plan's guard findings and stays disabled while one stands that the ticked overrides
("allow deletes", "allow recreate") do not cover; the plan's guard verdict decides that.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ipywidgets as widgets
import pandas as pd

from toolkit.config import Config
from toolkit.plan.guards import ALLOW_DELETES, ALLOW_RECREATE, Finding
from toolkit.plan.model import SITUATIONS
from toolkit.plan.plan import Plan
from toolkit.sync.batch import ResyncResult, RunOptions, dry_run, resync
from toolkit.sync.files import pipe_files
from toolkit.widgets.common import Log, View, error_text, fitted, lines_html, table_html
from toolkit.widgets.progress import ProgressView


class ResyncPanel(View):
    """Headless: `preview_button.click()`, then `confirm_button.click()`."""

    def __init__(
        self,
        config: Config,
        options: RunOptions | None = None,
        plan_path: str | Path | None = None,
    ):
        self.config = config
        self.base_options = options or RunOptions()
        pipe = config.pipe(self.base_options.pipe_name)
        self.plan_path = Path(plan_path) if plan_path else pipe_files(config, pipe).preview_plan
        self.plan: Plan | None = None
        self.applying: Path | None = None  # the saved plan that confirm applies
        self.result: ResyncResult | None = None
        self.error: str | None = None
        o = self.base_options
        self.search_filter = fitted(
            widgets.Text(
                value=o.source_search_filter or "",
                description="source filter",
                placeholder="only entries matching this LDAP filter",
                layout=widgets.Layout(width="40em"),
            )
        )
        self.max_deletes = fitted(
            widgets.Text(
                value=o.max_deletes or "",
                description="max deletes",
                placeholder=str(pipe.max_deletes),
            )
        )
        self.allow_deletes = fitted(
            widgets.Checkbox(value=o.allow_deletes, description="allow deletes past the guards")
        )
        self.allow_recreate = fitted(
            widgets.Checkbox(
                value=o.allow_recreate, description="allow recreating vanished resources"
            )
        )
        self.preview_button = fitted(widgets.Button(description="Preview (dry run)", icon="eye"))
        self.confirm_button = fitted(
            widgets.Button(description="Apply", button_style="danger", icon="play", disabled=True)
        )
        self.preview_button.on_click(self._preview)
        self.confirm_button.on_click(self._confirm)
        self.allow_deletes.observe(self._update_confirm, names="value")
        self.allow_recreate.observe(self._update_confirm, names="value")
        self.summary = widgets.HTML()
        self.guard = widgets.HTML()
        self.progress = ProgressView()  # the reads, the plan and the apply, as they go
        self.results = widgets.HTML()
        self.log = Log()
        self.box = widgets.VBox(
            [
                widgets.HTML(f"<h3>resync of pipe {pipe.name}</h3>"),
                widgets.HBox([self.search_filter, self.max_deletes]),
                widgets.HBox([self.allow_deletes, self.allow_recreate]),
                self.preview_button,
                self.summary,
                self.guard,
                self.confirm_button,
                self.progress.box,
                self.results,
                self.log.output,
            ]
        )

    def options(self) -> RunOptions:
        """The run options: the given ones with the form's filter, max-deletes and allow-deletes."""
        return replace(
            self.base_options,
            source_search_filter=self.search_filter.value.strip() or None,
            max_deletes=self.max_deletes.value.strip() or None,
            allow_deletes=self.allow_deletes.value,
            allow_recreate=self.allow_recreate.value,
            on_progress=self.progress,
        )

    @property
    def pending(self) -> int:
        """How many objects the previewed plan would touch."""
        return 0 if self.plan is None else sum(1 for r in self.plan.rows if r.requests)

    def can_apply(self) -> bool:
        if self.plan is None or not self.pending:
            return False
        return not self._blocking()

    def _blocking(self) -> list[Finding]:
        if self.plan is None:
            return []
        return self.plan.guard.blocking(self.allow_deletes.value, self.allow_recreate.value)

    # --- the buttons ---------------------------------------------------------------------------

    def _preview(self, _button: widgets.Button | None = None) -> None:
        self._reset("planning")
        try:
            plan = dry_run(self.config, self.options())
            plan.save(self.plan_path)
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self._fail(exc)
            return
        self._show(plan, self.plan_path, "previewed")

    def use_saved_plan(self, path: str | Path) -> Plan | None:
        """Confirm a plan saved before (03-dry-run's .json) instead of a new preview.

        resync applies it only if none of its objects changed since it was made.
        """
        self._reset("loading")
        try:
            plan = Plan.load(path)
        except Exception as exc:
            self._fail(exc)
            return None
        self._show(plan, Path(path), "loaded")
        return plan

    def _reset(self, stage: str) -> None:
        self.error, self.result, self.plan, self.applying = None, None, None, None
        self.summary.value = self.guard.value = self.results.value = ""
        self._stage(stage, 0, 1, "info")

    def _show(self, plan: Plan, path: Path, how: str) -> None:
        self.plan, self.applying = plan, path
        self.summary.value = table_html(plan.summary())
        self.guard.value = _guard_html(plan)
        self._stage(how, 0, max(1, self.pending), "")
        self.log.say(f"{how} {len(plan)} objects, {self.pending} to change ({path.name})")
        self._update_confirm()

    def _update_confirm(self, _change: object = None) -> None:
        totals = self.plan.totals() if self.plan is not None else {}
        counts = ", ".join(
            f"{totals[s]} {s}" for s in SITUATIONS if totals.get(s) and s != "unchanged"
        )
        self.confirm_button.disabled = not self.can_apply()
        if self.plan is None:
            self.confirm_button.description = "Apply"
        elif not self.pending:
            self.confirm_button.description = "Nothing to apply"
        else:
            noun = "object" if self.pending == 1 else "objects"
            self.confirm_button.description = f"Apply {self.pending} {noun} ({counts})"
        self.confirm_button.tooltip = "; ".join(f.text for f in self._blocking())

    def _confirm(self, _button: widgets.Button | None = None) -> None:
        # click() runs this even when the button is disabled: check again
        if not self.can_apply():
            why = "; ".join(f.text for f in self._blocking()) if self.plan else "no preview yet"
            self._fail(RuntimeError(f"not applied: {why or 'nothing to apply'}"))
            return
        self.error = None
        self.confirm_button.disabled = True
        self._stage("applying", 0, self.pending, "info")
        try:
            result = resync(self.config, self.options(), saved_plan=self.applying)
        except Exception as exc:
            self.plan, self.applying = None, None  # e.g. out of date: preview again
            self._fail(exc)
            return
        self.result = result
        done = result.applied.applied + result.applied.failed
        self._stage(
            "done", done, max(1, self.pending), "danger" if result.applied.failed else "success"
        )
        failures = pd.DataFrame(
            [
                {
                    "dn": f.row.dn,
                    "situation": f.row.situation,
                    "kind": f.kind,
                    "error": f.error.splitlines()[0] if f.error else "",
                }
                for f in result.applied.failures
            ],
            columns=["dn", "situation", "kind", "error"],
        )
        self.results.value = (
            f"<p>applied {result.applied.applied}, failed {result.applied.failed}</p>"
            + (table_html(failures, 100, index=False) if len(failures) else "")
        )
        self.log.say(f"resync applied {result.applied.applied}, failed {result.applied.failed}")
        self.plan, self.applying = None, None  # applied: a new preview is needed next
        self._update_confirm()

    def _stage(self, name: str, value: int, maximum: int, style: str) -> None:
        self.progress.show(name, value, maximum, style)

    def _fail(self, exc: BaseException) -> None:
        self.error = error_text(exc)
        self._stage("failed", 0, 1, "danger")
        self.log.say(self.error)
        self._update_confirm()


def _guard_html(plan: Plan) -> str:
    boxes = {ALLOW_DELETES: "allow deletes", ALLOW_RECREATE: "allow recreating vanished resources"}
    findings = [
        f"{f.text} (tick '{boxes[f.override]}' to apply it anyway)" if f.override else f.text
        for f in plan.guard.findings
    ]
    return lines_html(findings, "resync refuses this plan:") + lines_html(
        list(plan.guard.warnings), "warnings:"
    )
