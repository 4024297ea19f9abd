"""The HTML report at scale: its size, the time to write it, and the time a browser takes to open it.

Run: .venv/bin/python bench/bench_report.py [--users 100000] [--modify 10000] [--delete 500]
     [--create 1000] [--groups 50]
A synthetic Plan built in-process (no servers: the report's cost does not depend on how the
plan was read): users mapped as the default mapping maps them, `--modify` of them with a new
title and telephone number, `--create` new ones, `--delete` gone, and groups whose members
change. Prints the time to write plan.html (with plan.parquet beside it), both sizes, and,
when chromium is installed, the time until the report's `load` event in headless chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.plan.model import CREATE, DELETE, MODIFY, UNCHANGED, Request, Row  # noqa: E402
from toolkit.plan.plan import Plan  # noqa: E402

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CHROMIUM = Path("/usr/bin/chromium")


def user(i: int, title: str = "Engineer", phone: str = "tel:+1-512-555-0100") -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": f"user{i}",
        "externalId": f"uuid-{i}",
        "name": {"formatted": f"User {i}", "familyName": f"Family{i}", "givenName": "User"},
        "displayName": f"User {i}",
        "title": title,
        "emails": [{"value": f"user{i}@example.com", "type": "work"}],
        "phoneNumbers": [{"value": phone, "type": "work"}],
        "addresses": [{"formatted": f"{i} Main St $ Suite 1\nAustin TX", "type": "work"}],
        ENTERPRISE: {"employeeNumber": str(100000 + i), "department": f"Dept {i % 20}"},
        **({"active": False} if i % 33 == 0 else {}),
    }


def synthetic_plan(users: int, modify: int, create: int, delete: int, groups: int) -> Plan:
    rows = []
    for i in range(users):
        dn = f"uid=user{i},ou=people,dc=example,dc=com"
        desired = user(i)
        base = dict(class_name="users", dn=dn, entry_uuid=f"uuid-{i}", resource_type="User")
        if i < modify:
            target = {**user(i, "Old title", "tel:+1-512-555-0199"), "id": f"id{i}"}
            changes = [
                {"attribute": "title", "old": "Old title", "new": "Engineer"},
                {
                    "attribute": "phoneNumbers",
                    "old": [{"value": "tel:+15125550199", "type": "work"}],
                    "new": [{"value": "tel:+15125550100", "type": "work"}],
                },
            ]
            ops = [
                {"op": "replace", "path": "title", "value": "Engineer"},
                {"op": "replace", "path": "phoneNumbers", "value": desired["phoneNumbers"]},
            ]
            request = Request("PATCH", f"/Users/id{i}", {"Operations": ops})
            rows.append(
                Row(
                    situation=MODIFY,
                    scim_id=f"id{i}",
                    changes=changes,
                    requests=[request],
                    desired=desired,
                    target=target,
                    **base,
                )
            )
        elif i < modify + create:
            changes = [{"attribute": k, "old": None, "new": v} for k, v in desired.items()]
            rows.append(
                Row(
                    situation=CREATE,
                    scim_id=None,
                    changes=changes,
                    desired=desired,
                    requests=[Request("POST", "/Users", desired)],
                    **base,
                )
            )
        elif i < modify + create + delete:
            target = {**desired, "id": f"id{i}"}
            rows.append(
                Row(
                    situation=DELETE,
                    scim_id=f"id{i}",
                    target=target,
                    requests=[Request("DELETE", f"/Users/id{i}", None)],
                    **base,
                )
            )
        else:
            target = {**desired, "id": f"id{i}"}
            rows.append(Row(situation=UNCHANGED, scim_id=f"id{i}", target=target, **base))
    for g in range(groups):
        members = [{"value": f"id{i}"} for i in range(g, users, groups)]
        removed = [
            f"id{i}" for i in range(modify + create, modify + create + delete) if i % groups == g
        ]
        desired = {"displayName": f"group{g}", "externalId": f"g{g}", "members": members}
        rows.append(
            Row(
                class_name="groups",
                situation=MODIFY,
                dn=f"cn=group{g},ou=groups,dc=example,dc=com",
                entry_uuid=f"g{g}",
                resource_type="Group",
                scim_id=f"g{g}",
                changes=[{"attribute": "members", "add": [], "remove": removed}],
                requests=[
                    Request(
                        "PATCH",
                        f"/Groups/g{g}",
                        {
                            "Operations": [
                                {"op": "remove", "path": f'members[value eq "{r}"]'}
                                for r in removed
                            ]
                        },
                    )
                ],
                desired=desired,
                target={**desired, "id": f"g{g}"},
            )
        )
    # an unchanged row keeps no mapped copy: the plan gives it from the target, as a mapping's
    # mapped_view does (a copy of the mapped attributes), so the fill rates count every user
    views = {"User": _view, "Group": _view}
    return Plan(
        pipe="ldap-to-scim",
        rows=rows,
        source_count=users + groups,
        managed_count=users,
        views=views,
    )


def _view(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


def load_seconds(path: Path) -> float | None:
    if not CHROMIUM.is_file():
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load", timeout=120_000)
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--modify", type=int, default=10_000)
    parser.add_argument("--create", type=int, default=1_000)
    parser.add_argument("--delete", type=int, default=500)
    parser.add_argument("--groups", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    plan = synthetic_plan(args.users, args.modify, args.create, args.delete, args.groups)
    print(f"synthetic plan: {len(plan):,} rows in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "plan.html"
        started, cpu = time.perf_counter(), time.process_time()
        plan.save(report)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows = report.with_suffix(".parquet")
        # CPU time too: on a shared machine the wall time says as much about the neighbours
        print(f"plan.html + plan.parquet written in {seconds:.1f} s ({cpu:.1f} s CPU)")
        print(f"plan.html: {report.stat().st_size / 1e6:.2f} MB")
        print(f"plan.parquet: {rows.stat().st_size / 1e6:.2f} MB")
        opened = load_seconds(report)
        if opened is None:
            print(f"browser load: not measured ({CHROMIUM} missing)")
        else:
            print(f"plan.html opened in headless chromium (load event) in {opened:.2f} s")


if __name__ == "__main__":
    main()
