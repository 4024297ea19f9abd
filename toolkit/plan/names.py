"""Unique names that rows of one run take from each other.

A server refuses a userName (a group's displayName) that another resource holds, with 409.
In one run that holder may itself be renamed: a chain (a leaver renamed to `jsmith.old`
while a new hire takes `jsmith`) or a cycle (two users swapping names). Sent concurrently,
the row that takes a name may reach the server before its holder lets go of it; a cycle
fails on both sides every run. The Applier sends such rows again, after the rest, in the
order name_order() gives: each holder before the row that takes its name, and one row of
each cycle first moved aside to a temporary name. The dry run says so on those rows
(note_name_takers), so that it shows the requests applying may add.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from toolkit.plan.model import CREATE, MODIFY, Row

#: The attribute that makes each resource type unique on the server.
UNIQUE_ATTRIBUTE = {"User": "userName", "Group": "displayName"}

#: A cycle's first row holds `TEMPORARY_PREFIX + its name` for a moment: a prefix keeps a
#: userName in e-mail form an e-mail address.
TEMPORARY_PREFIX = "scimsync-swap."


def unique_attribute(resource_type: str) -> str:
    return UNIQUE_ATTRIBUTE.get(resource_type, "userName")


def current_name(row: Row) -> Any:
    """The unique name the row's target holds now (as read), None for a create."""
    if row.situation == CREATE or not row.target:
        return None
    return row.target.get(unique_attribute(row.resource_type))


def wanted_name(row: Row) -> Any:
    """The unique name the row gives its resource."""
    desired = row.desired
    if desired is None and row.requests and row.requests[0].method in ("POST", "PUT"):
        desired = row.requests[0].body
    return (desired or {}).get(unique_attribute(row.resource_type))


def takes_a_name(row: Row) -> bool:
    """True when applying the row claims a unique name it does not hold yet: a 409 may then
    mean that another row of the run still holds it."""
    if row.situation not in (CREATE, MODIFY):
        return False
    wanted = wanted_name(row)
    return wanted is not None and _key(wanted) != _key(current_name(row))


def temporary_name(row: Row) -> str:
    return f"{TEMPORARY_PREFIX}{current_name(row)}"


def name_takers(rows: Iterable[Row]) -> list[tuple[Row, Row]]:
    """(row, giver) for each row that takes the unique name another row of `rows` gives up
    (renames away from): only such a row's 409 may clear once the others are applied."""
    takers = [row for row in rows if takes_a_name(row)]
    holder = _holders(takers)
    return [(row, giver) for row in takers if (giver := holder(row)) is not None]


def note_name_takers(rows: list[Row]) -> None:
    """Add to the reason of each row that takes a name another row of the plan gives up."""
    pairs = name_takers(rows)
    taking = [row for row, _ in pairs]
    _, aside = name_order(taking)
    holder = _holders(taking)
    in_cycle = {id(row) for start in aside for row in _cycle(start, holder)}
    for row, giver in pairs:
        attr = unique_attribute(row.resource_type)
        note = f"takes {attr} {wanted_name(row)!r} from {giver.dn}, renamed in this run"
        if id(row) in in_cycle:
            note += f"; a cycle of renames: one resource of it holds {TEMPORARY_PREFIX}<name> first"
        else:
            note += "; sent again after it if the server refuses it first"
        row.reason = f"{row.reason}; {note}" if row.reason else note


def name_order(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """The order to send `rows` in: the holder of a name before the row that takes it. And
    the rows to move aside first: one per cycle, whose name is then free for the row that
    takes it (the cycle's last), which frees the next name, around to the row moved aside.

    Each row takes one name and holds at most one, so following "takes the name of" from a
    row walks a chain that ends at a free name, a row already ordered, or a cycle."""
    holder = _holders(rows)
    order: list[Row] = []
    aside: list[Row] = []
    state: dict[int, bool] = {}  # id(row) -> ordered (False: on the walk under way)
    for row in rows:
        walk: list[Row] = []
        node: Row | None = row
        while node is not None and id(node) not in state:
            state[id(node)] = False
            walk.append(node)
            node = holder(node)
        if node is not None and not state[id(node)]:  # the walk came round to itself
            aside.append(node)
        for node in reversed(walk):  # what the walk reached first goes last
            state[id(node)] = True
            order.append(node)
    return order, aside


def _holders(rows: list[Row]) -> Callable[[Row], Row | None]:
    """holder(row): the other row of `rows` that holds the name `row` takes, if any."""
    held = {}
    for row in rows:
        name = current_name(row)
        if name is not None:
            held[(row.resource_type, _key(name))] = row

    def holder(row: Row) -> Row | None:
        found = held.get((row.resource_type, _key(wanted_name(row))))
        return found if found is not row else None

    return holder


def _cycle(start: Row, holder: Callable[[Row], Row | None]) -> list[Row]:
    cycle, node = [start], holder(start)
    while node is not None and node is not start:
        cycle.append(node)
        node = holder(node)
    return cycle


def _key(name: Any) -> Any:
    # userName is not case-exact (RFC 7643 §4.1.1): "Bob" holds "bob" too
    return name.casefold() if isinstance(name, str) else name
