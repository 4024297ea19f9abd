"""TLS to the SCIM server: verified by default, a CA file option, allow-all host names.

The proxy terminates TLS (certificate from a throwaway CA made with openssl) in front of
the real scim2-server, as a reverse proxy would.
"""

from __future__ import annotations

import ssl
import subprocess

import pytest

from tests.support.faults import FaultProxy
from toolkit.errors import FatalError
from toolkit.scim import ConfigurationError, ScimClient, ScimEndpoint


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a server certificate for DNS:localhost only (not for 127.0.0.1)."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=scimsync test CA", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=localhost", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "srv.pem", "-days", "1", "-extfile", "san.ext", cwd=d)  # fmt: skip
    return d


@pytest.fixture
def tls_proxy(scim_server, pki):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "srv.pem", pki / "srv.key")
    proxy = FaultProxy("127.0.0.1", scim_server.port, tls=context).start()
    yield proxy
    proxy.stop()


def test_tls_with_the_ca_file_works(tls_proxy, pki):
    endpoint = ScimEndpoint(tls_proxy.url(host="localhost"), verify=str(pki / "ca.pem"))
    with ScimClient(endpoint) as client:
        uid = client.create("User", {"userName": "tls"})["id"]
        assert client.get("User", uid)["userName"] == "tls"


def test_untrusted_certificate_is_a_configuration_error_not_retried(tls_proxy):
    with ScimClient(ScimEndpoint(tls_proxy.url(host="localhost"))) as client:  # system trust
        with pytest.raises(ConfigurationError) as info:
            client.discover()
        assert client.requests_sent == 1
    assert isinstance(info.value, FatalError) and "trust-ca-file" in str(info.value)


def test_host_name_mismatch_fails_unless_allow_all(tls_proxy, pki):
    ca = str(pki / "ca.pem")
    with ScimClient(ScimEndpoint(tls_proxy.url(host="127.0.0.1"), verify=ca)) as strict:
        with pytest.raises(ConfigurationError):
            strict.discover()
    endpoint = ScimEndpoint(tls_proxy.url(host="127.0.0.1"), verify=ca, check_hostname=False)
    with ScimClient(endpoint) as allow_all:
        assert allow_all.discovery.capabilities.patch
