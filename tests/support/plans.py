"""A small Plan built in memory for the pure tests of the plan's views (frames, charts, report):
a modified user (title, telephone number in its sent form, an enterprise department), a
created user, a deleted user, an unchanged user and a group whose members change."""

from __future__ import annotations

from toolkit.plan.model import CREATE, DELETE, MODIFY, UNCHANGED, Request, Row, pending_ref
from toolkit.plan.plan import Plan

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PEOPLE = "ou=people,dc=example,dc=com"


def user(uid: str, name: str, **extra: object) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": uid,
        "displayName": name,
        "emails": [{"value": f"{uid}@example.com", "type": "work"}],
        **extra,
    }


def small_plan() -> Plan:
    old = user(
        "ada",
        "Ada Lovelace",
        id="id-ada",
        title="Analyst",
        phoneNumbers=[{"value": "tel:+1-512-555-0100", "type": "work"}],
        addresses=[{"formatted": "1 Main St\nAustin TX", "type": "work"}],
        **{ENTERPRISE: {"department": "Sales"}},
    )
    new = {
        **old,
        "title": "Chief $ Officer",
        "phoneNumbers": [{"value": "tel:+1-512-555-0199", "type": "work"}],
        ENTERPRISE: {"department": "Finance"},
    }
    new.pop("id")
    modify = Row(
        "users",
        MODIFY,
        f"uid=ada,{PEOPLE}",
        "u-ada",
        "User",
        "id-ada",
        changes=[
            {"attribute": "title", "old": "Analyst", "new": "Chief $ Officer"},
            {  # the comparison form: what the diff compares, not what is sent
                "attribute": "phoneNumbers",
                "old": [{"value": "tel:+15125550100", "type": "work"}],
                "new": [{"value": "tel:+15125550199", "type": "work"}],
            },
            {"attribute": f"{ENTERPRISE}:department", "old": "Sales", "new": "Finance"},
        ],
        requests=[Request("PATCH", "/Users/id-ada", {"Operations": []})],
        source={
            "dn": f"uid=ada,{PEOPLE}",
            "uid": ["ada"],
            "objectclass": ["top", "person"],
            "postaladdress": ["1 Main St$Austin TX"],
            "mail": ["ada@example.com", "a@x.org"],
        },  # fmt: skip
        desired=new,
        target=old,
    )
    created = user("bob", "Bob Byte")
    create = Row(
        "users",
        CREATE,
        f"uid=bob,{PEOPLE}",
        "u-bob",
        "User",
        None,
        changes=[{"attribute": k, "old": None, "new": v} for k, v in created.items()],
        requests=[Request("POST", "/Users", created)],
        desired=created,
    )
    gone = user("cy", "Cy Gone", id="id-cy", title="Clerk")
    delete = Row(
        "users",
        DELETE,
        f"uid=cy,{PEOPLE}",
        "u-cy",
        "User",
        "id-cy",
        requests=[Request("DELETE", "/Users/id-cy", None)],
        target=gone,
    )
    same = user("dee", "Dee Same", id="id-dee")
    unchanged = Row("users", UNCHANGED, f"uid=dee,{PEOPLE}", "u-dee", "User", "id-dee",
                    desired={k: v for k, v in same.items() if k != "id"}, target=same)  # fmt: skip
    group_target = {"displayName": "staff", "id": "id-staff",
                    "members": [{"value": "id-ada"}, {"value": "id-cy"}]}  # fmt: skip
    group_desired = {"displayName": "staff",
                     "members": [{"value": "id-ada"}, {"value": pending_ref(f"uid=bob,{PEOPLE}")}]}  # fmt: skip
    group = Row(
        "groups",
        MODIFY,
        "cn=staff,ou=groups,dc=example,dc=com",
        "g-staff",
        "Group",
        "id-staff",
        changes=[
            {"attribute": "members", "add": [pending_ref(f"uid=bob,{PEOPLE}")], "remove": ["id-cy"]}
        ],
        requests=[Request("PATCH", "/Groups/id-staff", {"Operations": []})],
        desired=group_desired,
        target=group_target,
    )
    return Plan("ldap-to-scim", [modify, create, delete, unchanged, group], source_count=4)
