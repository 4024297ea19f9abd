"""Real servers for the test suite, started by the suite itself on free loopback ports.

A test that needs a server fails (never skips) when the server cannot start.
"""

from __future__ import annotations

import pytest

from toolkit.lab.dirsrv import DirSrv
from toolkit.lab.samba import SambaDC
from toolkit.lab.scimserver import ScimServer
from toolkit.lab.slapd import Slapd


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp("slapd")).create().start()
    yield server
    server.stop()


@pytest.fixture
def slapd(slapd_server):
    """The private slapd with a fresh database (suffix, ou=people, ou=groups) and access log."""
    slapd_server.reset()
    return slapd_server


@pytest.fixture(scope="session")
def dirsrv_server(tmp_path_factory):
    server = DirSrv(tmp_path_factory.mktemp("dirsrv")).create()
    yield server
    server.destroy()


@pytest.fixture
def dirsrv(dirsrv_server):
    """The private 389-DS, its data reset to suffix, ou=people and ou=groups."""
    if dirsrv_server.pid is None:
        dirsrv_server.start()
    dirsrv_server.reset()
    return dirsrv_server


@pytest.fixture(scope="session")
def scim_server_process(tmp_path_factory):
    server = ScimServer(tmp_path_factory.mktemp("scim")).start()
    yield server
    server.stop()


@pytest.fixture
def scim_server(scim_server_process):
    """scim2-server under uvicorn, emptied before the test."""
    if scim_server_process.pid is None:
        scim_server_process.start()
    scim_server_process.reset()
    return scim_server_process


@pytest.fixture(scope="session")
def samba_server(tmp_path_factory):
    # the DC ends itself after 2 h should the suite die without stopping it
    server = SambaDC(tmp_path_factory.mktemp("samba"), max_runtime=7200).create().start()
    yield server
    server.stop()


@pytest.fixture
def samba(samba_server):
    """A private Samba AD DC, a fresh copy of the provisioned template (no data of ours)."""
    samba_server.reset()
    return samba_server
