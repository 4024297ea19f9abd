"""Charts of a plan and of realtime sync, drawn by matplotlib into static images.

A Chart is a PNG (plus an SVG for the HTML report): it shows the same in JupyterLab, in a
saved output notebook opened without a kernel or trust (image/png is a safe output; HTML
with scripts, SVG and vega/plotly JSON are not rendered untrusted), in an ipywidgets view and
in the HTML report. Figures are built with matplotlib's object API (Figure + Agg canvas): no
pyplot state, no GUI backend, safe from a worker thread.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from toolkit.plan import frames
from toolkit.plan.model import SITUATIONS
from toolkit.plan.plan import Plan
from toolkit.plan.tables import SITUATION_COLORS

COLORS = SITUATION_COLORS
WIDTH = 8.0  # inches at DPI: 768 px, inside JupyterLab's default notebook width
DPI = 96
BAR = 0.28  # inches per bar row
MAX_BARS = 30  # attributes shown per chart: the rest are counted in its title


class Chart:
    """A drawn chart: `png` for notebooks and widgets, `svg` for the HTML report; each is
    rendered from the figure when first asked for (most uses need only one)."""

    def __init__(self, title: str, figure: Figure):
        self.title = title
        self.figure = figure

    @cached_property
    def png(self) -> bytes:
        out = io.BytesIO()
        self.figure.savefig(out, format="png")
        return out.getvalue()

    @cached_property
    def svg(self) -> str:
        out = io.StringIO()
        self.figure.savefig(out, format="svg", metadata={"Date": None})  # stable output
        return out.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png

    def _repr_mimebundle_(self, **_: Any) -> dict[str, Any]:
        # PNG only: JupyterLab renders image/png in untrusted notebooks (SVG it does not)
        return {"image/png": self.png, "text/plain": f"<chart: {self.title}>"}

    def img_html(self) -> str:
        """An <img> with the PNG inline (widgets)."""
        data = base64.b64encode(self.png).decode()
        return f'<img alt="{_attr(self.title)}" src="data:image/png;base64,{data}">'


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _figure(rows: int, panels: int = 1, sharey: bool = True) -> tuple[Figure, list[Any]]:
    height = max(1.6, 0.9 + BAR * rows)
    figure = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, panels, sharey=sharey, squeeze=False)[0]
    return figure, list(axes)


def _render(figure: Figure, title: str) -> Chart:
    FigureCanvasAgg(figure)
    return Chart(title, figure)


def _empty(title: str, text: str) -> Chart:
    figure = Figure(figsize=(WIDTH, 1.2), dpi=DPI)
    figure.text(0.5, 0.5, text, ha="center", va="center", color="#666")
    figure.suptitle(title, fontsize=11)
    return _render(figure, title)


# --- plan charts --------------------------------------------------------------------------------


def situations(plan: Plan | Mapping[str, Mapping[str, int]]) -> Chart:
    """Objects per class, one stacked bar per class coloured by situation."""
    classes = plan.class_totals() if isinstance(plan, Plan) else plan
    title = "Situations per class"
    if not classes:
        return _empty(title, "no objects")
    names = list(classes)
    figure, (axes,) = _figure(len(names))
    left = [0] * len(names)
    for situation in SITUATIONS:
        counts = [classes[n].get(situation, 0) for n in names]
        if not any(counts):
            continue
        bars = axes.barh(names, counts, left=left, color=COLORS[situation], label=situation)
        labels = [
            f"{c:,}" if c and c / max(1, sum(classes[n].values())) > 0.06 else ""
            for c, n in zip(counts, names, strict=True)
        ]
        axes.bar_label(bars, labels=labels, label_type="center", color="white", fontsize=8)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    axes.invert_yaxis()
    axes.set_xlabel("objects")
    figure.legend(loc="outside lower center", ncols=8, fontsize=8, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.suptitle(title, fontsize=11)
    return _render(figure, title)


def fill_rates(plan: Plan | pd.DataFrame) -> Chart:
    """Per class, the share of objects whose SCIM resource sets each attribute: a short bar
    is an attribute that stays empty (e.g. `active` set on 3 of 100 users)."""
    rates = frames.fill_rates(plan) if isinstance(plan, Plan) else plan
    title = "SCIM attribute fill rate per class"
    if rates.empty:
        return _empty(title, "no mapped objects")
    # past MAX_BARS attributes a class shows its emptiest ones: those are the news
    panels_of = {cls: _emptiest(rates[cls].dropna(), MAX_BARS) for cls in rates.columns}
    rows = max(len(v) for v in panels_of.values())
    figure, panels = _figure(rows, len(panels_of), sharey=False)
    for axes, (cls, values) in zip(panels, panels_of.items(), strict=True):
        colors = ["#c62828" if v < 0.5 else "#1565c0" for v in values]
        bars = axes.barh(list(values.index), values, color=colors)
        axes.bar_label(bars, labels=[f"{v:.0%}" for v in values], padding=2, fontsize=7)
        axes.set_xlim(0, 1.25)
        axes.set_xticks([0, 0.25, 0.5, 0.75, 1])
        axes.set_ylim(rows - 0.5, -0.5)  # bars as thick in every panel, first on top
        axes.set_title(str(cls), fontsize=9)
        axes.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
        axes.spines[["top", "right"]].set_visible(False)
        axes.tick_params(axis="y", labelsize=8)
    more = f" (the {MAX_BARS} emptiest per class)" if len(rates) > MAX_BARS else ""
    figure.suptitle(title + more, fontsize=11)
    return _render(figure, title)


def _emptiest(values: pd.Series, limit: int) -> pd.Series:
    if len(values) <= limit:
        return values
    return values[values.rank(method="first") <= limit]  # in the frame's (name) order


def attribute_changes(plan: Plan | pd.DataFrame) -> Chart:
    """Objects whose attribute a run changes, per class and attribute, labelled with the count
    and its rate of the class's compared objects."""
    counts = frames.attribute_counts(plan) if isinstance(plan, Plan) else plan
    title = "Changes per attribute"
    if counts.empty:
        return _empty(title, "no attribute changes")
    shown = counts.sort_values("changed", ascending=False).head(MAX_BARS)
    labels = [f"{a} ({c})" for a, c in zip(shown["attribute"], shown["class"], strict=True)]
    figure, (axes,) = _figure(len(shown))
    bars = axes.barh(labels, shown["changed"], color=COLORS["modify"])
    axes.bar_label(
        bars,
        labels=[f"{n:,} ({r:.1%})" for n, r in zip(shown["changed"], shown["rate"], strict=True)],
        padding=2,
        fontsize=7,
    )
    axes.set_xlim(0, shown["changed"].max() * 1.25)
    axes.invert_yaxis()
    axes.set_xlabel("objects changed (rate of the class's objects compared)")
    axes.tick_params(axis="y", labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    more = f" (first {MAX_BARS} of {len(counts)})" if len(counts) > MAX_BARS else ""
    figure.suptitle(title + more, fontsize=11)
    return _render(figure, title)


def plan_charts(plan: Plan) -> list[Chart]:
    """The three charts of a plan, in the order reports show them."""
    return [situations(plan), fill_rates(plan), attribute_changes(plan)]


# --- realtime -----------------------------------------------------------------------------------


def activity(records: Iterable[Mapping[str, Any]], bucket: str = "") -> pd.DataFrame:
    """Sync-log lines (toolkit.sync.synclog.read_log) per time bucket: changes done per second
    (`rate`), applied and failed ones, and the lag from the directory's change (its accesslog reqStart,
    else its detection) to its outcome (median and max seconds). The bucket is chosen from the
    span (1 s to 1 h, about 60 buckets) unless given as a pandas offset, e.g. "10s"."""
    detected: dict[Any, float] = {}
    done = []
    for line in records:
        when = _seconds(line.get("time"))
        if when is None:
            continue
        key = line.get("change_number") or line.get("csn")
        if line.get("type") == "change-detected":
            if key is not None:
                detected.setdefault(key, when)
            continue
        if line.get("type") not in _OUTCOMES:
            continue
        start = _csn_seconds(line.get("csn")) or detected.get(key)
        lag = max(0.0, when - start) if start is not None else math.nan
        kind = line["type"]
        done.append((when, kind == "change-applied", kind == "change-failed-detailed", lag))
    columns = ["time", "done", "applied", "failed", "rate", "lag_median", "lag_max"]
    if not done:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(done, columns=["time", "applied", "failed", "lag"])
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    span = (frame["time"].max() - frame["time"].min()).total_seconds()
    size = bucket or _bucket(span)
    grouped = frame.set_index("time").resample(size)
    out = pd.DataFrame(
        {
            "done": grouped["failed"].count(),
            "applied": grouped["applied"].sum().astype(int),
            "failed": grouped["failed"].sum().astype(int),
            "lag_median": grouped["lag"].median(),
            "lag_max": grouped["lag"].max(),
        }
    )
    out["rate"] = out["done"] / pd.Timedelta(size).total_seconds()
    return out.reset_index()[columns]


_OUTCOMES = (
    "change-applied",
    "change-failed-detailed",
    "dropped-out-of-scope",
    "dropped-op-type-not-synchronized",
    "no-change-needed",
)


def _bucket(span: float) -> str:
    for seconds in (1, 5, 10, 30, 60, 300, 600, 1800):
        if span / seconds <= 60:
            return f"{seconds}s"
    return "3600s"


def _seconds(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _csn_seconds(csn: Any) -> float | None:
    """OpenLDAP accesslog's reqStart (`20261206153412.123456Z`): when the directory changed."""
    if not isinstance(csn, str) or len(csn) < 15 or not csn[:14].isdigit():
        return None
    try:
        moment = datetime.strptime(csn[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    fraction = float("0" + csn[14:].rstrip("Z")) if csn[14:15] == "." else 0.0
    return moment.replace(tzinfo=UTC).timestamp() + fraction


def realtime(records: Iterable[Mapping[str, Any]] | pd.DataFrame, bucket: str = "") -> Chart:
    """Realtime sync over time: changes done per second (failed ones in red) above the lag
    from the directory's change to its outcome (median and max)."""
    data = records if isinstance(records, pd.DataFrame) else activity(records, bucket)
    title = "Realtime sync: throughput and lag"
    if data.empty:
        return _empty(title, "no change processed yet")
    figure = Figure(figsize=(WIDTH, 4.2), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    times = list(data["time"])
    top.plot(times, data["rate"], color=COLORS["modify"], marker=".", label="changes / s")
    failed = data["failed"] / (data["done"] / data["rate"]).where(data["done"] > 0)
    if data["failed"].sum():
        top.plot(times, failed.fillna(0), color=COLORS["delete"], marker=".", label="failed / s")
    top.set_ylabel("changes / s")
    top.set_ylim(bottom=0)
    top.legend(fontsize=8, frameon=False)
    bottom.plot(times, data["lag_median"], color="#333", marker=".", label="median")
    bottom.plot(times, data["lag_max"], color=COLORS["conflict"], linestyle="--", label="max")
    bottom.set_ylabel("lag (s)")
    bottom.set_ylim(bottom=0)
    bottom.legend(fontsize=8, frameon=False)
    for axes in (top, bottom):
        axes.spines[["top", "right"]].set_visible(False)
    if len(times) == 1:  # one bucket so far: a minute around it, not matplotlib's years
        pad = pd.Timedelta(seconds=30)
        bottom.set_xlim(times[0] - pad, times[0] + pad)
    short = len(times) == 1 or times[-1] - times[0] < pd.Timedelta(days=1)
    bottom.xaxis.set_major_formatter(DateFormatter("%H:%M:%S" if short else "%m-%d %H:%M"))
    figure.autofmt_xdate()
    figure.suptitle(title + " (UTC)", fontsize=11)
    return _render(figure, title)
