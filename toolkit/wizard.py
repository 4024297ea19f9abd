"""The terminal wizard of `scimsync create-sync-pipe-config`: PingDataSync's prompts, in order.

It only asks: the answers (toolkit.config.pipeconfig.PipeConfigAnswers) are checked and
written by config, as the flags' answers and the setup widget's are.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from toolkit.config.dn import DNError, parse_dn
from toolkit.config.model import STATE_DIR_NAME
from toolkit.config.pipeconfig import (
    PING_SYNC_USER,
    SOURCE_TYPES,
    Ask,
    PipeConfigAnswers,
    Say,
    file_reference,
    summary,
)
from toolkit.config.problems import ConfigError


def read_secret(prompt: str) -> str:
    """getpass on a terminal; a plain line when answers are piped in."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return input(prompt)


class Wizard:
    """Prompts in PingDataSync's order; `ask`, `ask_secret` and `say` make it scriptable."""

    def __init__(
        self, config_path: Path, ask: Ask = input, ask_secret: Ask = read_secret, say: Say = print
    ):
        self.config_dir = Path(config_path).absolute().parent
        self._ask = ask
        self._ask_secret = ask_secret
        self.say = say
        self.typed: dict[str, str] = {}

    def ask(self, prompt: str, default: str | None = None) -> str:
        shown = f"{prompt} [{default}]: " if default is not None else f"{prompt}: "
        while True:
            try:
                answer = self._ask(shown).strip()
            except EOFError:
                raise ConfigError(
                    "create-sync-pipe-config: input ended before every question was answered"
                ) from None
            if answer:
                return answer
            if default is not None:
                return default
            self.say("    a value is required")

    def choose(self, title: str, options: list[str], default: int = 1) -> int:
        """A numbered menu; returns the 0-based index."""
        self.say("")
        self.say(title)
        for i, option in enumerate(options, start=1):
            self.say(f"    {i}) {option}")
        while True:
            answer = self.ask("Enter choice", str(default))
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return int(answer) - 1
            self.say(f"    enter a number from 1 to {len(options)}")

    def yes(self, prompt: str, default: bool) -> bool:
        while True:
            answer = self.ask(f"{prompt} (yes / no)", "yes" if default else "no").lower()
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            self.say("    answer yes or no")

    def secret(self, what: str, file_name: str) -> str:
        """A secret reference: a file, an environment variable, or typed now and saved 0600."""
        how = self.choose(
            f"How does scimsync read the {what}? (the config file only holds a reference)",
            [
                "From a file",
                "From an environment variable",
                f"Type it now (saved to {STATE_DIR_NAME}/secrets/{file_name}, mode 0600)",
            ],
        )
        if how == 0:
            while True:
                given = Path(self.ask(f"File holding the {what}")).expanduser()
                file = given if given.is_absolute() else Path.cwd() / given
                if file.is_file():
                    return file_reference(file, self.config_dir)
                self.say(f"    {file} does not exist")
        if how == 1:
            while True:
                name = self.ask("Environment variable name")
                if name.replace("_", "a").isalnum() and not name[0].isdigit():
                    return f"${{env:{name}}}"
                self.say("    letters, digits and '_' only")
        while True:
            try:
                value = self._ask_secret(f"{what[0].upper()}{what[1:]}: ")
            except EOFError:
                raise ConfigError(
                    "create-sync-pipe-config: input ended before every question was answered"
                ) from None
            if value:
                break
            self.say("    a value is required")
        relative = f"{STATE_DIR_NAME}/secrets/{file_name}"
        self.typed[relative] = value
        return f"${{file:{relative}}}"

    def dn(self, prompt: str, default: str | None) -> str:
        while True:
            value = self.ask(prompt, default)
            try:
                parse_dn(value)
                return value
            except DNError as exc:
                self.say(f"    {exc}")

    def run(self) -> PipeConfigAnswers:
        say = self.say
        say("This tool writes a one-way LDAP-to-SCIM sync pipe configuration for scimsync.")
        say("Synchronization mode: standard (the only mode for SCIM destinations).")
        say("Synchronization direction: one-way, LDAP source to SCIM 2.0 destination.")
        kind = self.choose(
            "Source Endpoint Type:", [label for label, _ in SOURCE_TYPES], default=len(SOURCE_TYPES)
        )
        source_type = SOURCE_TYPES[kind][1]
        say("")
        say("Base DNs of the source (they must not overlap).")
        bases = [self.dn("Base DN", "dc=example,dc=com")]
        while True:
            more = self.ask("Another base DN (Enter when done)", "")
            if not more:
                break
            try:
                parse_dn(more)
                bases.append(more)
            except DNError as exc:
                say(f"    {exc}")
        security = ["none", "ssl", "starttls"][
            self.choose("Server security:", ["None", "SSL (ldaps)", "StartTLS"], default=1)
        ]
        default_port = 636 if security == "ssl" else 389
        servers = [
            self._host_port("Source server host:port", f"localhost:{default_port}", default_port)
        ]
        while True:
            more = self.ask("Another server for failover, host:port (Enter when done)", "")
            if not more:
                break
            servers.append(self._parse_host_port(more, default_port) or servers[-1])
        bind_dn = self.dn("Sync user DN", PING_SYNC_USER)
        password = self.secret("sync user password", "source-ds-password")
        detector = ["auto", "changelog", "accesslog", "dirsync"][
            self.choose(
                "Change detection:",
                [
                    "Automatic (cn=changelog, else cn=accesslog)",
                    "cn=changelog (PingDirectory, 389-DS, DSEE)",
                    "cn=accesslog (OpenLDAP slapo-accesslog)",
                    "DirSync (Active Directory)",
                ],
            )
        ]
        answers = PipeConfigAnswers(
            source_base_dns=bases,
            scim_url="",
            source_type=source_type,
            source_servers=servers,
            source_security=security,
            source_bind_dn=bind_dn,
            source_bind_password=password,
            change_detector=detector,
        )
        self._destination(answers)
        say("")
        mapping = self.ask(
            "Resource mapping file (Enter for a copy of the default scim-resources.xml)", ""
        )
        if mapping:
            answers.resource_mapping_file = Path(mapping).expanduser().absolute()
        answers.pipe_name = self.ask("Sync Pipe name", "ldap-to-scim")
        answers.typed_secrets = dict(self.typed)
        for line in summary(answers):
            say(line)
        return answers

    def _destination(self, answers: PipeConfigAnswers) -> None:
        self.say("")
        self.say("Destination Endpoint: SCIM 2.0 service provider")
        while True:
            url = self.ask("SCIM service URL (base URL, e.g. https://scim.example.com/scim/v2)")
            if url.startswith(("http://", "https://")):
                answers.scim_url = url.rstrip("/")
                break
            self.say("    the URL must start with http:// or https://")
        methods = ["none", "basic", "bearer", "oauth2"]
        answers.scim_auth = methods[
            self.choose(
                "SCIM authentication:",
                [
                    "None",
                    "HTTP basic (user name and password)",
                    "Bearer token",
                    "OAuth 2.0 client credentials",
                ],
            )
        ]
        if answers.scim_auth == "basic":
            answers.scim_user = self.ask("SCIM user name")
            answers.scim_password = self.secret("SCIM password", "scim-password")
        elif answers.scim_auth == "bearer":
            answers.scim_token = self.secret("SCIM bearer token", "scim-token")
        elif answers.scim_auth == "oauth2":
            answers.scim_token_url = self.ask("OAuth token endpoint URL")
            answers.scim_client_id = self.ask("OAuth client id")
            answers.scim_client_secret = self.secret("OAuth client secret", "scim-client-secret")

    def _host_port(self, prompt: str, default: str, default_port: int) -> tuple[str, int | None]:
        while True:
            parsed = self._parse_host_port(self.ask(prompt, default), default_port)
            if parsed:
                return parsed

    def _parse_host_port(self, text: str, default_port: int) -> tuple[str, int | None] | None:
        host, sep, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
        if not sep:
            return text, default_port
        if port.isdigit() and 0 < int(port) < 65536 and host:
            return host, int(port)
        self.say(f"    expected host:port, got {text!r}")
        return None
