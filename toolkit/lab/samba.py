"""A private Samba AD DC: an Active Directory for the lab and the test suite.

Samba's LDAP ports are fixed (389, 636), so each DC listens on an address of its own on
loopback (127.0.0.N, added to `lo` when missing: root). Provisioning takes about 3 s, so a
stopped, provisioned DC is kept as a template (in the user's cache folder, one per Samba
version) and every DC is a copy of it: ready in about half a second. The DC runs as
`samba -i -M single` (one process, 50 MB), in our own folder; it never reads the system's
smb.conf. See reference/samba-ad.md for the recipe and Samba's differences from Windows AD.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.lab.process import ChildServer, LabServerError, port_open
from toolkit.ldap.dirsync import REPLICATING_CHANGES

SAMBA = "/usr/sbin/samba"
SAMBA_TOOL = "/usr/bin/samba-tool"
PACKAGES = "samba samba-dsdb-modules samba-ad-provision samba-vfs-modules"
REALM = "EXAMPLE.TEST"
DOMAIN = "EXAMPLE"
BASE_DN = "DC=example,DC=test"
ADMIN_PASSWORD = "Passw0rd!Lab-AD"  # the template's; each DC gets its own (set at create)
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE_DN}"
FIRST_ADDRESS, LAST_ADDRESS = 40, 120  # 127.0.0.N tried in this range


def require_samba() -> None:
    for path in (SAMBA, SAMBA_TOOL):
        if not os.path.exists(path):
            raise LabServerError(
                f"{path} is missing: install the Samba AD DC packages "
                f"(apt-get install --no-install-recommends {PACKAGES}; scripts/system-deps.sh)"
            )


def _samba_version() -> str:
    done = subprocess.run([SAMBA, "--version"], capture_output=True, text=True)
    return (done.stdout.strip() or "unknown").replace(" ", "-").replace("/", "-")


def _options(target: Path, address: str) -> dict[str, str]:
    return {
        "interfaces": address,
        "bind interfaces only": "yes",
        "pid directory": f"{target}/run",
        "ncalrpc dir": f"{target}/run/ncalrpc",
        "winbindd socket directory": f"{target}/run/winbindd",
        "ntp signd socket directory": f"{target}/run/ntp_signd",
        "log file": f"{target}/log/log.%m",
        "server services": "ldap cldap",  # no SMB, KDC, RPC, DNS: only LDAP
    }


def _provision(target: Path, address: str) -> None:
    shutil.rmtree(target, ignore_errors=True)
    (target / "run").mkdir(parents=True)
    (target / "log").mkdir()
    argv = [
        SAMBA_TOOL, "domain", "provision", "--use-rfc2307", "--server-role=dc",
        f"--realm={REALM}", f"--domain={DOMAIN}", "--dns-backend=NONE", "--host-name=dc1",
        f"--host-ip={address}", f"--adminpass={ADMIN_PASSWORD}", f"--targetdir={target}",
    ]  # fmt: skip
    argv += [f"--option={k} = {v}" for k, v in _options(target, address).items()]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise LabServerError(f"samba-tool domain provision failed: {done.stderr.strip()[-800:]}")
    conf = target / "etc" / "smb.conf"
    # provision drops this option: simple binds over plain LDAP (tests also use TLS)
    text = conf.read_text().replace(
        "[global]\n", "[global]\n\tldap server require strong auth = no\n", 1
    )
    conf.write_text(text)


def template_dir() -> Path:
    """The provisioned, never started DC that every DC is copied from (made on first use)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scimsync"
    template = cache / f"samba-dc-{_samba_version()}"
    if not (template / "etc" / "smb.conf").exists():
        cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="samba-template-", dir=cache))
        _provision(scratch / "dc", "127.0.0.1")
        try:
            os.rename(scratch / "dc", template)  # atomic: a concurrent maker's copy wins
        except OSError:
            pass
        shutil.rmtree(scratch, ignore_errors=True)
    return template


def _copy_template(target: Path, address: str) -> None:
    template = template_dir()
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target, symlinks=True)
    conf = target / "etc" / "smb.conf"
    text = conf.read_text()
    # the folder it was provisioned in (the database itself holds relative paths only)
    old = next(
        line.split("=", 1)[1].strip().removesuffix("/private")
        for line in text.splitlines()
        if line.strip().startswith("private dir =")
    )
    lines = []
    for line in text.splitlines():
        line = line.replace(old, str(target))
        if line.strip().startswith("interfaces ="):
            line = f"\tinterfaces = {address}"
        lines.append(line)
    conf.write_text("\n".join(lines) + "\n")
    for pid in (target / "run").glob("*.pid"):
        pid.unlink()


def _has_address(address: str) -> bool:
    done = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True)
    return f" {address}/" in done.stdout


# addresses this process holds (a lock file each, kept open while the process lives): a DC
# being reset (stopped for a moment) keeps its address from other test runs
_HELD: dict[str, int] = {}


def _hold(address: str) -> bool:
    """Take the machine-wide lock of `address` for this process; False if another has it."""
    if address in _HELD:
        return False  # another DC of this process has it
    path = Path(tempfile.gettempdir()) / f"scimsync-samba-{address}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _HELD[address] = fd
    return True


def loopback_address() -> str:
    """A loopback address (127.0.0.N) that no other DC uses: locked for this process, nothing
    listening on 389, on `lo` (added if missing: Samba binds only to addresses an interface
    has)."""
    for n in range(FIRST_ADDRESS, LAST_ADDRESS):
        address = f"127.0.0.{n}"
        if not _hold(address):
            continue
        if port_open(address, 389) or port_open(address, 636):  # a lab's DC, detached
            os.close(_HELD.pop(address))
            continue
        if not _has_address(address):
            done = subprocess.run(
                ["ip", "addr", "add", f"{address}/32", "dev", "lo"], capture_output=True, text=True
            )
            if done.returncode and not _has_address(address):
                raise LabServerError(
                    f"cannot add {address} to the loopback interface for a Samba AD DC "
                    f"(its LDAP port is fixed at 389, so each DC needs an address): "
                    f"{done.stderr.strip()}; run as root"
                )
        return address
    raise LabServerError(f"no free loopback address 127.0.0.{FIRST_ADDRESS}-{LAST_ADDRESS - 1}")


@dataclass
class SambaDC(ChildServer):
    """One private Samba AD DC in `workdir`, on `host`:389 (LDAPS on 636)."""

    LABEL = "samba"
    LOG = "samba.log"

    workdir: Path
    host: str = ""  # "" : a free loopback address, chosen at create
    port: int = 389
    admin_password: str = field(default_factory=lambda: "Aa1!" + secrets.token_urlsafe(12))
    max_runtime: int | None = None  # seconds: the DC ends itself (a harness that died)
    pid: int | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    base_dn = BASE_DN
    suffix = BASE_DN
    admin_dn = ADMIN_DN
    realm = REALM

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def dc_dir(self) -> Path:
        return self.workdir / "dc"

    @property
    def conf(self) -> Path:
        return self.dc_dir / "etc" / "smb.conf"

    @property
    def ca_file(self) -> Path:
        """The DC's self-signed CA (written at first start); its certificate names tls_name."""
        return self.dc_dir / "private" / "tls" / "ca.pem"

    @property
    def tls_name(self) -> str:
        return f"DC1.{REALM.lower()}"

    def create(self) -> SambaDC:
        """A fresh copy of the template DC with its own admin password; not started."""
        require_samba()
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.host:
            self.host = loopback_address()
        _copy_template(self.dc_dir, self.host)
        self._tool(
            "user", "setpassword", "Administrator", f"--newpassword={self.admin_password}",
            "-H", str(self.dc_dir / "private" / "sam.ldb"),
        )  # fmt: skip
        return self

    def start(self, timeout: float = 30.0) -> SambaDC:
        argv = [SAMBA, "-i", "-M", "single", "-s", str(self.conf)]
        if self.max_runtime:
            argv.append(f"--maximum-runtime={self.max_runtime}")
        self._launch(argv, timeout)
        return self

    def reset(self) -> None:
        """A fresh copy of the template (no users, groups or OUs of ours), started again."""
        self.stop()
        self.create()
        self.start()

    def _tool(self, *args: str) -> str:
        env = {**os.environ, "PYTHONPATH": ""}  # Debian's python3 with the samba bindings
        done = subprocess.run(
            [SAMBA_TOOL, *args, "-s", str(self.conf)], capture_output=True, text=True, env=env
        )
        if done.returncode:
            raise LabServerError(f"samba-tool {args[0]} {args[1]}: {done.stderr.strip()[-600:]}")
        return done.stdout

    def grant_replicating_changes(self, sid: str) -> None:
        """Give the account with `sid` "Replicating Directory Changes" on the domain (DirSync)."""
        self._tool(
            "dsacl", "set", "-H", f"ldap://{self.host}",
            f"-U{DOMAIN}\\Administrator%{self.admin_password}",
            f"--objectdn={BASE_DN}", f"--sddl=(OA;;CR;{REPLICATING_CHANGES};;{sid})",
        )  # fmt: skip

    def grant_deleted_objects(self, sid: str) -> None:
        """Let the account with `sid` list and read CN=Deleted Objects (uSNChanged polling
        sees deletes then), through the DC's database: samba-tool's dsacl cannot reach a
        deleted-objects container."""
        script = (
            "import sys\n"
            "from samba.param import LoadParm\n"
            "from samba.samdb import SamDB\n"
            "from samba.auth import system_session\n"
            "from samba.sd_utils import SDUtils\n"
            "from samba.dcerpc import security\n"
            "lp = LoadParm(); lp.load(sys.argv[1])\n"
            "db = SamDB(url=sys.argv[2], session_info=system_session(), lp=lp)\n"
            "flags = 'sd_flags:1:%d' % security.SECINFO_DACL\n"
            "SDUtils(db).update_aces_in_dacl(sys.argv[3], add_aces=[sys.argv[4]],"
            " controls=['show_deleted:1', flags])\n"
        )
        done = subprocess.run(
            [
                "/usr/bin/python3", "-c", script, str(self.conf),
                str(self.dc_dir / "private" / "sam.ldb"),
                f"CN=Deleted Objects,{BASE_DN}", f"(A;;LCRP;;;{sid})",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": ""},
        )  # fmt: skip
        if done.returncode:
            raise LabServerError(f"granting CN=Deleted Objects: {done.stderr.strip()[-600:]}")

    def connect(self, bind_dn: str | None = None, password: str | None = None):
        """A bound ldap3 connection (SYNC, raise_exceptions on)."""
        import ldap3

        server = ldap3.Server(self.host, port=389, get_info=ldap3.NONE)
        return ldap3.Connection(
            server,
            user=bind_dn or self.admin_dn,
            password=password if password is not None else self.admin_password,
            auto_bind=True,
            raise_exceptions=True,
        )


# --- sample data: the lab's people and groups as AD user and group objects ---------------------

# inetOrgPerson attribute -> AD attribute (single-valued ones take the first value)
_AD_ATTRIBUTES = {
    "givenName": "givenName",
    "sn": "sn",
    "displayName": "displayName",
    "mail": "mail",
    "telephoneNumber": "telephoneNumber",
    "mobile": "mobile",
    "title": "title",
    "departmentNumber": "department",
    "o": "company",
    "employeeNumber": "employeeID",
    "employeeType": "employeeType",
    "preferredLanguage": "preferredLanguage",
    "l": "l",
    "st": "st",
    "postalCode": "postalCode",
    "street": "streetAddress",
}
# NORMAL_ACCOUNT | PASSWD_NOTREQD: an enabled account without a password (sample data)
ENABLED = 512 | 32


def ad_dn(dn: str, base: str = BASE_DN) -> str:
    """`uid=x,ou=people,<any suffix>` -> `CN=x,OU=People,<base>` (groups: OU=Groups)."""
    rdn, rest = dn.split(",", 1)
    ou = "People" if rest.lower().startswith("ou=people") else "Groups"
    return f"CN={rdn.split('=', 1)[1]},OU={ou},{base}"


def ad_sample(
    users: int, groups: int, seed: int = 0, base: str = BASE_DN
) -> list[tuple[str, list[str], dict[str, list[str] | str | int]]]:
    """(dn, object classes, attributes) of the OUs, users and groups of the lab's sample
    data (toolkit.lab.sampledata), as AD objects, in the order to add them."""
    from toolkit.lab import sampledata

    out: list[tuple[str, list[str], dict[str, list[str] | str | int]]] = [
        (f"OU=People,{base}", ["top", "organizationalUnit"], {}),
        (f"OU=Groups,{base}", ["top", "organizationalUnit"], {}),
    ]
    for entry in sampledata.generate(users, groups, seed=seed, suffix="dc=example,dc=com"):
        dn = ad_dn(entry["dn"][0], base)
        if "groupOfNames" in entry["objectClass"]:
            name = entry["cn"][0]
            attrs: dict[str, list[str] | str | int] = {
                "sAMAccountName": name[:20],
                "description": entry.get("description", [""])[0] or name,
                "member": [ad_dn(m, base) for m in entry.get("member", [])],
            }
            out.append((dn, ["top", "group"], attrs))
            continue
        uid = entry["uid"][0]
        attrs = {
            "sAMAccountName": uid[:20],
            "userPrincipalName": f"{uid}@{REALM.lower()}",
            "userAccountControl": ENABLED,
        }
        for name, ad_name in _AD_ATTRIBUTES.items():
            if entry.get(name):
                attrs[ad_name] = entry[name][0]
        if entry.get("manager"):
            attrs["manager"] = ad_dn(entry["manager"][0], base)
        out.append((dn, ["top", "person", "organizationalPerson", "user"], attrs))
    return out


def load_sample(conn, users: int, groups: int, seed: int = 0, base: str = BASE_DN) -> int:
    """Add the sample data over LDAP (about 250 users a second); the number of objects."""
    sample = ad_sample(users, groups, seed, base)
    for dn, classes, attrs in sample:
        conn.add(dn, classes, {k: v for k, v in attrs.items() if v != []})
    return len(sample)
