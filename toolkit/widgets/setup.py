"""The setup wizard: create-sync-pipe-config's answers as a form.

The form asks what `scimsync create-sync-pipe-config` asks and hands the answers to
`pipeconfig.write_pipe_config`. Secrets are never typed into it: a widget's value is saved
with the notebook's widget state, so a secret field takes the file holding the secret (or
`${env:NAME}`) and the config gets a reference to it. A secret field shows no text (a
password box) and keeps only a file that exists or a reference: anything else, a secret
typed by mistake, is cleared at once and never shown. Test LDAP / Test SCIM try each
endpoint the form describes (toolkit.sync.checks), before anything is written. With "copy secret files" ticked (a
notebook ticks it when the files are in a lab folder that goes away with the kernel), Write
copies them beside the config (mode 0600) and references the copies relatively.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets

from toolkit.config import Config, LdapServer, Scim2Server
from toolkit.config.model import STATE_DIR_NAME
from toolkit.config.pipeconfig import (
    SOURCE_TYPES,
    PipeConfigAnswers,
    PipeConfigResult,
    answers_config,
    secret_file_reference,
    summary,
    write_pipe_config,
)
from toolkit.config.problems import ConfigError
from toolkit.config.secrets import SecretRef, parse_secret
from toolkit.errors import ScimsyncError
from toolkit.ldap.spec import CHANGE_DETECTORS
from toolkit.mapping import default_mapping_text
from toolkit.sync.checks import (
    check_connections,
    check_ldap_connections,
    check_scim_connections,
)
from toolkit.widgets.common import Log, View, error_text, fitted, lines_html, pre_html

AUTH_FIELDS = {
    "none": (),
    "basic": ("scim_user", "scim_password"),
    "bearer": ("scim_token",),
    "oauth2": ("scim_token_url", "scim_client_id", "scim_client_secret"),
}
SECRET_HINT = "file holding it, or ${env:NAME}"
#: The secret fields and the file name their copy gets under .scimsync/secrets/.
SECRET_FIELDS = {
    "source_bind_password": "ldap-password",
    "scim_password": "scim-password",
    "scim_token": "scim-token",
    "scim_client_secret": "scim-client-secret",
}


def _secret_text(value: SecretRef | None) -> str:
    """A config's secret reference as the form shows it: an absolute file, or ${env:NAME}."""
    if value is None:
        return ""
    if value.kind == "env":
        return value.reference
    path = Path(value.target).expanduser()
    return str(path if path.is_absolute() else value.base_dir / path)


class SecretField(widgets.HBox):
    """A secret's field: a password box taking the file that holds the secret or
    `${env:NAME}`, and a note saying which it uses. Anything else is cleared as soon as it
    is entered (Enter or leaving the box): the text is never kept, shown or saved."""

    def __init__(self, description: str, value: str | None, layout: widgets.Layout, style: dict):
        self.description = description
        self.box = widgets.Password(
            value=value or "",
            description=description,
            placeholder=SECRET_HINT,
            continuous_update=False,  # judged when entered, not per key
            layout=layout,
            style=style,
        )
        self.note = widgets.HTML()
        super().__init__([self.box, self.note])
        self.box.observe(self._judge, names="value")
        self._judge()

    @property
    def value(self) -> str:
        return self.box.value

    @value.setter
    def value(self, text: str) -> None:
        self.box.value = text

    def _judge(self, _change: object = None) -> None:
        text = self.box.value.strip()
        if not text:
            self.note.value = ""
        elif text.startswith("${"):
            try:
                parse_secret(text)
            except ValueError:  # its message may quote what was typed: ours does not
                self._refuse("not a ${env:NAME} reference")
                return
            self.note.value = f"<small>uses <code>{html.escape(text)}</code></small>"
        elif Path(text).expanduser().is_file():
            self.note.value = f"<small>uses the file <code>{html.escape(text)}</code></small>"
        else:
            self._refuse("no such file")

    def _refuse(self, why: str) -> None:
        self.box.value = ""  # observed again: the note is cleared, then set below
        self.note.value = (
            f'<small style="color:#b00020">{why}: cleared, not kept. Give the file that '
            "holds the secret, or ${env:NAME}</small>"
        )


class SetupWizard(View):
    """create-sync-pipe-config as a form: Preview shows the summary, Write writes the config."""

    def __init__(
        self, config_path: str | Path = "sync.yaml", defaults: PipeConfigAnswers | None = None
    ):
        d = defaults or PipeConfigAnswers(source_base_dns=["dc=example,dc=com"], scim_url="")

        def wide() -> widgets.Layout:  # one per widget: hiding a field sets its layout's display
            return widgets.Layout(width="40em")

        style = {"description_width": "14em"}

        def secret(description: str, value: str | None) -> SecretField:
            return SecretField(description, value, wide(), style)

        def text(description: str, value: str | None, placeholder: str = "") -> widgets.Text:
            return widgets.Text(
                value=value or "",
                description=description,
                placeholder=placeholder,
                layout=wide(),
                style=style,
            )

        def choice(description: str, options: list, value: str) -> widgets.Dropdown:
            return widgets.Dropdown(
                options=options,
                value=value,
                description=description,
                layout=wide(),
                style=style,
            )

        self.config_path = text("Write to", str(config_path))
        self.pipe_name = text("Sync pipe name", d.pipe_name)
        self.source_type = choice("Source type", list(SOURCE_TYPES), d.source_type)
        self.source_servers = widgets.Textarea(
            value="\n".join(f"{h}:{p}" if p else h for h, p in d.source_servers),
            description="Servers (host:port)",
            placeholder="one per line, failover order",
            layout=wide(),
            style=style,
        )
        self.source_security = choice(
            "Security",
            [("none", "none"), ("SSL (ldaps)", "ssl"), ("StartTLS", "starttls")],
            d.source_security,
        )
        self.source_base_dns = widgets.Textarea(
            value="\n".join(d.source_base_dns),
            description="Base DNs",
            placeholder="one per line",
            layout=wide(),
            style=style,
        )
        self.source_bind_dn = text("Sync user DN", d.source_bind_dn, "empty: anonymous")
        self.source_bind_password = secret("Sync user password", d.source_bind_password)
        self.change_detector = choice("Change detection", list(CHANGE_DETECTORS), d.change_detector)
        self.trust_ca_file = text("Trust CA file", str(d.trust_ca_file or ""), "PEM, for TLS")
        self.scim_url = text("SCIM service URL", d.scim_url, "https://scim.example.com/scim/v2")
        self.scim_auth = choice("SCIM authentication", list(AUTH_FIELDS), d.scim_auth)
        self.scim_user = text("SCIM user name", d.scim_user)
        self.scim_password = secret("SCIM password", d.scim_password)
        self.scim_token = secret("SCIM bearer token", d.scim_token)
        self.scim_token_url = text("OAuth token URL", d.scim_token_url)
        self.scim_client_id = text("OAuth client id", d.scim_client_id)
        self.scim_client_secret = secret("OAuth client secret", d.scim_client_secret)
        self.resource_mapping_file = text(
            "Resource mapping file",
            str(d.resource_mapping_file or ""),
            "empty: a copy of the default scim-resources.xml",
        )
        self.force = fitted(
            widgets.Checkbox(value=False, description="Overwrite an existing config")
        )
        self.test_connections = fitted(
            widgets.Checkbox(value=True, description="Test the connections first")
        )
        self.copy_secrets = fitted(
            widgets.Checkbox(value=False, description="Copy secret files beside the config")
        )
        self.test_ldap_button = fitted(widgets.Button(description="Test LDAP", icon="plug"))
        self.test_scim_button = fitted(widgets.Button(description="Test SCIM", icon="plug"))
        self.test_ldap_button.on_click(lambda _b: self._test("LDAP", check_ldap_connections))
        self.test_scim_button.on_click(lambda _b: self._test("SCIM", check_scim_connections))
        self.connection: dict[str, str] = {}  # endpoint -> what its last test said
        self.ldap_result = widgets.HTML()
        self.scim_result = widgets.HTML()
        self.preview_button = fitted(widgets.Button(description="Preview", icon="eye"))
        self.write_button = fitted(
            widgets.Button(description="Write config", button_style="primary", icon="save")
        )
        self.preview_button.on_click(self._preview)
        self.write_button.on_click(self._write)
        self.scim_auth.observe(self._show_auth_fields, names="value")
        self.summary = widgets.HTML()
        self.log = Log()
        self.result: PipeConfigResult | None = None
        self.error: str | None = None
        self._show_auth_fields()
        self.box = widgets.VBox(
            [
                widgets.HTML("<h3>create-sync-pipe-config</h3><b>Source (LDAP)</b>"),
                self.source_type,
                self.source_servers,
                self.source_security,
                self.source_base_dns,
                self.source_bind_dn,
                self.source_bind_password,
                self.change_detector,
                self.trust_ca_file,
                widgets.HBox([self.test_ldap_button, self.ldap_result]),
                widgets.HTML("<b>Destination (SCIM 2.0)</b>"),
                self.scim_url,
                self.scim_auth,
                *(getattr(self, f) for fields in AUTH_FIELDS.values() for f in fields),
                widgets.HBox([self.test_scim_button, self.scim_result]),
                widgets.HTML("<b>Sync pipe</b>"),
                self.pipe_name,
                self.resource_mapping_file,
                self.config_path,
                widgets.HBox([self.force, self.test_connections, self.copy_secrets]),
                widgets.HBox([self.preview_button, self.write_button]),
                self.summary,
                self.log.output,
            ]
        )

    # --- defaults from what already exists -----------------------------------------------------

    @classmethod
    def defaults_from_config(
        cls, config: Config, pipe_name: str | None = None
    ) -> PipeConfigAnswers:
        """Answers that re-create a config's pipe (its servers, bases, auth and secret files)."""
        pipe = config.pipe(pipe_name)
        source = config.source_of(pipe)
        ldap = [s for s in config.servers_of(source) if isinstance(s, LdapServer)]
        scim = next(
            s for s in config.servers_of(config.destination_of(pipe)) if isinstance(s, Scim2Server)
        )
        first = ldap[0]
        return PipeConfigAnswers(
            source_base_dns=list(source.base_dn),
            scim_url=scim.scim_service_url,
            pipe_name=pipe.name,
            source_type=first.type,
            source_servers=[(s.server_host_name, s.server_port) for s in ldap],
            source_security=first.connection_security,
            source_bind_dn=first.bind_dn if first.authentication_method == "simple" else None,
            source_bind_password=_secret_text(first.password) or None,
            change_detector=source.change_detector,
            scim_auth=scim.http_authorization_method,
            scim_token=_secret_text(scim.oauth_token) or None,
            scim_user=scim.user_name,
            scim_password=_secret_text(scim.password) or None,
            scim_token_url=scim.oauth_server_token_endpoint_url,
            scim_client_id=scim.oauth_client_id,
            scim_client_secret=_secret_text(scim.oauth_client_secret) or None,
            trust_ca_file=first.trust_ca_file,
        )

    # --- the answers ---------------------------------------------------------------------------

    def answers(self, copy_secrets: bool = False) -> PipeConfigAnswers:
        """The form as create-sync-pipe-config answers; ConfigError names the field that is wrong.

        `copy_secrets`: the secret files become copies beside the config (written with it)."""
        path = Path(self.config_path.value.strip() or "sync.yaml")
        answers = PipeConfigAnswers(
            source_base_dns=_lines(self.source_base_dns.value),
            scim_url=self.scim_url.value.strip().rstrip("/"),
            pipe_name=self.pipe_name.value.strip() or "ldap-to-scim",
            source_type=self.source_type.value,
            source_servers=[_host_port(line) for line in _lines(self.source_servers.value)],
            source_security=self.source_security.value,
            source_bind_dn=self.source_bind_dn.value.strip() or None,
            source_bind_password=self._secret(self.source_bind_password, path),
            change_detector=self.change_detector.value,
            scim_auth=self.scim_auth.value,
            scim_token=self._secret(self.scim_token, path),
            scim_user=self.scim_user.value.strip() or None,
            scim_password=self._secret(self.scim_password, path),
            scim_token_url=self.scim_token_url.value.strip() or None,
            scim_client_id=self.scim_client_id.value.strip() or None,
            scim_client_secret=self._secret(self.scim_client_secret, path),
            resource_mapping_file=_path(self.resource_mapping_file.value),
            trust_ca_file=_path(self.trust_ca_file.value),
        )
        if copy_secrets:
            self._copy_secrets(answers)
        return answers

    def _copy_secrets(self, answers: PipeConfigAnswers) -> None:
        """Reference copies under .scimsync/secrets/ instead of the files the form names."""
        for name, file_name in SECRET_FIELDS.items():
            value = self._field_file(getattr(self, name))
            if value is None or getattr(answers, name) is None:
                continue
            relative = f"{STATE_DIR_NAME}/secrets/{file_name}"
            answers.typed_secrets[relative] = value.read_text(encoding="utf-8").rstrip("\r\n")
            setattr(answers, name, f"${{file:{relative}}}")

    @staticmethod
    def _field_file(field: SecretField) -> Path | None:
        value = field.value.strip()
        if not value or value.startswith("${"):
            return None
        return Path(value).expanduser()

    def _secret(self, field: SecretField, config_path: Path) -> str | None:
        value = field.value.strip()
        if not value:
            return None
        if value.startswith("${"):
            return value  # already a reference; write_pipe_config validates it
        return secret_file_reference(Path(value), config_path, field.description)

    # --- the buttons ---------------------------------------------------------------------------

    def _show_auth_fields(self, _change: object = None) -> None:
        shown = set(AUTH_FIELDS[self.scim_auth.value])
        for fields in AUTH_FIELDS.values():
            for name in fields:
                getattr(self, name).layout.display = None if name in shown else "none"

    def _test(self, endpoint: str, check: Callable[[Config], list[str]]) -> None:
        """Test one endpoint as the form describes it (nothing is written)."""
        shown = self.ldap_result if endpoint == "LDAP" else self.scim_result
        shown.value = "<i>testing...</i>"
        try:
            where = self.config_path.value.strip() or "sync.yaml"
            config = answers_config(where, self.answers(), default_mapping_text)
            failures = check(config)
        except Exception as exc:  # a view shows the error; it never dies in a callback
            failures = [error_text(exc)]
        if failures:
            said = "; ".join(failures)
            shown.value = f'<span style="color:#b00020">&#10008; {html.escape(said)}</span>'
        else:
            said = "connected"
            shown.value = '<span style="color:green">&#10004; connected</span>'
        self.connection[endpoint] = said
        self.log.say(f"test {endpoint}: {said}")

    def _preview(self, _button: widgets.Button | None = None) -> None:
        self.error = None
        try:
            self.summary.value = pre_html("\n".join(summary(self.answers())).strip())
        except ScimsyncError as exc:
            self._fail(exc)

    def _write(self, _button: widgets.Button | None = None) -> None:
        self.error = None
        self.result = None
        try:
            answers = self.answers(copy_secrets=self.copy_secrets.value)
            self.summary.value = pre_html("\n".join(summary(answers)).strip())
            self.result = write_pipe_config(
                Path(self.config_path.value.strip() or "sync.yaml"),
                answers,
                default_mapping=default_mapping_text,
                force=self.force.value,
                check_connections=check_connections if self.test_connections.value else None,
            )
        except Exception as exc:  # a view shows the error; it never dies in a callback
            self._fail(exc)
            return
        for warning in self.result.warnings:
            self.log.say(f"warning: {warning}")
        self.log.say(f"wrote {self.result.path}")
        if self.result.mapping_written:
            self.log.say(f"wrote {self.result.mapping_file} (a copy of the default mapping)")

    def _fail(self, exc: BaseException) -> None:
        self.error = error_text(exc)
        failures = getattr(exc, "failures", None)
        if failures:
            self.summary.value += lines_html(failures, "connection test failed, nothing written")
        self.log.say(self.error)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _path(text: str) -> Path | None:
    return Path(text.strip()).expanduser() if text.strip() else None


def _host_port(line: str) -> tuple[str, int | None]:
    host, sep, port = line.rpartition(":")
    if not sep:
        return line, None
    if host and port.isdigit() and 0 < int(port) < 65536:
        return host, int(port)
    raise ConfigError(f"Servers (host:port): expected host:port, got {line!r}")
