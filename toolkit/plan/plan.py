"""The Plan: one row per object, as a pandas DataFrame, with its summary and views.

A dry run renders a Plan; resync applies the same Plan. Nothing about a Plan differs
between the two.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.plan.guards import GuardVerdict
from toolkit.plan.model import DUPLICATE, SITUATIONS, UNCHANGED, Link, Request, Row

COLUMNS = [
    "class",
    "situation",
    "dn",
    "entry_uuid",
    "resource_type",
    "scim_id",
    "changes",
    "method",
    "path",
    "body",
    "requests",
    "reason",
    "hash",
    "etag",
    "problems",
]


@dataclass
class Plan:
    pipe: str
    rows: list[Row]
    stale_links: list[Link] = field(default_factory=list)
    source_count: int = 0
    managed_count: int = 0
    guard: GuardVerdict = field(default_factory=GuardVerdict)
    partial: bool = False
    quick_checked: int = (
        0  # unchanged objects the quick check did not map (toolkit.plan.quickcheck)
    )
    # resource type -> its mapping's mapped_view: the desired resource of an unchanged object
    # whose row keeps no mapped copy (its target's mapped attributes, known equal to it)
    views: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    # what the plan's reads were and why (toolkit.sync.reads' ReadNote as plain data)
    reads: list[dict[str, Any]] = field(default_factory=list, compare=False)
    created_at: float = field(default_factory=time.time)
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    # --- the frame ---------------------------------------------------------------------------

    @property
    def frame(self) -> pd.DataFrame:
        """One row per object: class, situation, DN, ids, changes and the exact request."""
        if self._frame is None:
            self._frame = pd.DataFrame([_flat(r) for r in self.rows], columns=COLUMNS)
        return self._frame

    def __len__(self) -> int:
        return len(self.rows)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def summary(self) -> pd.DataFrame:
        """Counts per class and situation (every situation a column, a total row last)."""
        counts = pd.DataFrame.from_dict(self.class_totals(), orient="index", columns=SITUATIONS)
        counts.index.name = "class"
        counts.loc["total"] = counts.sum()
        return counts.astype(int)

    def totals(self) -> dict[str, int]:
        counts = Counter(r.situation for r in self.rows)
        return {s: counts.get(s, 0) for s in SITUATIONS}

    def class_totals(self) -> dict[str, dict[str, int]]:
        # counted from the rows: the frame holds every body and change, far more than counts need
        counts = Counter((r.class_name, r.situation) for r in self.rows)
        out: dict[str, dict[str, int]] = {}
        for name in dict.fromkeys(r.class_name for r in self.rows):
            out[name] = {s: counts.get((name, s), 0) for s in SITUATIONS}
        return out

    def duplicates(self) -> list[Row]:
        """SCIM resources that copy one this pipe manages: a run leaves them to the operator."""
        return [r for r in self.rows if r.situation == DUPLICATE]

    def as_summary_json(self) -> dict[str, Any]:
        """The `--json` shape of dry-run."""
        return {
            "pipe": self.pipe,
            "totals": self.totals(),
            "classes": self.class_totals(),
            "refused": [asdict(f) for f in self.guard.findings],
            "warnings": list(self.guard.warnings),
            "reads": list(self.reads),
        }

    def side_by_side(self) -> pd.DataFrame:
        """The correlated records in one frame: `ldap.<attr>` (mapped) beside `scim.<attr>`."""
        ids = pd.DataFrame(
            [
                {"class": r.class_name, "situation": r.situation, "dn": r.dn, "scim_id": r.scim_id}
                for r in self.rows
            ]
        )
        desired = pd.json_normalize(
            [_strip(self.desired(r)) for r in self.rows], sep="."
        ).add_prefix("ldap.")
        target = pd.json_normalize([_strip(r.target) for r in self.rows], sep=".").add_prefix(
            "scim."
        )
        frame = pd.concat([ids, desired, target], axis=1)
        attrs = sorted(
            {c.split(".", 1)[1] for c in frame.columns if c.startswith(("ldap.", "scim."))}
        )
        ordered = [c for a in attrs for c in (f"ldap.{a}", f"scim.{a}") if c in frame.columns]
        return frame[["class", "situation", "dn", "scim_id", *ordered]]

    def desired(self, row: Row) -> dict[str, Any] | None:
        """The SCIM resource the row's entry should become (for an unchanged object whose
        row keeps no mapped copy: its target's mapped attributes)."""
        if row.desired is not None or row.target is None or row.situation != UNCHANGED:
            return row.desired
        view = self.views.get(row.resource_type)
        return view(row.target) if view is not None else None

    def changes(self) -> pd.DataFrame:
        """One row per changed attribute: what a modify would change, value by value."""
        records = []
        for r in self.rows:
            for c in r.changes:
                records.append(
                    {
                        "class": r.class_name,
                        "situation": r.situation,
                        "dn": r.dn,
                        "scim_id": r.scim_id,
                        **c,
                    }
                )
        return pd.DataFrame(
            records,
            columns=[
                "class",
                "situation",
                "dn",
                "scim_id",
                "attribute",
                "old",
                "new",
                "add",
                "remove",
            ],
        )

    # --- files -------------------------------------------------------------------------------

    def save(self, path: Path | str) -> Path:
        """Write .json (loadable by `resync --plan`), .csv, .parquet or .html."""
        from toolkit.plan import report

        return report.save(self, Path(path))

    @classmethod
    def load(cls, path: Path | str) -> Plan:
        from toolkit.plan import report

        return report.load(Path(path))


def _strip(resource: dict[str, Any] | None) -> dict[str, Any]:
    if not resource:
        return {}
    return {k: v for k, v in resource.items() if k not in ("schemas", "meta")}


def _flat(row: Row) -> dict[str, Any]:
    first: Request | None = row.requests[0] if row.requests else None
    return {
        "class": row.class_name,
        "situation": row.situation,
        "dn": row.dn,
        "entry_uuid": row.entry_uuid,
        "resource_type": row.resource_type,
        "scim_id": row.scim_id,
        "changes": row.changes,
        "method": first.method if first else None,
        "path": first.path if first else None,
        "body": first.body if first else None,
        "requests": [r.as_dict() for r in row.requests],
        "reason": row.reason,
        "hash": row.content_hash(),
        "etag": row.etag,
        "problems": row.problems,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
