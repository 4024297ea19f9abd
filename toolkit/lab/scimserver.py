"""A real SCIM 2.0 server on loopback: scim2-server's ASGI app under uvicorn.

Run as `python -m toolkit.lab.scimserver --port N` (in its own process, no reloader, no
debugger). Beside the SCIM endpoints under /v2 it answers `POST /_lab/reset`, which empties
the store, so that tests and the lab can start from nothing without a restart. With
$SCIMSYNC_LAB_SCIM_TOKEN set it accepts only that bearer token (kept out of argv).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from toolkit.lab.process import ChildServer, free_port

TOKEN_ENV = "SCIMSYNC_LAB_SCIM_TOKEN"
RESET_PATH = "/_lab/reset"


def build_app(bearer_token: str | None = None):
    """The ASGI application: scim2-server with the default User/EnterpriseUser/Group model."""
    from scim2_models import ScimProvider
    from scim2_server.applications.asgi import ASGIApplication
    from scim2_server.memory import AsyncInMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    config = load_default_service_provider_config()
    if bearer_token:
        config.authentication_schemes = [
            *(config.authentication_schemes or []),
            BEARER_TOKEN_SCHEME,
        ]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    storage = AsyncInMemoryStorage()

    class Application(ASGIApplication):
        def check_auth(self, request) -> None:
            if not bearer_token:
                return
            from scim2_models import UnauthorizedException

            scheme, _, token = (request.header("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or token != bearer_token:
                raise UnauthorizedException

    scim = Application(storage, provider, ScimService(provider))

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == RESET_PATH:
            storage.storage.resources = []  # the setter also drops the unique-value indexes
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await scim(scope, receive, send)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(
        build_app(os.environ.get(TOKEN_ENV)),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


@dataclass
class ScimServer(ChildServer):
    """The SCIM server as a child process on a free loopback port."""

    LABEL = "SCIM server"
    LOG = "scim-server.log"

    workdir: Path
    port: int = 0
    host: str = "127.0.0.1"
    bearer_token: str | None = None
    pid: int | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The SCIM base URL (ends in /v2)."""
        return f"http://{self.host}:{self.port}/v2"

    def start(self, timeout: float = 30.0) -> ScimServer:
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        env = dict(os.environ)
        env.pop(TOKEN_ENV, None)
        if self.bearer_token:
            env[TOKEN_ENV] = self.bearer_token
        argv = [
            sys.executable,
            "-m",
            "toolkit.lab.scimserver",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        self._launch(argv, timeout, env=env)
        return self

    def reset(self) -> None:
        """Empty the store."""
        httpx.post(f"http://{self.host}:{self.port}{RESET_PATH}", timeout=10).raise_for_status()


if __name__ == "__main__":
    main()
