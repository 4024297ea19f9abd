"""Find and act on a real lab: search both sides by any attribute through every page, provision
picked objects on demand (only they change on the server), export what was found."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.widget_lab import scim_all, set_title
from toolkit.config import load_config
from toolkit.lab import lab
from toolkit.sync.batch import RunOptions, dry_run, resync
from toolkit.widgets.find import ANY, Finder, SearchIndex

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def synced_lab(tmp_path_factory):
    """45 users and 3 groups, resynced once: both sides hold every object."""
    folder = tmp_path_factory.mktemp("find-lab") / "lab"
    state = lab.up(folder, users=45, groups=3)
    assert resync(load_config(state.config), RunOptions()).applied.failed == 0
    yield state
    lab.down(folder)


@pytest.fixture(scope="module")
def plan(synced_lab):
    return dry_run(load_config(synced_lab.config), RunOptions())


def person(plan, n: int):
    return [r for r in plan.rows if r.class_name == "users"][n]


def test_search_finds_a_person_by_mail_alias_employee_number_user_name_and_scim_id(plan):
    index = SearchIndex(plan)
    someone = next(r for r in plan.rows if r.source and len(r.source.get("mail", [])) > 1)
    alias = someone.source["mail"][1]  # not the first value: every value counts
    found = index.search(alias.upper(), "mail")
    assert list(found["dn"]) == [someone.dn]
    assert found["matched"].iloc[0] == f"mail={alias}"

    number = someone.source["employeenumber"][0]
    assert someone.dn in list(index.search(number, "employeeNumber")["dn"])
    user_name = someone.target["userName"]
    assert list(index.search(user_name, "userName")["dn"]) == [someone.dn]
    assert list(index.search(someone.scim_id, "id")["dn"]) == [someone.dn]
    # any attribute: the person, and the groups and reportees that name it by its id
    anywhere = index.search(someone.scim_id, ANY).set_index("dn")["matched"]
    assert anywhere[someone.dn] == f"id={someone.scim_id}"
    others = anywhere.drop(someone.dn)
    assert all(m.endswith(f"value={someone.scim_id}") for m in others), others
    # the enterprise extension's attributes answer to their short name too
    assert index.search(
        number, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.employeeNumber"
    )["dn"].tolist() == [someone.dn]
    assert index.search("no-such-value-anywhere", ANY).empty
    names = index.attributes()
    assert names[:3] == ["mail", "uid", "cn"] and "title" in names


def test_finder_pages_through_every_match_not_the_first_page_only(synced_lab, plan):
    finder = Finder(load_config(synced_lab.config), plan, page_size=20)
    assert len(finder.found) == len(plan.rows) == 48 and finder.pages == 3
    seen = []
    for page in range(3):
        assert f"page {page + 1} of 3" in finder.count.value
        seen += list(finder.page_frame()["dn"])
        finder.next_button.click()
    assert sorted(seen) == sorted(r.dn for r in plan.rows)
    assert finder.next_button.disabled and finder.page == 2

    last = person(plan, 44)  # on the last page of everything
    finder.attribute.value = "uid"
    finder.text.value = last.source["uid"][0]
    finder.search_button.click()
    assert list(finder.found["dn"]) == [last.dn] and finder.page == 0
    assert "1 of 48 objects match" in finder.count.value


def test_export_writes_the_matches_as_csv_parquet_and_html(synced_lab, plan, tmp_path):
    finder = Finder(load_config(synced_lab.config), plan)
    finder.attribute.value = "mail"
    finder.text.value = "@corp.example.com"
    finder.search_button.click()
    matched = set(finder.found["dn"])
    assert 0 < len(matched) < 45
    for label, suffix in (("CSV", ".csv"), ("Parquet", ".parquet"), ("HTML", ".html")):
        finder.export_format.label = label
        finder.export_path.value = str(tmp_path / "found")
        finder.export_button.click()
        assert finder.error is None, finder.error
        assert finder.exported == tmp_path / f"found{suffix}"
        if suffix == ".csv":
            assert set(pd.read_csv(finder.exported)["dn"]) == matched
        elif suffix == ".parquet":
            assert set(pd.read_parquet(finder.exported)["dn"]) == matched
        else:
            text = finder.exported.read_text()
            assert all(dn in text for dn in matched)
        assert oct(finder.exported.stat().st_mode & 0o777) == "0o600"


def test_provision_on_demand_applies_the_picked_person_only_and_shows_each_step(tmp_path):
    state = lab.up(tmp_path / "lab", users=20, groups=2)
    try:
        config = load_config(state.config)
        assert resync(config, RunOptions()).applied.failed == 0
        plan = dry_run(config, RunOptions())
        one, other = person(plan, 3), person(plan, 4)
        set_title(state, one.source["uid"][0], "Provisioned On Demand")
        set_title(state, other.source["uid"][0], "Left For Later")
        before = scim_all(state.config)

        finder = Finder(config, plan)
        finder.attribute.value = "mail"
        finder.text.value = one.source["mail"][0]
        finder.search_button.click()
        assert list(finder.found["dn"]) == [one.dn]
        finder.choices.value = (int(finder.found.index[0]),)  # picked in the list
        assert finder.dns() == [one.dn]
        assert finder.provision_button.description == "Provision 1 picked now"
        finder.provision_button.click()
        assert finder.error is None, finder.error

        [report] = finder.result.reports
        assert report.ok and report.situation == "modify"
        assert [s.name for s in report.steps] == [
            "import",
            "class and scope",
            "correlation",
            "action",
            "request",
            "response",
            "resource",
        ]
        assert report.step("resource").data["title"] == "Provisioned On Demand"
        for name in ("correlation", "request", "response", "Provisioned On Demand"):
            assert name in finder.steps.value
        after = scim_all(state.config)
        changed = [u for u in after["User"] if u not in before["User"]]
        assert [u["id"] for u in changed] == [one.scim_id]
        assert after["Group"] == before["Group"]
        assert "Left For Later" not in str(after)
    finally:
        lab.down(tmp_path / "lab")
