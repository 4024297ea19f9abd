"""`scimsync demo` (what `make demo` runs): the main job on the embedded default, end to end.

It starts the lab, shows both endpoints answer, previews the first sync with a dry run,
applies it with resync, shows a second dry run finds nothing to do, makes a few changes in
LDAP and lets realtime sync carry them over, and always stops the lab again.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from toolkit.config import load_config
from toolkit.lab import lab
from toolkit.sync import realtime
from toolkit.sync.batch import RunOptions, dry_run, resync


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


def run(users: int = 2000, groups: int = 50, say: Callable[[str], None] = print) -> None:
    with tempfile.TemporaryDirectory(prefix="scimsync-demo-") as tmp:
        folder = Path(tmp) / "lab"
        started = time.monotonic()
        state = lab.up(folder, users=users, groups=groups)
        try:
            say(
                f"1. lab up ({time.monotonic() - started:.1f} s): slapd at {state.ldap_url}, SCIM at {state.scim_url}"
            )
            say(f"   config {state.config} (secrets as files, mode 0600)")
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
            config = load_config(Path(state.config))
            realtime.set_startpoint(config, None, "end")
            say(
                "3. realtime-sync set-startpoint --end-of-changelog (before the initial load, so no change is lost)"
            )
            plan = dry_run(config, RunOptions())
            say(f"4. dry-run: {plan.source_count} entries -> {_totals(plan.as_summary_json())}")
            report = Path(tmp) / "plan.html"
            plan.save(report)
            say(
                f"   a readable report was written ({report.stat().st_size // 1024} KiB of HTML); explore it in pandas as plan.frame"
            )
            t0 = time.monotonic()
            result = resync(config, RunOptions())
            say(
                f"5. resync: applied {result.applied.applied}, failed {result.applied.failed} in {time.monotonic() - t0:.1f} s"
            )
            again = dry_run(config, RunOptions())
            say(f"6. dry-run again: {_totals(again.as_summary_json())}")
            for line in _ldap_edits(state):
                say(f"7. LDAP: {line}")
            stats = realtime.run_foreground(config, None, until_idle=True, max_changes=None)
            done = ", ".join(f"{k} {v}" for k, v in sorted(stats.completed.items()))
            say(f"8. realtime-sync start --until-idle: {stats.changes} changes ({done})")
            final = dry_run(config, RunOptions())
            say(f"9. dry-run after realtime sync: {_totals(final.as_summary_json())}")
        finally:
            lab.down(folder)
            say("10. lab down: both servers stopped")
