#!/bin/sh
# Install the Debian packages the tests and the lab need, when they are missing:
# slapd and ldap-utils (the lab and the OpenLDAP tests), 389-ds-base (the 389-DS tests),
# chromium and a font (the browser tests of the notebooks drive it through Playwright),
# Samba's AD DC (the Active Directory tests and `lab up --source ad`; provision needs the three
# samba-* packages beside samba, which --no-install-recommends would leave out).
set -eu
PACKAGES="slapd ldap-utils 389-ds-base openssl chromium fonts-dejavu-core samba samba-dsdb-modules samba-ad-provision samba-vfs-modules"
missing=""
[ -x /usr/sbin/slapd ] || missing="$missing slapd"
command -v ldapsearch >/dev/null 2>&1 || missing="$missing ldap-utils"
[ -x /usr/sbin/ns-slapd ] || missing="$missing 389-ds-base"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"  # test certificates
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/sbin/samba ] || missing="$missing samba"
[ -d /usr/share/samba/setup ] || missing="$missing samba-ad-provision"
[ -n "$(find /usr/lib -path '*samba/ldb/samba_dsdb.so' 2>/dev/null | head -1)" ] || missing="$missing samba-dsdb-modules"
[ -n "$(find /usr/lib -path '*samba/vfs/acl_xattr.so' 2>/dev/null | head -1)" ] || missing="$missing samba-vfs-modules"
# without recommends chromium brings no font: labels would render as empty boxes
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    SUDO="unusable"
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$SUDO" = unusable ]; then
    echo "scimsync needs these system packages:$missing" >&2
    echo "apt-get is not usable here (no apt-get, or not root and no password-less sudo)." >&2
    echo "Install them yourself, for example on Debian/Ubuntu:" >&2
    echo "    sudo apt-get install -y --no-install-recommends $PACKAGES" >&2
    echo "(conda users: conda-forge's openldap has no slapd; take slapd from the system's packages.)" >&2
    exit 1
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# the system slapd that the package may start is not used: the lab and tests run their own
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
