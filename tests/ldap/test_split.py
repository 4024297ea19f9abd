"""Split reads (read-connections > 1) against the real slapd and 389-DS: the same entries as
one search, by entryUUID ranges on slapd and by subtree on 389-DS; faults, early stops."""

from __future__ import annotations

import json
from dataclasses import replace

import ldap3
import pytest

from tests.ldap.test_search import spec_of
from tests.support.plan_env import make_env
from toolkit.config import load_document
from toolkit.config.document import dump_document
from toolkit.lab import sampledata
from toolkit.ldap import LdapRetriableOperationError, LdapSource, SourceSpec
from toolkit.ldap import source as source_module
from toolkit.ldap.split import Part, plan_parts, quantiles, range_parts, read_parts

USERS = "(objectClass=inetOrgPerson)"


def read(spec: SourceSpec, base: str, flt: str = USERS) -> list[dict]:
    with LdapSource(spec) as source:
        return list(source.iter_entries(base, flt, split=True))


def assert_same_entries(split: list[dict], whole: list[dict]) -> None:
    assert len(split) == len(whole) == len({e["dn"] for e in split})
    key = lambda e: e["dn"]  # noqa: E731
    assert sorted(split, key=key) == sorted(whole, key=key)  # DN and every attribute


@pytest.fixture
def recorded(monkeypatch):
    """Every connection the part reads open."""
    conns: list[ldap3.Connection] = []

    def connect_first(servers):
        conn, server = real(servers)
        conns.append(conn)
        return conn, server

    real = source_module.connect_first
    monkeypatch.setattr(source_module, "connect_first", connect_first)
    return conns


def test_range_split_on_slapd_reads_what_one_search_reads(slapd, tmp_path, recorded):
    slapd.load_ldif(sampledata.write_ldif(tmp_path / "u.ldif", users=900, groups=8))
    one = SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=50)
    four = replace(one, read_connections=4)
    with LdapSource(four) as source:
        assert source.schema().is_ordered("entryUUID")
        parts = plan_parts(four, slapd.suffix, USERS, source.schema())
    assert len(parts) == 4 and all("entryUUID>=" in p.search_filter for p in parts)
    sizes = [len(list(LdapSource(one)._read(p, ["1.1"], 50))) for p in parts]
    assert sizes == [225] * 4  # quantile bounds: even parts, though the UUIDs are clustered
    whole = read(one, slapd.suffix)
    recorded.clear()
    split = read(four, slapd.suffix)
    assert_same_entries(split, whole)
    assert len(recorded) == 4 and all(c.closed for c in recorded)
    assert [e["dn"] for e in split] == [e["dn"] for e in read(four, slapd.suffix)]  # fixed order


def test_ids_of_a_last_read_place_the_bounds_without_a_listing(slapd, tmp_path, monkeypatch):
    """A run after the first splits by the ids its snapshot holds: no listing first, and
    the parts stay a partition though the directory changed since (ids gone, ids new)."""
    from toolkit.ldap import split

    slapd.load_ldif(sampledata.write_ldif(tmp_path / "u.ldif", users=400, groups=0))
    one = SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=50)
    four = replace(one, read_connections=4)
    whole = read(one, slapd.suffix)
    known = [e["entryuuid"][0] for e in whole][:300]  # as an older read found them
    known += ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"]

    def no_listing(*args, **kwargs):
        raise AssertionError("the ids were listed though the last read's were given")

    monkeypatch.setattr(split, "_ids", no_listing)
    with LdapSource(four) as source:
        parts = plan_parts(four, slapd.suffix, USERS, source.schema(), known)
        split_read = list(source.iter_entries(slapd.suffix, USERS, split=True, ids=known))
    assert len(parts) == 4
    assert_same_entries(split_read, whole)


def test_subtree_split_on_389_includes_entries_under_the_base(dirsrv, recorded):
    conn = dirsrv.connect()
    for i in range(120):
        ou = ("people", "groups")[i % 2]
        conn.add(
            f"uid=u{i},ou={ou},{dirsrv.suffix}",
            ["inetOrgPerson"],
            {"uid": f"u{i}", "cn": f"U {i}", "sn": "U"},
        )
    conn.add(f"uid=top,{dirsrv.suffix}", ["inetOrgPerson"], {"uid": "top", "cn": "T", "sn": "T"})
    one = SourceSpec(
        [dirsrv.suffix], [spec_of(dirsrv)], page_size=40, unique_id_attribute="nsUniqueId"
    )
    four = replace(one, read_connections=4)
    with LdapSource(four) as source:
        assert source.schema().get("nsUniqueId") and not source.schema().is_ordered("nsUniqueId")
        parts = plan_parts(four, dirsrv.suffix, USERS, source.schema())
    assert parts[0] == Part(dirsrv.suffix, ldap3.BASE, USERS)
    assert {p.base_dn.lower() for p in parts[1:]} >= {
        f"ou=people,{dirsrv.suffix}",
        f"ou=groups,{dirsrv.suffix}",
        f"uid=top,{dirsrv.suffix}",
    }
    whole = read(one, dirsrv.suffix)
    split = read(four, dirsrv.suffix)
    assert len(whole) == 121 and f"uid=top,{dirsrv.suffix}" in {e["dn"] for e in split}
    assert_same_entries(split, whole)
    assert all(c.closed for c in recorded)


def test_a_flat_base_without_an_ordered_id_is_one_search(slapd, tmp_path):
    slapd.load_ldif(sampledata.write_ldif(tmp_path / "u.ldif", users=300, groups=0))
    people = f"ou=people,{slapd.suffix}"
    spec = SourceSpec(
        [slapd.suffix], [spec_of(slapd)], read_connections=4, unique_id_attribute="uid"
    )
    with LdapSource(spec) as source:
        assert not source.schema().is_ordered("uid")  # multi-valued, no ORDERING
        assert plan_parts(spec, people, USERS, source.schema()) == [
            Part(people, ldap3.SUBTREE, USERS)
        ]  # 300 children: more than MAX_CHILDREN
        assert len(list(source.iter_entries(people, USERS, split=True))) == 300


def test_a_part_failing_mid_read_raises_and_closes_every_connection(slapd, tmp_path, recorded):
    """A server failing one of four concurrent searches on demand does not exist: injected."""
    slapd.load_ldif(sampledata.write_ldif(tmp_path / "u.ldif", users=400, groups=0))
    spec = SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=20, read_connections=4)
    source = LdapSource(spec)
    parts = plan_parts(spec, slapd.suffix, USERS, source.schema())
    fault = LdapRetriableOperationError("search of x: connection lost; the read is incomplete")

    def part_read(part):
        for count, entry in enumerate(source._read(part, ["uid"], 20)):
            if part == parts[2] and count == 30:
                raise fault
            yield entry

    got = []
    with pytest.raises(LdapRetriableOperationError) as err:
        got.extend(read_parts(part_read, parts, 4))
    assert err.value is fault and len(got) < 400
    assert len(recorded) >= 3 and all(c.closed for c in recorded)


def test_stopping_early_closes_every_connection(slapd, tmp_path, recorded):
    slapd.load_ldif(sampledata.write_ldif(tmp_path / "u.ldif", users=2000, groups=0))
    spec = SourceSpec([slapd.suffix], [spec_of(slapd)], page_size=25, read_connections=4)
    with LdapSource(spec) as source:
        reader = source.iter_entries(slapd.suffix, USERS, split=True)
        first = [next(reader) for _ in range(10)]
        reader.close()
        assert len(first) == 10 and len(recorded) == 4
        assert all(c.closed for c in recorded)
        assert len(list(source.iter_entries(slapd.suffix, USERS, split=True))) == 2000


def test_quantile_bounds_cut_a_partition():
    ids = [f"{i:08x}-0000-1000-8000-000000000000" for i in range(0, 1000, 7)]
    bounds = quantiles(ids, 4)
    assert len(bounds) == 3 and bounds == sorted(bounds)
    parts = range_parts("dc=x", "(a=1)", "entryUUID", bounds)
    assert [p.search_filter for p in parts] == [
        f"(&(a=1)(!(entryUUID>={bounds[0]})))",
        f"(&(a=1)(entryUUID>={bounds[0]})(!(entryUUID>={bounds[1]})))",
        f"(&(a=1)(entryUUID>={bounds[1]})(!(entryUUID>={bounds[2]})))",
        f"(&(a=1)(entryUUID>={bounds[2]}))",
    ]
    assert quantiles(ids[:1], 4) == [] and quantiles([], 4) == []
    assert range_parts("dc=x", "(a=1)", "x", ["a(b)*"])[1].search_filter == (
        "(&(a=1)(x>=a\\28b\\29\\2a))"
    )  # a bound is a value: escaped
    assert quantiles(ids[:3], 4) == sorted(ids[1:3])


def test_a_dry_run_reading_on_four_connections_plans_what_one_does(
    slapd, scim_server, tmp_path, monkeypatch
):
    env = make_env(slapd, scim_server, tmp_path / "pipe", users=80, groups=6)
    split_parts: list[int] = []
    real = source_module.plan_parts

    def spy(*args):
        parts = real(*args)
        split_parts.append(len(parts))
        return parts

    monkeypatch.setattr(source_module, "plan_parts", spy)

    def plan(label: str, *extra: str) -> list[str]:
        path = env.folder / f"{label}.json"
        result = env.cli("dry-run", "--full-compare", "--output", str(path), *extra)
        assert result.code == 0, result.err
        return sorted(json.dumps(r, sort_keys=True) for r in json.loads(path.read_text())["rows"])

    one = plan("one", "--full-read")
    assert not split_parts
    doc = load_document(env.config_path)
    for source in doc["sync-sources"].values():
        source["read-connections"] = 4
    env.config_path.write_text(dump_document(doc))
    assert plan("four", "--full-read") == one
    assert split_parts and max(split_parts) == 4
    split_parts.clear()
    assert plan("four-incremental") == one  # the listing of ids split too
    assert split_parts and max(split_parts) == 4
    env.close()
