"""prepare-endpoint-server as a checklist: one Check button per server of the pipe (its LDAP
sources and its SCIM destination), each showing the same checks the command prints
(toolkit.sync.checks.prepare_endpoint), with what to do about each failure."""

from __future__ import annotations

import html

import ipywidgets as widgets

from toolkit.checks import CheckResult
from toolkit.config import Config, Scim2Server
from toolkit.sync.checks import prepare_endpoint
from toolkit.widgets.common import Log, View, error_text, fitted


def checklist_html(results: list[CheckResult]) -> str:
    """Checks as a list: a mark, the check, what was found, and the fix of a failure."""
    rows = []
    for check in results:
        mark = '<span style="color:green">&#10004;</span>'
        if not check.ok:
            mark = '<span style="color:#b00020">&#10008;</span>'
        fix = f"<br><i>fix: {html.escape(check.fix)}</i>" if check.fix and not check.ok else ""
        rows.append(
            f"<tr><td>{mark}</td><td><b>{html.escape(check.name)}</b></td>"
            f"<td>{html.escape(check.detail)}{fix}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


class EndpointChecklist(View):
    """Headless: `buttons[name].click()`, then `results[name]`."""

    def __init__(self, config: Config, pipe_name: str | None = None):
        self.config = config
        pipe = config.pipe(pipe_name)
        names = [
            *config.source_of(pipe).server,
            *config.destination_of(pipe).server,
        ]
        self.servers = list(dict.fromkeys(names))
        self.results: dict[str, list[CheckResult]] = {}
        self.errors: dict[str, str] = {}
        self.buttons: dict[str, widgets.Button] = {}
        self.shown: dict[str, widgets.HTML] = {}
        self.log = Log()
        rows = []
        for name in self.servers:
            server = config.external_servers[name]
            kind = "SCIM destination" if isinstance(server, Scim2Server) else "LDAP source"
            button = fitted(widgets.Button(description=f"Check {name}", icon="list-check"))
            button.on_click(lambda _b, name=name: self.check(name))
            self.buttons[name], self.shown[name] = button, widgets.HTML()
            rows += [
                widgets.HBox([button, widgets.HTML(f"<i>{html.escape(kind)} server</i>")]),
                self.shown[name],
            ]
        self.all_button = fitted(widgets.Button(description="Check every server", icon="check"))
        self.all_button.on_click(lambda _b: [self.check(name) for name in self.servers])
        self.box = widgets.VBox(
            [
                widgets.HTML(f"<h3>prepare-endpoint-server, pipe {pipe.name}</h3>"),
                widgets.HBox([self.all_button]),  # in a VBox a button would fill the width
                *rows,
                self.log.output,
            ]
        )

    def check(self, name: str) -> list[CheckResult] | None:
        self.shown[name].value = "<i>checking...</i>"
        self.errors.pop(name, None)
        try:
            results = prepare_endpoint(self.config, name)
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self.errors[name] = error_text(exc)
            self.shown[
                name
            ].value = f'<p style="color:#b00020">{html.escape(self.errors[name])}</p>'
            self.log.say(f"{name}: {self.errors[name]}")
            return None
        self.results[name] = results
        self.shown[name].value = checklist_html(results)
        failed = sum(not r.ok for r in results)
        self.log.say(f"{name}: {len(results) - failed} passed, {failed} failed")
        return results
