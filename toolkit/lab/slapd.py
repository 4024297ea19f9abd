"""A private OpenLDAP slapd on loopback: mdb, accesslog into cn=accesslog, entryUUID.

Used by `scimsync lab`, by the test suite and by the benchmarks. Everything lives in one
folder; the server runs in the foreground (`-d 0`) under our own PID.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.lab.process import ChildServer, LabServerError, free_port
from toolkit.ldap.prepare import ssha  # no clear rootpw in slapd.conf

SLAPD = "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
LAB_SCHEMA = Path(__file__).with_name("lab.schema")

CONFIG_DATABASE = """
database  config
access to * by dn.exact="{admin_dn}" manage by * none
"""

BASE_LDIF = """\
dn: {suffix}
objectClass: domain
objectClass: top
dc: {dc}

dn: ou=people,{suffix}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{suffix}
objectClass: organizationalUnit
ou: groups
"""

CONF = """\
include   {schema}/core.schema
include   {schema}/cosine.schema
include   {schema}/inetorgperson.schema
include   {schema}/nis.schema
include   {lab_schema}
pidfile   {dir}/slapd.pid
argsfile  {dir}/slapd.args
# the default soft limit is 500 entries for non-root clients, even with paged results
sizelimit unlimited
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload accesslog
{config_database}
database  mdb
suffix    "cn=accesslog"
rootdn    "{admin_dn}"
directory {dir}/accesslog
maxsize   4294967296
dbnosync
index     default eq
index     entryCSN,objectClass,reqEnd,reqResult,reqStart,reqDN eq
access to * by * none

database  mdb
suffix    "{suffix}"
rootdn    "{admin_dn}"
rootpw    {admin_password}
directory {dir}/db
maxsize   4294967296
dbnosync
index     objectClass eq
index     uid,cn,mail,member eq
index     entryUUID,entryCSN eq
overlay   accesslog
logdb     cn=accesslog
logops    writes
logsuccess TRUE
logold    (objectClass=*)
logpurge  07+00:00 01+00:00
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""


def require_binary(path: str, package: str) -> None:
    if not Path(path).exists():
        raise LabServerError(
            f"{path} not found: install Debian's {package} "
            f"(sudo apt-get install -y --no-install-recommends {package}), or run `make test`"
        )


@dataclass
class Slapd(ChildServer):
    """One private slapd instance in `workdir`."""

    LABEL = "slapd"
    LOG = "slapd.log"

    workdir: Path
    port: int = 0
    host: str = "127.0.0.1"
    suffix: str = "dc=example,dc=com"
    admin_dn: str = "cn=admin,dc=example,dc=com"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # cn=config served (in memory) and managed by the admin, as on servers configured online
    config_admin: bool = False
    pid: int | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def conf(self) -> Path:
        return self.workdir / "slapd.conf"

    def create(self) -> Slapd:
        """Write the configuration and an empty directory tree (suffix, ou=people, ou=groups)."""
        require_binary(SLAPD, "slapd")
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        self.conf.write_text(
            CONF.format(
                schema=SCHEMA_DIR,
                lab_schema=LAB_SCHEMA,
                dir=self.workdir,
                suffix=self.suffix,
                admin_dn=self.admin_dn,
                admin_password=ssha(self.admin_password),
                config_database=CONFIG_DATABASE.format(admin_dn=self.admin_dn)
                if self.config_admin
                else "",
            )
        )
        self.conf.chmod(0o600)
        self._fresh_database()
        return self

    def _fresh_database(self) -> None:
        for name in ("db", "accesslog"):
            shutil.rmtree(self.workdir / name, ignore_errors=True)
            (self.workdir / name).mkdir()
        base = self.workdir / "base.ldif"
        dc = self.suffix.split(",")[0].split("=", 1)[1]
        base.write_text(BASE_LDIF.format(suffix=self.suffix, dc=dc))
        self._slapadd(base)

    def _slapadd(self, ldif: Path) -> None:
        done = subprocess.run(
            ["slapadd", "-q", "-f", str(self.conf), "-b", self.suffix, "-l", str(ldif)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise LabServerError(f"slapadd {ldif} failed: {done.stderr.strip()}")

    def start(self, timeout: float = 20.0) -> Slapd:
        self._launch([SLAPD, "-d", "0", "-h", f"{self.url}/", "-f", str(self.conf)], timeout)
        return self

    def reset(self) -> None:
        """Back to the empty tree, with an empty access log, on the same port."""
        self.stop()
        self._fresh_database()
        self.start()

    def load_ldif(self, ldif: Path) -> None:
        """Bulk-load an LDIF file offline (slapadd), then start again."""
        running = self.pid is not None
        self.stop()
        self._slapadd(Path(ldif))
        if running:
            self.start()

    def connect(self, bind_dn: str | None = None, password: str | None = None):
        """A bound ldap3 connection (SYNC, raise_exceptions on)."""
        import ldap3

        server = ldap3.Server(self.host, port=self.port, get_info=ldap3.NONE)
        return ldap3.Connection(
            server,
            user=bind_dn or self.admin_dn,
            password=password if password is not None else self.admin_password,
            auto_bind=True,
            raise_exceptions=True,
        )
