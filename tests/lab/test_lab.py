"""The embedded lab (scimsync lab up|status|down) and its sample data."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from toolkit.cli import main
from toolkit.lab import lab, sampledata
from toolkit.lab.process import pid_alive
from toolkit.lab.samba import SambaDC


def test_sample_data_is_deterministic_and_realistic():
    first = list(sampledata.generate(users=400, groups=12, seed=7))
    assert first == list(sampledata.generate(users=400, groups=12, seed=7))
    assert first != list(sampledata.generate(users=400, groups=12, seed=8))
    people = [e for e in first if "inetOrgPerson" in e["objectClass"]]
    groups = [e for e in first if "groupOfNames" in e["objectClass"]]
    assert len(people) == 400 and len(groups) == 12
    assert len({p["uid"][0] for p in people}) == 400
    assert any(not p["cn"][0].isascii() for p in people)
    assert any(len(p["mail"]) > 1 for p in people)
    assert all(p["telephoneNumber"] and p["postalAddress"] and p["employeeNumber"] for p in people)
    assert any("\\24" in p["postalAddress"][0] for p in people)
    assert sum(1 for p in people if p.get("nsAccountLock") == ["TRUE"]) >= 5
    dns = {p["dn"][0] for p in people}
    managed = [p for p in people if "manager" in p]
    assert len(managed) == 399 and all(p["manager"][0] in dns for p in managed)
    sizes = sorted(len(g["member"]) for g in groups)
    assert sizes[0] < 10 and sizes[-1] >= 150
    assert all(set(g["member"]) <= dns for g in groups)


def test_ldif_base64_for_non_ascii(tmp_path):
    path = sampledata.write_ldif(tmp_path / "s.ldif.gz", users=20, groups=2)
    import gzip

    text = gzip.open(path, "rt").read()
    assert "cn:: " in text and text.count("dn: ") == 22


def test_lab_up_status_down(tmp_path, capsys):
    folder = tmp_path / "lab"
    assert main(["lab", "up", "--dir", str(folder), "--users", "50", "--groups", "3"]) == 0
    state = lab.LabState.load(folder)
    try:
        out = capsys.readouterr().out
        assert state.ldap_url in out and state.scim_url in out
        secret = (folder / "secrets" / "scim-token").read_text()
        assert secret not in out and secret not in (folder / "sync.yaml").read_text()
        assert stat.S_IMODE((folder / "secrets" / "scim-token").stat().st_mode) == 0o600
        assert lab.ldap_counts(state) == {"users": 50, "groups": 3}
        assert httpx.get(f"{state.scim_url}/Users").status_code == 401  # the token is required
        assert lab.scim_service_provider_config(state)["patch"]["supported"] is True
        assert main(["lab", "status", "--dir", str(folder), "--json"]) == 0
        services = json.loads(capsys.readouterr().out)
        assert [s["answering"] for s in services] == [True, True]
        assert main(["lab", "up", "--dir", str(folder)]) == 2  # refuses a second lab there
    finally:
        assert main(["lab", "down", "--dir", str(folder)]) == 0
    assert not pid_alive(state.ldap_pid) and not pid_alive(state.scim_pid)
    assert main(["lab", "status", "--dir", str(folder)]) == 2


def test_lab_up_source_ad_runs_samba_beside_scim_and_syncs(tmp_path, capsys):
    folder = tmp_path / "adlab"
    args = ["lab", "up", "--dir", str(folder), "--users", "30", "--groups", "3", "--source", "ad"]
    assert main(args) == 0
    state = lab.LabState.load(folder)
    try:
        out = capsys.readouterr().out
        assert "Samba AD DC" in out and state.ldap_url in out and state.source == "ad"
        assert lab.ldap_counts(state) == {"users": 30, "groups": 3}
        assert main(["lab", "status", "--dir", str(folder), "--json"]) == 0
        assert [s["answering"] for s in json.loads(capsys.readouterr().out)] == [True, True]
        config = str(folder / "sync.yaml")
        assert main(["--config", config, "resync", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert (result["applied"], result["failed"]) == (33, 0), result
        token = (folder / "secrets" / "scim-token").read_text()
        users = httpx.get(
            f"{state.scim_url}/Users",
            params={"count": 100},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert users["totalResults"] == 30
        assert all(len(u["externalId"]) == 36 for u in users["Resources"])  # objectGUIDs
        dc = SambaDC(Path(state.ldap_workdir), host=state.ldap_url.split("//")[1].split(":")[0])
        dc.admin_password = (folder / "secrets" / "ldap-password").read_text()
        conn = dc.connect()
        conn.add(
            f"CN=lab.newbie,OU=People,{state.suffix}",
            ["top", "person", "organizationalPerson", "user"],
            {"sAMAccountName": "lab.newbie", "userAccountControl": 544},
        )
        conn.unbind()
        start = ["realtime-sync", "start", "--foreground", "--until-idle"]
        assert main(["--config", config, *start]) == 0  # DirSync carries the add
        found = httpx.get(
            f"{state.scim_url}/Users",
            params={"filter": 'userName eq "lab.newbie"'},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert found["totalResults"] == 1
    finally:
        assert main(["lab", "down", "--dir", str(folder)]) == 0
    assert not pid_alive(state.ldap_pid) and not pid_alive(state.scim_pid)
