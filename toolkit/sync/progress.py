"""Progress bars on a terminal: reading each side and applying, the long parts of a run.

A bar is drawn on stderr (never stdout, which `--json` owns) when stderr is a terminal or
when asked for (`RunOptions.progress`); otherwise nothing is drawn and nothing is wrapped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def enabled(asked: bool | None) -> bool:
    return asked is True or (asked is None and sys.stderr.isatty())


def progress_bar(asked: bool | None, desc: str, unit: str, total: int | None = None) -> Any:
    """A tqdm bar (a counter when `total` is unknown), or one that draws nothing."""
    if not enabled(asked) or total == 0:
        return _NoBar()
    from tqdm import tqdm

    if total is None:  # a counter: "reading LDAP (users): 41200 entries [00:09, 4521.3 entries/s]"
        unit = f" {unit}"
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr)


def counted(items: Iterable[T], asked: bool | None, desc: str, unit: str) -> Iterable[T]:
    """`items`, counted on a bar as they come (a read whose length is known at the end);
    `items` itself when no bar is drawn."""
    if not enabled(asked):
        return items
    return _counting(items, progress_bar(asked, desc, unit))


def _counting(items: Iterable[T], bar: Any) -> Iterator[T]:
    try:
        for item in items:
            bar.update(1)
            yield item
    finally:
        bar.close()
