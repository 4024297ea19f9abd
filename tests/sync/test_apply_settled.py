"""The Applier's shortcut for values with nothing to resolve (_settled): whenever it says a
value is settled, replace_refs would have returned an equal value, whatever the ids map to."""

from __future__ import annotations

import random

from toolkit.plan.engine import replace_refs
from toolkit.plan.model import PENDING
from toolkit.sync.apply import _settled

REF = PENDING + "uid=boss,ou=people,dc=example,dc=com"


def _value(rnd: random.Random, depth: int = 0):
    pick = rnd.random()
    if depth > 3 or pick < 0.35:
        return rnd.choice(["a", REF, None, 1, True, "", 0.5, {}, []])
    if pick < 0.65:
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    keys = ["value", "display", "x", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    return {rnd.choice(keys): _value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))}


def test_a_settled_value_is_what_replace_refs_returns():
    rnd = random.Random(7)
    settled = unsettled = 0
    for _ in range(20_000):
        value = _value(rnd)
        if _settled(value):
            settled += 1
            for ids in (lambda dn: "id-1", lambda dn: None):
                assert replace_refs(value, PENDING, ids) == value, value
        else:
            unsettled += 1
    assert settled > 1000 and unsettled > 1000  # both kinds were drawn


def test_what_replace_refs_would_change_is_not_settled():
    manager = {"value": REF}
    assert not _settled({"manager": manager})  # a pending reference
    assert not _settled({"title": None})  # dropped
    assert not _settled({"name": {}})  # dropped
    assert not _settled({"emails": [None]})  # dropped from the list
    assert _settled({"emails": [{}], "title": "x", "active": False, "n": 0})
