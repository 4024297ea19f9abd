"""LDAPS: certificates verified by default, a CA file option, `allow-all` only skips the host name.

A small byte pump on loopback terminates TLS (certificate from a throwaway CA made with
openssl) in front of the real slapd, as a TLS offloader would.
"""

from __future__ import annotations

import select
import socket
import ssl
import subprocess
import threading

import pytest

from toolkit.ldap import LdapServerSpec, LdapSource, LdapTlsError, SourceSpec, connect


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a certificate for DNS:localhost (not 127.0.0.1), and an unrelated CA."""
    d = tmp_path_factory.mktemp("ldap-pki")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                 "-days", "1", "-subj", f"/CN=scimsync {ca}", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
             "-subj", "/CN=localhost", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "srv.pem", "-days", "1", "-extfile", "san.ext", cwd=d)  # fmt: skip
    return d


class TlsPump:
    """Accepts TLS on a free port and relays the bytes to the upstream plain LDAP port."""

    def __init__(self, upstream: tuple[str, int], context: ssl.SSLContext):
        self.upstream, self.context = upstream, context
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(5)
            tls = self.context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()
            return
        upstream = socket.create_connection(self.upstream)
        upstream.settimeout(5)
        # one thread per connection: an SSL socket must not be read and written concurrently
        try:
            while not self.stopping.is_set():
                ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 0.2)[0]
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (upstream if src is tls else tls).sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for s in (tls, upstream):
                try:
                    s.close()
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def ldaps(slapd, pki):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "srv.pem", pki / "srv.key")
    pump = TlsPump((slapd.host, slapd.port), context)
    yield pump
    pump.stop()


def spec(slapd, ldaps, host: str = "localhost", **kw) -> LdapServerSpec:
    return LdapServerSpec(
        host, ldaps.port, "ssl", slapd.admin_dn, slapd.admin_password, name="ldaps-ds", **kw
    )


def test_ldaps_with_the_ca_file_reads_entries(slapd, ldaps, pki):
    server = spec(slapd, ldaps, trust_ca_file=pki / "ca.pem")
    conn = connect(server)
    assert conn.extend.standard.who_am_i() == f"dn:{slapd.admin_dn}"
    conn.unbind()
    source = LdapSource(SourceSpec([slapd.suffix], [server], page_size=2))
    assert sorted(e["dn"] for e in source.iter_entries(slapd.suffix)) == sorted(
        [slapd.suffix, f"ou=people,{slapd.suffix}", f"ou=groups,{slapd.suffix}"]
    )


def test_untrusted_certificate_is_refused_by_default(slapd, ldaps, pki):
    with pytest.raises(LdapTlsError, match="ldaps-ds"):
        connect(spec(slapd, ldaps))  # system trust does not know the test CA
    with pytest.raises(LdapTlsError):
        connect(spec(slapd, ldaps, trust_ca_file=pki / "other-ca.pem"))


def test_host_name_mismatch_refused_unless_allow_all(slapd, ldaps, pki):
    with pytest.raises(LdapTlsError):
        connect(spec(slapd, ldaps, host="127.0.0.1", trust_ca_file=pki / "ca.pem"))
    conn = connect(
        spec(
            slapd,
            ldaps,
            host="127.0.0.1",
            trust_ca_file=pki / "ca.pem",
            hostname_verification="allow-all",
        )
    )
    assert conn.extend.standard.who_am_i() == f"dn:{slapd.admin_dn}"
    conn.unbind()
    with pytest.raises(LdapTlsError):  # allow-all still verifies the chain
        connect(spec(slapd, ldaps, host="127.0.0.1", hostname_verification="allow-all"))


def test_missing_ca_file_is_named(slapd, ldaps, tmp_path):
    with pytest.raises(LdapTlsError, match="does not exist"):
        connect(spec(slapd, ldaps, trust_ca_file=tmp_path / "nope.pem"))
