"""The real scim2-server as a WSGI application, run in-process (no socket) through
httpx.WSGITransport: a fresh, empty server per call, its schemas parsed once."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _provider() -> Any:
    from scim2_models import ScimProvider
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    config = load_default_service_provider_config()
    return ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )


def scim_app() -> Any:
    """A fresh, empty scim2-server application (the schemas parsed once)."""
    from scim2_server.applications.wsgi import WSGIApplication
    from scim2_server.memory import InMemoryStorage
    from scim2_server.service import ScimService

    provider = _provider()
    return WSGIApplication(InMemoryStorage(), provider, ScimService(provider, secret="test-only"))
