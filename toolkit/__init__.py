"""scimsync: keep SCIM 2.0 service providers in step with LDAP directories."""

from __future__ import annotations

__version__ = "0.1.0"
