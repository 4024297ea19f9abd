"""HTML tables for people (toolkit.plan.tables): bordered, escaped, coloured, no MathJax."""

from __future__ import annotations

import pandas as pd

from toolkit.plan import tables


def test_values_are_escaped_and_mathjax_is_kept_off_the_data():
    text = tables.table_html(pd.DataFrame({"value": ["c/o Cash $ Carry <b>"]}))
    assert 'class="scimsync-table tex2jax_ignore mathjax_ignore"' in text
    assert "c/o Cash $ Carry &lt;b&gt;" in text and "<b>" not in text


def test_old_and_new_are_coloured_and_situations_too():
    frame = pd.DataFrame({"situation": ["delete"], "old": ["a"], "new": [""]})
    text = tables.table_html(frame)
    assert f"background:{tables.OLD_BACKGROUND}" in text
    assert f"background:{tables.NEW_BACKGROUND}" not in text  # an empty new value stays plain
    assert f"color:{tables.SITUATION_COLORS['delete']}" in text


def test_numbers_align_right_rates_show_as_percent_and_rows_are_cut_with_a_note():
    frame = pd.DataFrame({"changed": range(1, 6), "rate": [0.5, 0.25, 0.125, 1.0, 0.0]})
    text = tables.table_html(frame, max_rows=3)
    assert "text-align:right" in text and "12.5%" in text and "100.0%" not in text
    assert "showing 3 of 5 rows" in text


def test_two_level_columns_get_grouped_headers_with_their_full_name_as_title():
    columns = pd.MultiIndex.from_tuples([("situation", ""), ("title", "ldap"), ("title", "scim")])
    frame = pd.DataFrame([["modify", "a", "b"]], columns=columns)
    frame.attrs["paths"] = {"title": "urn:x:title"}
    text = tables.table_html(frame)
    assert 'colspan="2"' in text and 'title="urn:x:title"' in text
    assert f"color:{tables.SITUATION_COLORS['modify']}" in text


def test_an_unnamed_index_gets_an_empty_header_and_empty_frames_say_so():
    text = tables.table_html(pd.DataFrame({"a": [1]}, index=["x"]), index=True)
    assert ">index<" not in text and ">x<" in text
    assert "nothing here" in tables.table_html(pd.DataFrame(), empty="nothing here")
