"""The HTML report (toolkit.plan.report): bounded samples, charts, per-attribute counts, and
every row in a parquet file beside it."""

from __future__ import annotations

import re
import stat

import pandas as pd

from tests.support.plans import PEOPLE, small_plan
from toolkit.plan import report
from toolkit.plan.model import UNCHANGED, Row
from toolkit.plan.plan import COLUMNS, Plan


def test_the_report_has_summary_charts_counts_and_each_objects_diff(tmp_path):
    path = small_plan().save(tmp_path / "plan.html")
    text = path.read_text()
    assert text.startswith("<!doctype html>") and "<h2>Summary</h2>" in text
    assert text.count("<svg") == 3  # situations, fill rates, changes per attribute
    assert "<h2>Changes per attribute</h2>" in text and "enterprise:department" in text
    assert "Chief $ Officer" in text and "tel:+1-512-555-0199 (work)" in text  # as sent
    assert "− Cy Gone" in text  # a member by name
    assert f"delete uid=cy,{PEOPLE}" in text
    assert "<script" not in text  # nothing to trust: it shows as it is
    assert 'class="scimsync-table tex2jax_ignore mathjax_ignore"' in text


def test_the_full_rows_go_to_a_private_parquet_file_beside_the_report(tmp_path):
    plan = small_plan()
    path = plan.save(tmp_path / "plan.html")
    rows = tmp_path / "plan.parquet"
    assert "href='plan.parquet'" in path.read_text()
    frame = pd.read_parquet(rows)
    assert list(frame.columns) == COLUMNS and len(frame) == len(plan)
    for file in (path, rows):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_a_large_plan_shows_a_bounded_sample_per_situation(tmp_path):
    many = [
        Row(
            "users",
            UNCHANGED,
            f"uid=u{i},{PEOPLE}",
            f"e{i}",
            "User",
            f"id{i}",
            target={"userName": f"u{i}", "id": f"id{i}"},
            desired={"userName": f"u{i}"},
        )  # fmt: skip
        for i in range(500)
    ]
    plan = Plan("p", small_plan().rows + many)
    text = report.render_html(plan, sample=7)
    assert "unchanged: 7 of 501 objects" in text
    # the small plan's unchanged user first, then the first 6 of the 500
    assert len(re.findall(r"uid=u\d+,", text)) == 6 and f"uid=dee,{PEOPLE}" in text


def test_long_values_are_cut_in_the_report(tmp_path):
    plan = small_plan()
    plan.rows[0].desired["title"] = "x" * 5000
    text = report.render_html(plan)
    assert "x" * report.CUT + "… (5,000 characters)" in text and "x" * (report.CUT + 1) not in text
