"""The mapping preview: pick an LDAP entry, see the SCIM resource the mapping makes of it and
what the SCIM server's schema would refuse (toolkit.scim.validate, as the dry run checks
every request). It is a dry run of that one entry (toolkit.sync.ondemand.preview): nothing is
sent, and the entry is classed, mapped and correlated exactly as a resync would."""

from __future__ import annotations

import html
from itertools import islice

import ipywidgets as widgets

from toolkit.config import Config
from toolkit.sync.batch import RunOptions, class_filter
from toolkit.sync.ondemand import OnDemandResult, preview
from toolkit.sync.runtime import PipeRuntime
from toolkit.widgets.common import Log, View, error_text, fitted, json_html, lines_html


def sample_dns(config: Config, pipe_name: str | None = None, limit: int = 50) -> list[str]:
    """The DNs of the first `limit` entries the pipe's classes take (for the picker)."""
    with PipeRuntime(config, pipe_name) as runtime:
        bases = list(config.source_of(runtime.pipe).base_dn)
        found: list[str] = []
        for sync_class in runtime.pipe.classes_in_order():
            if sync_class.is_exclusion or not sync_class.include_filter:
                continue
            for base in list(sync_class.include_base_dn) or bases:
                entries = runtime.source.iter_entries(base, class_filter(sync_class, None), ["1.1"])
                found += [e["dn"] for e in islice(entries, limit - len(found))]
                if len(found) >= limit:
                    return found
        return found


class MappingPreview(View):
    """Headless: `entry.value = DN`, `preview_button.click()`, then `result`."""

    def __init__(self, config: Config, pipe_name: str | None = None, dns: list[str] | None = None):
        self.config = config
        self.pipe = config.pipe(pipe_name).name
        self.result: OnDemandResult | None = None
        self.error: str | None = None
        self.log = Log()
        if dns is None:
            try:
                dns = sample_dns(config, pipe_name)
            except Exception as exc:  # the picker stays empty; typing a DN still works
                self.log.say(f"cannot list entries: {error_text(exc)}")
                dns = []
        self.entry = fitted(
            widgets.Combobox(
                options=dns,
                value=dns[0] if dns else "",
                description="LDAP entry",
                placeholder="a DN (pick or type)",
                ensure_option=False,
                layout=widgets.Layout(width="50em"),
            )
        )
        self.preview_button = fitted(widgets.Button(description="Map this entry", icon="eye"))
        self.preview_button.on_click(self._preview)
        self.outcome = widgets.HTML()
        self.resource = widgets.HTML()
        self.refused = widgets.HTML()
        self.box = widgets.VBox(
            [
                widgets.HTML(f"<h3>Mapping preview, pipe {self.pipe}</h3>"),
                widgets.HBox([self.entry, self.preview_button]),
                self.outcome,
                self.refused,
                self.resource,
                self.log.output,
            ]
        )

    def _preview(self, _button: widgets.Button | None = None) -> None:
        self.error = None
        dn = self.entry.value.strip()
        try:
            self.result = preview(self.config, [dn], RunOptions(pipe_name=self.pipe))
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self.error = error_text(exc)
            self.log.say(f"map {dn}: {self.error}")
            return
        rows = [r for r in self.result.plan.rows if r.dn.lower() == dn.lower()]
        if not rows:
            [report] = self.result.reports
            self.outcome.value = (
                f'<p style="color:#b00020">{html.escape(report.steps[0].detail)}</p>'
            )
            self.resource.value = self.refused.value = ""
            self.log.say(f"map {dn}: not read")
            return
        row = rows[0]
        resource = self.result.plan.desired(row)
        what = (
            f"class {row.class_name} makes a {row.resource_type}; a resync would: {row.situation}"
        )
        if row.reason:
            what += f" ({row.reason})"
        self.outcome.value = f"<p>{html.escape(what)}</p>"
        self.refused.value = (
            lines_html(row.problems, "the server's schema would refuse:")
            if row.problems
            else '<p style="color:green">the server\'s schema accepts every attribute</p>'
        )
        self.resource.value = "<b>SCIM resource</b>" + json_html(resource) if resource else ""
        self.log.say(f"map {dn}: {row.situation}, {len(row.problems)} refused")
