"""`scimsync demo` (what `make demo` runs): the main job on the embedded lab, the notebook way.

It starts the lab, shows both endpoints answer, then runs the notebooks headless with papermill
on the lab's config: 02-explore, 03-dry-run (the plan and an HTML report), 04-sync (resync of
that plan, then realtime sync until idle), a few LDAP edits, and 04-sync again (realtime sync
carries the edits). The executed notebooks and the report stay in the demo folder
(./scimsync-demo/); the lab is always stopped and removed at the end.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from toolkit.config import load_config
from toolkit.lab import lab
from toolkit.notebooks import run_notebook
from toolkit.sync.batch import RunOptions, dry_run

DEFAULT_DIR = Path("scimsync-demo")


def _totals(summary: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary["totals"].items() if v) or "nothing"


def _ldap_edits(state: lab.LabState) -> list[str]:
    """A handful of everyday directory changes: a new hire, a title change, a leaver, a group."""
    import ldap3

    password = (Path(state.folder) / "secrets" / "ldap-password").read_text()
    host, port = state.ldap_url.split("//", 1)[1].rsplit(":", 1)
    conn = ldap3.Connection(
        ldap3.Server(host, port=int(port), get_info=ldap3.NONE),
        state.admin_dn,
        password,
        auto_bind=True,
        raise_exceptions=True,
    )
    people, groups = f"ou=people,{state.suffix}", f"ou=groups,{state.suffix}"
    conn.search(
        people, "(&(objectClass=inetOrgPerson)(!(manager=*)))", attributes=["1.1"], size_limit=1
    )
    boss = conn.entries[0].entry_dn
    # people who manage nobody: deleting a manager would leave dangling manager DNs in LDAP
    conn.search(people, "(manager=*)", attributes=["manager"])
    managers = {str(e.manager).lower() for e in conn.entries}
    conn.search(people, f"(&(objectClass=inetOrgPerson)(manager={boss}))", attributes=["1.1"])
    staff = [e.entry_dn for e in conn.entries if e.entry_dn.lower() not in managers][:2]
    hire = f"uid=zoe.demo,{people}"
    conn.add(
        hire,
        ["inetOrgPerson"],
        {
            "uid": "zoe.demo",
            "cn": "Zoë Démo",
            "sn": "Démo",
            "givenName": "Zoë",
            "mail": ["zoe.demo@example.com"],
            "manager": boss,
            "title": "Engineer",
        },
    )
    conn.modify(staff[0], {"title": [(ldap3.MODIFY_REPLACE, ["Principal Engineer"])]})
    # as a referential-integrity overlay would: the leaver leaves their groups first
    conn.search(groups, f"(member={staff[1]})", attributes=["1.1"])
    for group in [e.entry_dn for e in conn.entries]:
        conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [staff[1]])]})
    conn.delete(staff[1])
    conn.modify(f"cn=engineering,{groups}", {"member": [(ldap3.MODIFY_ADD, [hire])]})
    conn.unbind()
    return [
        f"added {hire}",
        f"changed the title of {staff[0]}",
        f"deleted {staff[1]} (and removed them from their groups)",
        "added the new hire to cn=engineering",
    ]


def run(
    users: int = 2000,
    groups: int = 50,
    folder: Path = DEFAULT_DIR,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Run the demo; the files it leaves in `folder` (kept), executed notebooks first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scimsync-demo-lab-") as tmp:
        lab_folder = Path(tmp) / "lab"
        started = time.monotonic()
        state = lab.up(lab_folder, users=users, groups=groups)
        try:
            say(
                f"1. lab up ({time.monotonic() - started:.1f} s): slapd at {state.ldap_url}, SCIM at {state.scim_url}"
            )
            counts = lab.ldap_counts(state)
            spc = lab.scim_service_provider_config(state)
            features = ", ".join(
                n
                for n in ("patch", "bulk", "filter", "etag", "sort")
                if spc.get(n, {}).get("supported")
            )
            say(
                f"2. LDAP answers: {counts['users']} users, {counts['groups']} groups; SCIM answers, supports {features}"
            )
            kept = _notebooks(state, folder, say)
        finally:
            lab.down(lab_folder)
            say("9. lab down: both servers stopped, the lab's folder removed")
    say(f"kept in {folder}/:")
    for path in kept:
        say(f"   {path}")
    say(f"next: open them in JupyterLab (jupyter lab {folder}); to click through the notebooks")
    say(
        "on servers that keep running: `scimsync lab up`, then open the notebooks "
        "(`scimsync notebook list` shows where) with config_path = 'scimsync-lab/sync.yaml'"
    )
    return kept


def _notebooks(state: lab.LabState, folder: Path, say: Callable[[str], None]) -> list[Path]:
    config_path = state.config
    kept: list[Path] = []

    def notebook(name: str, executed: str, **parameters: object) -> Path:
        started = time.monotonic()
        path = run_notebook(name, folder / executed, {"config_path": config_path, **parameters})
        kept.append(path)
        say(f"   {path} ({time.monotonic() - started:.1f} s)")
        return path

    say("3. 02-explore: the directory data and the mapped SCIM records in pandas")
    notebook("02-explore", "02-explore.ipynb")
    plan, report = folder / "plan.json", folder / "plan.html"
    say("4. 03-dry-run: what a resync would do, object by object; saves the plan and a report")
    notebook("03-dry-run", "03-dry-run.ipynb", output=str(plan), report=str(report))
    kept.append(report)
    resynced = folder / "04-sync-resync.json"
    say("5. 04-sync: resync of that plan (confirm=true), then realtime sync until idle")
    notebook(
        "04-sync",
        "04-sync-resync.ipynb",
        saved_plan=str(plan),
        confirm=True,
        output=str(resynced),
    )
    result = json.loads(resynced.read_text())["resync"]
    say(f"   applied {result['applied']}, failed {result['failed']}")
    for line in _ldap_edits(state):
        say(f"6. LDAP: {line}")
    carried = folder / "04-sync-realtime.json"
    say("7. 04-sync again (run_resync=false): realtime sync carries the edits until idle")
    notebook(
        "04-sync", "04-sync-realtime.ipynb", run_resync=False, confirm=True, output=str(carried)
    )
    realtime = json.loads(carried.read_text())["realtime"]
    done = ", ".join(f"{k} {v}" for k, v in sorted(realtime["completed"].items()))
    say(f"   {realtime['changes']} changes ({done})")
    final = dry_run(load_config(Path(config_path)), RunOptions())
    say(f"8. dry-run after realtime sync: {_totals(final.as_summary_json())}")
    return kept
