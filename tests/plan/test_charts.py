"""Charts (toolkit.plan.charts): static images that show without a kernel, JavaScript or trust."""

from __future__ import annotations

import io

from matplotlib.image import imread

from tests.support.plans import small_plan
from toolkit.plan import charts

PNG = b"\x89PNG\r\n\x1a\n"


def pixels(chart: charts.Chart):
    return imread(io.BytesIO(chart.png), format="png")


def test_plan_charts_are_pngs_and_svgs_of_notebook_width():
    for chart in charts.plan_charts(small_plan()):
        assert chart.png.startswith(PNG)
        assert "<svg" in chart.svg and "<script" not in chart.svg
        height, width = pixels(chart).shape[:2]
        assert width == charts.WIDTH * charts.DPI and height > 100


def test_a_chart_shows_as_png_only_in_a_notebook():
    chart = charts.situations(small_plan())
    bundle = chart._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/plain"}  # no SVG: untrusted JupyterLab hides it
    assert chart.img_html().startswith(
        '<img alt="Situations per class" src="data:image/png;base64,'
    )


def test_the_situation_chart_draws_each_situation_in_its_colour():
    image = pixels(charts.situations(small_plan()))
    colours = {tuple((image[y, x, :3] * 255).round().astype(int)) for y, x in _grid(image)}
    for situation in ("modify", "create", "delete", "unchanged"):
        hexa = charts.COLORS[situation].lstrip("#")
        rgb = tuple(int(hexa[i : i + 2], 16) for i in (0, 2, 4))
        assert rgb in colours, f"{situation} ({charts.COLORS[situation]}) not drawn"


def _grid(image):
    height, width = image.shape[:2]
    return [(y, x) for y in range(0, height, 2) for x in range(0, width, 2)]


def test_empty_plans_give_a_chart_that_says_so():
    from toolkit.plan.plan import Plan

    empty = Plan("p", [])
    for chart in (
        charts.situations(empty),
        charts.fill_rates(empty),
        charts.attribute_changes(empty),
    ):
        assert chart.png.startswith(PNG)


def test_realtime_activity_counts_rate_failures_and_lag_per_bucket():
    lines = []
    for i in range(20):  # one change a second, each applied 0.5 s after the directory's change
        second = f"2026-12-06T10:00:{i:02d}"
        csn = f"202612061000{i:02d}.000000Z"  # accesslog reqStart: when LDAP changed
        lines.append({"time": second + ".000Z", "type": "change-detected", "change_number": i})
        outcome = "change-failed-detailed" if i == 5 else "change-applied"
        lines.append({"time": second + ".500Z", "type": outcome, "change_number": i, "csn": csn})
    lines.append({"time": "not a time", "type": "change-applied"})  # skipped, not an error
    frame = charts.activity(lines, bucket="10s")
    assert frame["done"].tolist() == [10, 10]
    assert frame["failed"].tolist() == [1, 0]
    assert frame["rate"].tolist() == [1.0, 1.0]
    assert frame["lag_median"].tolist() == [0.5, 0.5]
    assert charts.realtime(lines).png.startswith(PNG)


def test_realtime_lag_falls_back_to_detection_without_an_accesslog_time():
    lines = [
        {"time": "2026-12-06T10:00:00.000Z", "type": "change-detected", "change_number": 7},
        {"time": "2026-12-06T10:00:02.000Z", "type": "change-applied", "change_number": 7},
    ]
    assert charts.activity(lines)["lag_max"].tolist() == [2.0]
    assert charts.realtime([]).png.startswith(PNG)  # "no change processed yet"


def test_realtime_reads_the_sync_log_as_realtime_writes_it(tmp_path):
    from toolkit.sync import synclog

    log = synclog.SyncLog(tmp_path / "pipe-sync.log", "pipe")
    changes = [
        {"kind": "modify", "dn": f"uid=u{i},ou=people", "change_number": i} for i in range(3)
    ]
    log.write_many(synclog.CHANGE_DETECTED, changes)
    for change in changes:
        outcome = synclog.CHANGE_FAILED if change["change_number"] == 2 else synclog.CHANGE_APPLIED
        log.write(outcome, **change, situation="modify")
    log.close()
    frame = charts.activity(synclog.read_log(tmp_path / "pipe-sync.log"))
    assert frame["done"].sum() == 3 and frame["failed"].sum() == 1
    assert (frame["lag_max"] >= 0).all()
    assert charts.realtime(synclog.read_log(tmp_path / "pipe-sync.log")).png.startswith(PNG)


def test_past_the_bar_limit_a_class_shows_its_emptiest_attributes_in_name_order():
    import pandas as pd

    rates = pd.Series({f"a{i:02d}": 1.0 - i / 100 for i in range(40)})
    shown = charts._emptiest(rates, 30)
    assert list(shown.index) == [f"a{i:02d}" for i in range(10, 40)]
    assert charts.fill_rates(rates.to_frame("users")).png.startswith(PNG)
