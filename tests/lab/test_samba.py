"""The private Samba AD DC (toolkit.lab.samba): copies of the provisioned template, each on a
loopback address of its own (LDAP's port is fixed), with data of their own; and a clear
failure, never a skip, when Samba is missing."""

from __future__ import annotations

import pytest

from toolkit.lab import samba as samba_module
from toolkit.lab.process import LabServerError, pid_alive
from toolkit.lab.samba import SambaDC

BASE = "DC=example,DC=test"


def test_two_dcs_at_once_each_with_its_own_address_and_data(samba, tmp_path):
    other = SambaDC(tmp_path / "second", max_runtime=600).create().start()
    try:
        assert other.host != samba.host and other.admin_password != samba.admin_password
        first, second = samba.connect(), other.connect()
        first.add(f"OU=OnlyFirst,{BASE}", ["top", "organizationalUnit"])
        second.search(BASE, "(ou=OnlyFirst)", attributes=["ou"])
        assert second.entries == []
        first.search(BASE, "(ou=OnlyFirst)", attributes=["ou"])
        assert len(first.entries) == 1
        first.unbind()
        second.unbind()
    finally:
        other.stop()
    assert other.pid is None


def test_reset_gives_a_fresh_copy(samba):
    conn = samba.connect()
    conn.add(f"OU=Leftover,{BASE}", ["top", "organizationalUnit"])
    conn.unbind()
    pid = samba.pid
    samba.reset()
    assert not pid_alive(pid)
    conn = samba.connect()
    conn.search(BASE, "(ou=Leftover)", attributes=["ou"])
    assert conn.entries == []
    conn.unbind()


def test_missing_samba_is_an_error_naming_the_packages(tmp_path, monkeypatch):
    monkeypatch.setattr(samba_module, "SAMBA", str(tmp_path / "no-samba"))
    with pytest.raises(LabServerError, match="samba-ad-provision") as info:
        SambaDC(tmp_path / "dc").create()
    assert "system-deps.sh" in str(info.value)
