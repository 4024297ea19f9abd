"""Configuration problems and the one error that carries all of them.

Loading a config reports every problem at once, each with the dotted path of the property
(`sync-pipes.ldap-to-scim.sync-classes.users.include-filter`) and, when known, its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import FatalError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration."""

    path: str
    message: str
    line: int | None = None  # 1-based line in the YAML file, when known

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def located(self, file: Path | str | None) -> str:
        """`FILE:LINE: path: message`, with what is known of file and line."""
        where = ""
        if file is not None:
            where = f"{file}:{self.line}: " if self.line else f"{file}: "
        return where + str(self)


class ConfigError(FatalError):
    """A configuration that cannot be used; `problems` lists everything wrong with it."""

    def __init__(self, problems: list[Problem] | Problem | str, file: Path | str | None = None):
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.file = file
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0].located(self.file)
        head = f"{self.file}: " if self.file is not None else ""
        lines = [f"{head}{len(self.problems)} configuration problems:"]
        lines += [f"  {p.located(self.file)}" for p in self.problems]
        return "\n".join(lines)
