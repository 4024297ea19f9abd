"""Bad input through the real CLI: a clear error naming the file, option or property, the
right exit code, never a traceback, and nothing changed on the SCIM server.

Each case starts from a pipe between the real slapd and scim2-server fixtures that has been
resynced once and then has one LDAP change waiting, so that a run that went ahead would
write to the SCIM server: the target is compared before and after, ids and versions too.
The CLI runs as `python -m toolkit.cli` in a process of its own, as a user would run it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.realtime_env import PEOPLE, ROOT, Rt, make_rt
from toolkit.lab.process import free_port
from toolkit.mapping.loader import default_mapping_text


def scimsync(config: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def rt(slapd, scim_server, tmp_path):
    rt = make_rt("slapd", slapd, scim_server, tmp_path / "pipe", users=12, groups=2)
    uid = rt.people()[0]["uid"][0]
    rt.replace(f"uid={uid},{PEOPLE}", title=["waiting to be synced"])  # a resync would write
    yield rt
    rt.close()


def target(rt: Rt) -> dict[str, Any]:
    """Everything on the SCIM server, with ids and versions."""
    return {"users": rt.all("/Users"), "groups": rt.all("/Groups")}


# --- what each case does to the pipe before the command ---------------------------------------


def edit_config(rt: Rt, old: str, new: str) -> None:
    text = rt.config_path.read_text()
    assert old in text, f"{old!r} not in the config"
    rt.config_path.write_text(text.replace(old, new, 1))


def mapping_with_doctype(rt: Rt) -> None:
    text = default_mapping_text()
    body = text[text.index("<scim-ldap:resources") :]
    body = body.replace("<description>", "<description>&who;", 1)
    (rt.folder / "map.xml").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE scim-ldap:resources [<!ENTITY who "x">]>\n' + body
    )
    edit_config(rt, "server: [rt-scim]", "server: [rt-scim]\n    resource-mapping-file: map.xml")


def random_state(rt: Rt) -> None:
    (rt.state_dir / "state.db").write_bytes(os.urandom(8192))
    for sidecar in ("state.db-wal", "state.db-shm"):
        (rt.state_dir / sidecar).unlink(missing_ok=True)


def foreign_state(rt: Rt) -> None:
    random_state(rt)
    (rt.state_dir / "state.db").unlink()
    db = sqlite3.connect(rt.state_dir / "state.db")
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    db.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    db.commit()
    db.close()
    os.chmod(rt.state_dir / "state.db", 0o644)  # another application's mode: left as it is


def state_dir_is_a_file(rt: Rt) -> None:
    for path in rt.state_dir.iterdir():
        path.unlink()
    rt.state_dir.rmdir()
    rt.state_dir.write_text("not a folder\n")


def bearer_token_file(content: str) -> Callable[[Rt], None]:
    def setup(rt: Rt) -> None:
        (rt.folder / "scim-token").write_text(content)
        edit_config(
            rt,
            "http-authorization-method: none",
            "http-authorization-method: bearer\n    oauth-token: ${file:scim-token}",
        )

    return setup


def empty_password_file(rt: Rt) -> None:
    (rt.folder / "ldap-password").write_text("\n")


def servers_unreachable(rt: Rt) -> None:
    """Both servers moved to closed ports: an option error must come before any connection."""
    config = rt.config_path.read_text()
    config = config.replace(f"server-port: {rt.server.port}", f"server-port: {free_port()}")
    config = config.replace(rt.scim.url, f"http://127.0.0.1:{free_port()}/v2")
    rt.config_path.write_text(config)


def nothing(rt: Rt) -> None:
    pass


def state_db(rt: Rt) -> str:
    return str(rt.state_dir / "state.db")


@dataclass
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    says: Callable[[Rt], list[str]]  # text the error must hold (file, option, what is wrong)
    setup: Callable[[Rt], None] = nothing
    never: tuple[str, ...] = field(default=())  # text the error must not hold (a secret)


FILTER = "--source-search-filter"
CASES = [
    # the search filter: checked with the config's strict parser before any server is asked
    Case(
        "filter-unbalanced-dry-run",
        ("dry-run", FILTER, "(uid=user0"),
        2,
        lambda rt: [FILTER, "unbalanced parenthesis"],
    ),
    Case(
        "filter-unbalanced-resync",
        ("resync", FILTER, "(uid=user0"),
        2,
        lambda rt: [FILTER, "unbalanced parenthesis"],
    ),
    Case(
        "filter-trailing-text-resync",
        ("resync", FILTER, "(uid=a)(uid=b)"),
        2,
        lambda rt: [FILTER, "unexpected text after the filter"],
    ),
    Case("filter-empty-resync", ("resync", FILTER, ""), 2, lambda rt: [FILTER, "empty filter"]),
    Case(
        "filter-bad-escape-dry-run",
        ("dry-run", FILTER, r"(cn=a\4)"),
        2,
        lambda rt: [FILTER, "invalid escape"],
    ),
    Case(
        "filter-before-any-server",
        ("resync", FILTER, "uid=user0"),
        2,
        lambda rt: [FILTER, "must start with '('"],
        servers_unreachable,
    ),
    # the mapping file
    Case(
        "mapping-doctype-resync",
        ("resync",),
        2,
        lambda rt: [str(rt.folder / "map.xml"), "DOCTYPE"],
        mapping_with_doctype,
    ),
    Case(
        "mapping-doctype-validate",
        ("config", "validate"),
        2,
        lambda rt: ["map.xml", "DOCTYPE"],
        mapping_with_doctype,
    ),
    # the state folder and database
    Case(
        "state-random-bytes-resync",
        ("resync",),
        2,
        lambda rt: [state_db(rt), "not a usable state database"],
        random_state,
    ),
    Case(
        "state-random-bytes-dry-run",
        ("dry-run",),
        2,
        lambda rt: [state_db(rt), "not a usable state database"],
        random_state,
    ),
    Case(
        "state-random-bytes-status",
        ("status",),
        2,
        lambda rt: [state_db(rt), "not a usable state database"],
        random_state,
    ),
    Case(
        "state-random-bytes-realtime",
        ("realtime-sync", "start", "--foreground", "--until-idle"),
        2,
        lambda rt: [state_db(rt), "not a usable state database"],
        random_state,
    ),
    Case(
        "state-foreign-sqlite-resync",
        ("resync",),
        2,
        lambda rt: [state_db(rt), "another application", "invoices"],
        foreign_state,
    ),
    Case(
        "state-dir-is-a-file-resync",
        ("resync",),
        2,
        lambda rt: [str(rt.state_dir), "is a file, not a folder"],
        state_dir_is_a_file,
    ),
    Case(
        "state-dir-is-a-file-realtime",
        ("realtime-sync", "start", "--foreground", "--until-idle"),
        2,
        lambda rt: [str(rt.state_dir), "is a file, not a folder"],
        state_dir_is_a_file,
    ),
    # secrets
    Case(
        "token-file-empty-resync",
        ("resync",),
        2,
        lambda rt: ["oauth-token", str(rt.folder / "scim-token"), "is empty"],
        bearer_token_file(""),
        never=("Bearer", "Illegal header"),
    ),
    Case(
        "token-file-empty-validate",
        ("config", "validate"),
        2,
        lambda rt: ["oauth-token", str(rt.folder / "scim-token"), "is empty"],
        bearer_token_file(""),
    ),
    Case(
        "password-file-empty-validate",
        ("config", "validate"),
        2,
        lambda rt: ["rt-ldap.password", str(rt.folder / "ldap-password"), "is empty"],
        empty_password_file,
    ),
    Case(
        "token-file-newline-only-dry-run",
        ("dry-run",),
        2,
        lambda rt: ["oauth-token", str(rt.folder / "scim-token"), "is empty"],
        bearer_token_file("\n"),
        never=("Bearer", "Illegal header"),
    ),
    Case(
        "token-file-two-lines-resync",
        ("resync",),
        2,
        lambda rt: ["oauth-token", str(rt.folder / "scim-token"), "line break"],
        bearer_token_file("secret-part-one\nsecret-part-two\n"),
        never=("secret-part", "Illegal header"),
    ),
    Case(
        "token-not-ascii-resync",
        ("resync",),
        2,
        lambda rt: ["oauth-token", "${file:scim-token}", "not a bearer token"],
        bearer_token_file("tökén-secret\n"),
        never=("tökén", "Traceback"),
    ),
    Case(
        "password-file-empty-resync",
        ("resync",),
        2,
        lambda rt: ["password", str(rt.folder / "ldap-password"), "is empty"],
        empty_password_file,
    ),
    # numeric options
    *[
        Case(
            f"rate-{value}",
            ("resync", "--rate-per-second", value),
            2,
            lambda rt, reason=reason: ["--rate-per-second", reason],
        )
        for value, reason in (
            ("-5", "greater than 0"),
            ("0", "greater than 0"),
            ("nan", "greater than 0"),
            ("inf", "greater than 0"),
            ("fast", "invalid float value"),
        )
    ],
    *[
        Case(f"workers-{value}", ("resync", "--workers", value), 2, lambda rt: ["--workers"])
        for value in ("0", "-2", "two")
    ],
    *[
        Case(
            f"max-changes-{value}",
            ("realtime-sync", "start", "--foreground", "--until-idle", "--max-changes", value),
            2,
            lambda rt: ["--max-changes"],
        )
        for value in ("0", "-3", "x")
    ],
    Case(
        "max-deletes-negative",
        ("resync", "--max-deletes", "-1"),
        2,
        lambda rt: ["--max-deletes", "expected a count"],
    ),
    Case(
        "change-number-zero",
        ("realtime-sync", "set-startpoint", "--change-number", "0"),
        2,
        lambda rt: ["--change-number", "at least 1"],
    ),
]


def _fingerprint(path: Path) -> tuple[str, int] | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_clear_error(rt, case):
    case.setup(rt)
    before = target(rt)
    cursor_file = rt.state_dir / "state.db"
    state_before = _fingerprint(cursor_file)
    result = scimsync(rt.config_path, *case.args)
    assert result.returncode == case.code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    said = result.stderr + result.stdout
    for text in case.says(rt):
        assert text in said, f"{text!r} not in:\n{said}"
    for text in case.never:
        assert text not in said, f"{text!r} in:\n{said}"
    assert target(rt) == before  # nothing was written to the SCIM server
    if case.setup in (random_state, foreign_state):  # a file not ours is left exactly as it is
        assert _fingerprint(cursor_file) == state_before


def test_foreign_database_gets_no_scimsync_tables(rt):
    foreign_state(rt)
    result = scimsync(rt.config_path, "dry-run")
    assert result.returncode == 2, result.stderr
    db = sqlite3.connect(rt.state_dir / "state.db")
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()
    assert tables == {"invoices"}


def test_a_fixed_input_then_runs(rt):
    """The same pipe runs once the bad input is gone: the errors came from the input alone."""
    mapping_with_doctype(rt)
    assert scimsync(rt.config_path, "resync").returncode == 2
    (rt.folder / "map.xml").write_text(default_mapping_text())
    result = scimsync(rt.config_path, "resync", FILTER, "(uid=*)", "--rate-per-second", "50")
    assert result.returncode == 0, result.stderr
    assert "applied 1," in result.stdout
