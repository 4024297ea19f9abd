"""A private 389 Directory Server on loopback, with the retro changelog (cn=changelog).

389-DS's `dscreate` assumes systemd. It honours a "virtual root" given by $PREFIX whose
defaults.inf says `with_systemd = 0`, so we build one under the instance folder with Debian's
paths, create the instance there, enable the retro changelog, and run ns-slapd in the
foreground under our own PID.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.lab.process import ChildServer, LabServerError, free_port, stop_pid
from toolkit.lab.slapd import BASE_LDIF, require_binary

NS_SLAPD = "/usr/sbin/ns-slapd"
DSCREATE = "/usr/sbin/dscreate"
INSTANCE = "scimsync"
DEFAULTS_INF = "/usr/share/dirsrv/inf/defaults.inf"

INF = """\
[general]
config_version = 2
full_machine_name = localhost
strict_host_checking = False
selinux = False
systemd = False
start = True

[slapd]
instance_name = {instance}
port = {port}
secure_port = {secure_port}
self_sign_cert = False
root_dn = cn=Directory Manager
root_password = {password}

[backend-userroot]
suffix = {suffix}
create_suffix_entry = True
sample_entries = no
"""


def _lib_dir() -> str:
    arch = subprocess.run(
        ["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True
    ).stdout.strip()
    return f"/usr/lib/{arch or 'x86_64-linux-gnu'}"


def make_virtual_root(root: Path) -> None:
    """Copy 389-DS's data and a defaults.inf that puts every path under `root`."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    lib = _lib_dir()

    def dest(path: str) -> Path:
        return root / (path[5:] if path.startswith("/usr/") else path.lstrip("/"))

    root.mkdir(parents=True, exist_ok=True)
    for src in ("/usr/share/dirsrv/", "/etc/dirsrv/config", "/etc/dirsrv/schema"):
        shutil.copytree(src, dest(src), dirs_exist_ok=True)
    dest("/tmp").mkdir(exist_ok=True)
    settings = {
        "with_selinux": "no",
        "with_systemd": "0",
        "user": user,
        "group": group,
        "prefix": str(root),
        "bin_dir": "/usr/bin",
        "sbin_dir": "/usr/sbin",
        "lib_dir": lib,
        "data_dir": f"{root}/share",
        "inst_dir": f"{root}/lib/dirsrv/slapd-{{instance_name}}",
        "plugin_dir": f"{lib}/dirsrv/plugins",
        "system_schema_dir": f"{root}/share/dirsrv/schema",
    }
    out = []
    for line in Path(DEFAULTS_INF).read_text().splitlines(keepends=True):
        line = line.replace(" /", f" {root}/", 1)  # every path value now lives under root
        key = line.split("=")[0].strip()
        if "=" in line and not line.startswith(";") and key in settings:
            line = f"{key} = {settings[key]}\n"
        out.append(line)
    dest(DEFAULTS_INF).write_text("".join(out))


@dataclass
class DirSrv(ChildServer):
    """One private 389-DS instance under `workdir`."""

    LABEL = "389-DS"
    LOG = "ns-slapd.log"

    workdir: Path
    port: int = 0
    host: str = "127.0.0.1"
    suffix: str = "dc=example,dc=com"
    admin_dn: str = "cn=Directory Manager"
    admin_password: str = field(default_factory=lambda: "Lab-" + secrets.token_urlsafe(12))
    pid: int | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def config_dir(self) -> Path:
        return self.root / "etc" / "dirsrv" / f"slapd-{INSTANCE}"

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / "dirsrv" / f"slapd-{INSTANCE}.pid"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PREFIX": str(self.root)}

    def create(self) -> DirSrv:
        """dscreate in a virtual root, then the retro changelog with targetUniqueId."""
        require_binary(NS_SLAPD, "389-ds-base")
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        make_virtual_root(self.root)
        inf = self.workdir / "instance.inf"
        inf.write_text(
            INF.format(
                instance=INSTANCE,
                port=self.port,
                secure_port=free_port(self.host),
                password=self.admin_password,
                suffix=self.suffix,
            )
        )
        inf.chmod(0o600)
        self._run([DSCREATE, "from-file", str(inf)], "dscreate")
        inf.unlink()
        dsconf = ["dsconf", "-D", self.admin_dn, "-w", self.admin_password, self.url]
        self._run([*dsconf, "plugin", "retro-changelog", "enable"], "enable retro changelog")
        self._run(
            [
                *dsconf,
                "plugin",
                "retro-changelog",
                "set",
                "--attribute",
                "nsuniqueid:targetUniqueId",
                "--max-age",
                "7d",
            ],
            "configure retro changelog",
        )
        # dscreate started a daemonized ns-slapd; stop it and run our own in the foreground
        self._stop_daemon()
        self.start()
        self._add_base()
        return self

    def _run(self, argv: list[str], what: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, env=self._env())
        if done.returncode:
            raise LabServerError(
                f"389-DS {what} failed: {(done.stderr or done.stdout).strip()[-1500:]}"
            )

    def _stop_daemon(self) -> None:
        if self.pid_file.exists():
            pid = int(self.pid_file.read_text().split()[0])
            stop_pid(pid, timeout=60)

    def start(self, timeout: float = 60.0) -> DirSrv:
        argv = [NS_SLAPD, "-D", str(self.config_dir), "-i", str(self.pid_file), "-d", "0"]
        self._launch(argv, timeout, env=self._env())
        return self

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _add_base(self) -> None:
        conn = self.connect()
        try:
            for block in BASE_LDIF.format(suffix=self.suffix, dc="x").split("\n\n")[1:]:
                lines = [line.split(": ", 1) for line in block.strip().splitlines()]
                dn = lines[0][1]
                classes = [v for k, v in lines[1:] if k == "objectClass"]
                attrs = {k: v for k, v in lines[1:] if k != "objectClass"}
                conn.add(dn, classes, attrs)
        finally:
            conn.unbind()

    def reset(self) -> None:
        """Delete every entry below the suffix and add ou=people and ou=groups again."""
        import ldap3

        conn = self.connect()
        try:
            conn.search(self.suffix, "(objectClass=*)", ldap3.SUBTREE, attributes=["1.1"])
            dns = [e["dn"] for e in conn.response if e.get("type") == "searchResEntry"]
            for dn in sorted(dns, key=lambda d: d.count(","), reverse=True):
                if dn.lower() != self.suffix.lower():
                    conn.delete(dn)
        finally:
            conn.unbind()
        self._add_base()

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
