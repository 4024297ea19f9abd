"""The `scimsync` command: parses arguments, calls the public API, prints.

No logic lives here. Each area owns one `_add_<area>` function that registers its
subcommands; every subcommand sets `func` to a small function taking the parsed
arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from toolkit import __version__
from toolkit.errors import FatalError, ScimsyncError

DEFAULT_CONFIG = "sync.yaml"


def config_path(args: argparse.Namespace) -> Path:
    """The config file: `--config`, else $SCIMSYNC_CONFIG, else ./sync.yaml."""
    return Path(args.config or os.environ.get("SCIMSYNC_CONFIG") or DEFAULT_CONFIG)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


# --- lab ------------------------------------------------------------------------------------


def _add_lab(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="the embedded default: private slapd + SCIM server")
    verbs = lab.add_subparsers(dest="lab_command", metavar="VERB", required=True)
    up = verbs.add_parser("up", help="start both servers with sample data, write a config folder")
    up.add_argument("--dir", type=Path, default=Path("scimsync-lab"), help="lab folder")
    up.add_argument("--users", type=int, default=2000)
    up.add_argument("--groups", type=int, default=50)
    up.add_argument("--seed", type=int, default=0)
    up.set_defaults(func=_lab_up)
    for name, func, text in (
        ("down", _lab_down, "stop both servers"),
        ("status", _lab_status, "what runs where"),
    ):
        verb = verbs.add_parser(name, help=text)
        verb.add_argument("--dir", type=Path, default=Path("scimsync-lab"), help="lab folder")
        verb.add_argument("--json", action="store_true", help="print JSON")
        verb.set_defaults(func=func)


def _lab_up(args: argparse.Namespace) -> int:
    from toolkit.lab import lab

    state = lab.up(args.dir, args.users, args.groups, args.seed)
    print(f"lab up in {state.folder}")
    print(f"  LDAP  {state.ldap_url}  base {state.suffix}  bind {state.admin_dn}")
    print(f"        password in {state.folder}/secrets/ldap-password   (pid {state.ldap_pid})")
    print(
        f"  SCIM  {state.scim_url}  bearer token in {state.folder}/secrets/scim-token   (pid {state.scim_pid})"
    )
    print(f"  data  {state.users} users, {state.groups} groups (seed {state.seed})")
    print(f"  config {state.config}   e.g. scimsync --config {state.config} config show")
    return 0


def _lab_down(args: argparse.Namespace) -> int:
    from toolkit.lab import lab

    state = lab.down(args.dir)
    print(
        f"lab down: stopped slapd (pid {state.ldap_pid}) and the SCIM server (pid {state.scim_pid})"
    )
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from toolkit.lab import lab

    services = lab.status(args.dir)
    if args.json:
        print_json([asdict(s) for s in services])
    for s in [] if args.json else services:
        state = (
            "answering" if s.answering else ("running, not answering" if s.running else "stopped")
        )
        print(f"{s.name:5} {s.url:40} pid {s.pid:<8} {state}")
    return 0 if all(s.answering for s in services) else 1


# --- config, dsconfig, create-sync-pipe-config -----------------------------------------------


def _add_config(sub: argparse._SubParsersAction) -> None:
    """Registered by the configuration area."""


# --- prepare-endpoint-server ------------------------------------------------------------------


def _add_prepare_endpoint_server(sub: argparse._SubParsersAction) -> None:
    """Registered by the endpoint area."""


# --- dry-run, resync, realtime-sync, status ---------------------------------------------------


def _add_sync(sub: argparse._SubParsersAction) -> None:
    """Registered by the sync area."""


# --- demo ------------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo", help="the main job on the embedded lab, start to finish (make demo)"
    )
    demo.add_argument("--users", type=int, default=2000)
    demo.add_argument("--groups", type=int, default=50)
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from toolkit import demo

    demo.run(users=args.users, groups=args.groups)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scimsync",
        description="Keep SCIM 2.0 service providers in step with LDAP directories.",
    )
    parser.add_argument("--version", action="version", version=f"scimsync {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"the sync configuration (default: $SCIMSYNC_CONFIG or ./{DEFAULT_CONFIG})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_lab(sub)
    _add_config(sub)
    _add_prepare_endpoint_server(sub)
    _add_sync(sub)
    _add_demo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FatalError as exc:
        print(f"scimsync: error: {exc}", file=sys.stderr)
        return 2
    except ScimsyncError as exc:
        print(f"scimsync: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scimsync: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
