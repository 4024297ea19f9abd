"""Analyst-readable frames of a plan (toolkit.plan.frames), on a small plan built in memory."""

from __future__ import annotations

from tests.support.plans import ENTERPRISE, PEOPLE, small_plan
from toolkit.plan import frames


def test_schema_urns_are_shortened_and_core_ones_dropped():
    assert frames.short_name(f"{ENTERPRISE}:department") == "enterprise:department"
    assert frames.short_name("urn:ietf:params:scim:schemas:core:2.0:User:userName") == "userName"
    assert frames.short_name("urn:example:acme:2.0:User:costCenter") == "User:costCenter"
    assert frames.short_name("name.givenName") == "name.givenName"


def test_cells_unwrap_single_values_and_join_lists():
    assert frames.cell(["Wiebke Moreau"]) == "Wiebke Moreau"
    assert frames.cell(["a@x", "b@y"]) == "a@x; b@y"
    assert frames.cell([{"value": "a@x", "type": "work", "primary": True}]) == "a@x (work, primary)"
    assert frames.cell({"formatted": "1 Main St\nAustin"}) == "1 Main St, Austin"
    assert frames.cell(None) == "" and frames.cell(True) == "true"
    assert frames.cell(b"\xff\xfe") == "<2 bytes>"


def test_changes_put_old_and_new_first_as_sent_with_short_names():
    plan = small_plan()
    changes = frames.changes(plan)
    assert list(changes.columns[:4]) == ["name", "attribute", "old", "new"]
    ada = changes[changes["name"] == "Ada Lovelace"].set_index("attribute")
    # the telephone number as the request sends it, not the diff's comparison form
    assert ada.loc["phoneNumbers", "new"] == "tel:+1-512-555-0199 (work)"
    assert ada.loc["phoneNumbers", "old"] == "tel:+1-512-555-0100 (work)"
    assert ada.loc["enterprise:department", ["old", "new"]].tolist() == ["Sales", "Finance"]
    assert ada.loc["enterprise:department", "path"] == f"{ENTERPRISE}:department"
    assert "scim_id" not in changes.columns


def test_member_changes_show_names_and_ids_on_demand():
    plan = small_plan()
    staff = frames.changes(plan, situations=["modify"]).query("name == 'staff'").iloc[0]
    assert staff["old"] == "− Cy Gone"
    assert staff["new"] == f"+ uid=bob,{PEOPLE}"  # a create's pending reference: its DN
    with_ids = frames.changes(plan, ids=True).query("name == 'staff'").iloc[0]
    assert with_ids["old"] == "− Cy Gone [id-cy]" and with_ids["scim_id"] == "id-staff"


def test_a_delete_shows_the_resource_that_goes():
    plan = small_plan()
    gone = frames.object_changes(plan, plan.rows[2]).set_index("attribute")
    assert gone.loc["userName", "old"] == "cy" and gone.loc["title", "old"] == "Clerk"
    assert set(gone["new"]) == {""}


def test_a_create_lists_what_it_sends():
    plan = small_plan()
    created = frames.object_changes(plan, plan.rows[1]).set_index("attribute")
    assert created.loc["emails", "new"] == "bob@example.com (work)"
    assert set(created["old"]) == {""}


def test_directory_drops_object_class_and_puts_the_dn_last():
    directory = frames.directory(small_plan())
    assert "objectclass" not in directory.columns and directory.columns[-1] == "dn"
    row = directory.iloc[0]
    assert row["uid"] == "ada" and row["mail"] == "ada@example.com; a@x.org"
    assert row["postaladdress"] == "1 Main St$Austin TX"


def test_side_by_side_pairs_ldap_and_scim_under_short_names():
    side = frames.side_by_side(small_plan())
    assert ("enterprise:department", "ldap") in side.columns
    assert side.attrs["paths"]["enterprise:department"] == f"{ENTERPRISE}:department"
    ada = side.iloc[0]
    assert ada[("title", "ldap")] == "Chief $ Officer" and ada[("title", "scim")] == "Analyst"


def test_attribute_counts_have_counts_and_rates_per_class():
    counts = frames.attribute_counts(small_plan()).set_index(["class", "attribute"])
    # users compared: the modify, the create and the unchanged one
    assert counts.loc[("users", "title"), ["changed", "of"]].tolist() == [1, 3]
    assert abs(counts.loc[("users", "title"), "rate"] - 1 / 3) < 1e-9
    assert counts.loc[("groups", "members"), "changed"] == 1


def test_fill_rates_show_attributes_left_empty_per_class():
    rates = frames.fill_rates(small_plan())
    # title is set on ada only of the three mapped users (the delete maps nothing)
    assert abs(rates.loc["title", "users"] - 1 / 3) < 1e-9
    assert rates.loc["userName", "users"] == 1.0
    assert rates["groups"].dropna().index.tolist() == ["displayName", "members"]


def test_records_mark_the_attributes_that_differ():
    plan = small_plan()
    records = frames.records(plan.rows[0]).set_index("attribute")
    assert records.loc["title", ["ldap", "scim", "differs"]].tolist() == [
        "Chief $ Officer",
        "Analyst",
        "≠",
    ]
    assert records.loc["userName", "differs"] == ""
    shown = frames.short_paths(frames.records(plan.rows[0])).set_index("attribute")
    assert shown.loc["userName", "path"] == ""
    assert shown.loc["enterprise:department", "path"] == f"{ENTERPRISE}:department"
