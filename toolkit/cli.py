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
    up.add_argument(
        "--source",
        choices=("ldap", "ad"),
        default="ldap",
        help="ldap: a private slapd (default); ad: a private Samba AD DC read with DirSync",
    )
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

    state = lab.up(args.dir, args.users, args.groups, args.seed, args.source)
    print(
        f"lab up in {state.folder}"
        + (" (Active Directory: Samba AD DC)" if state.source == "ad" else "")
    )
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
        f"lab down: stopped {'samba' if state.source == 'ad' else 'slapd'} (pid {state.ldap_pid}) "
        f"and the SCIM server (pid {state.scim_pid})"
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
    """config show|validate, dsconfig VERB ..., create-sync-pipe-config."""
    config = sub.add_parser("config", help="show or validate the sync configuration")
    verbs = config.add_subparsers(dest="config_command", metavar="VERB", required=True)
    show = verbs.add_parser("show", help="print the effective config (secrets as references only)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_config_show)
    validate = verbs.add_parser(
        "validate",
        help="list every problem of the config, or say valid",
        description="Check the config and its mapping files as a run would load them, and "
        "each mapping against the LDAP schema of its pipe's source (read as the sync user). "
        "Exits 2 on a problem; says so when the directory could not be asked.",
    )
    validate.add_argument(
        "--offline",
        action="store_true",
        help="do not read the directory's schema (the mapping is then not checked against it)",
    )
    validate.set_defaults(func=_config_validate)

    ds = sub.add_parser(
        "dsconfig",
        add_help=False,
        help="PingDataSync's dsconfig verbs on the config file (dsconfig --help for more)",
    )
    ds.add_argument("--batch-file", metavar="FILE", help="apply a file of dsconfig commands")
    ds.add_argument("-n", "--no-prompt", action="store_true", help="accepted, as in PingDataSync")
    ds.add_argument("-H", "--help", action="store_true", dest="ds_help", help="show the verbs")
    ds.add_argument("words", nargs=argparse.REMAINDER, help="VERB and its options")
    ds.set_defaults(func=_config_dsconfig)

    pc = sub.add_parser(
        "create-sync-pipe-config",
        help="write a one-way LDAP-to-SCIM sync pipe config (prompts, or --no-prompt with flags)",
    )
    pc.add_argument("--no-prompt", action="store_true", help="take every answer from the flags")
    pc.add_argument("--pipe-name", default="ldap-to-scim")
    pc.add_argument(
        "--source-type",
        default="ldap",
        help="LDAP server type (default ldap; active-directory writes the AD mapping and classes)",
    )
    pc.add_argument("--source-host", default="localhost")
    pc.add_argument("--source-port", type=int)
    pc.add_argument("--source-security", choices=("none", "ssl", "starttls"), default="none")
    pc.add_argument("--source-bind-dn")
    pc.add_argument("--source-bind-password-file", type=Path)
    pc.add_argument("--source-base-dn", action="append", default=[], metavar="DN")
    pc.add_argument(
        "--change-detector",
        choices=("changelog", "accesslog", "dirsync", "usnchanged", "auto"),
        default="auto",
    )
    pc.add_argument("--scim-url")
    pc.add_argument("--scim-auth", choices=("none", "basic", "bearer", "oauth2"), default="none")
    pc.add_argument("--scim-token-file", type=Path)
    pc.add_argument("--scim-user")
    pc.add_argument("--scim-password-file", type=Path)
    pc.add_argument("--scim-token-url")
    pc.add_argument("--scim-client-id")
    pc.add_argument("--scim-client-secret-file", type=Path)
    pc.add_argument("--resource-mapping-file", type=Path)
    pc.add_argument("--offline", action="store_true", help="do not test the connections")
    pc.add_argument("--force", action="store_true", help="overwrite an existing config")
    pc.set_defaults(func=_config_create_sync_pipe_config)


def _config_show(args: argparse.Namespace) -> int:
    from toolkit.config import load_config
    from toolkit.config.document import dump_document

    data = load_config(config_path(args)).to_dict()  # secrets appear as references only
    if args.json:
        print_json(data)
    else:
        sys.stdout.write(dump_document(data))
    return 0


def _config_validate(args: argparse.Namespace) -> int:
    from toolkit.sync.mappingcheck import validate_config

    path = config_path(args)
    result = validate_config(path, offline=args.offline)
    for problem in result.problems:
        print(problem)
    for warning in result.warnings:
        print(f"scimsync: warning: {warning}", file=sys.stderr)
    if result.problems:
        print(f"{path}: {len(result.problems)} problem(s)", file=sys.stderr)
        return 2
    if result.unchecked:
        for reason in result.unchecked:
            print(f"scimsync: warning: {reason}", file=sys.stderr)
        print(f"{path}: valid, but the mapping was NOT checked against the directory's schema")
        return 0
    print(f"{path}: valid")
    return 0


def _config_dsconfig(args: argparse.Namespace) -> int:
    from toolkit.config.dsconfig import run_batch_file, run_dsconfig

    path = config_path(args)
    if args.batch_file:
        result = run_batch_file(path, args.batch_file)
    else:
        result = run_dsconfig(path, ["--help"] if args.ds_help else args.words)
    for line in result.output:
        print(line)
    for warning in result.warnings:
        print(f"scimsync: warning: {warning}", file=sys.stderr)
    return 0


def _config_create_sync_pipe_config(args: argparse.Namespace) -> int:
    from toolkit.config import pipeconfig

    path = config_path(args)
    if args.no_prompt:
        ref = pipeconfig.secret_file_reference
        answers = pipeconfig.PipeConfigAnswers(
            source_base_dns=args.source_base_dn,
            scim_url=args.scim_url or "",
            pipe_name=args.pipe_name,
            source_type=args.source_type,
            source_servers=[(args.source_host, args.source_port)],
            source_security=args.source_security,
            source_bind_dn=args.source_bind_dn,
            source_bind_password=ref(
                args.source_bind_password_file, path, "--source-bind-password-file"
            ),
            change_detector=args.change_detector,
            scim_auth=args.scim_auth,
            scim_token=ref(args.scim_token_file, path, "--scim-token-file"),
            scim_user=args.scim_user,
            scim_password=ref(args.scim_password_file, path, "--scim-password-file"),
            scim_token_url=args.scim_token_url,
            scim_client_id=args.scim_client_id,
            scim_client_secret=ref(args.scim_client_secret_file, path, "--scim-client-secret-file"),
            resource_mapping_file=args.resource_mapping_file,
        )
    else:
        if path.exists() and not args.force:
            raise pipeconfig.ConfigError(f"{path} already exists: use --force to overwrite it")
        from toolkit.wizard import Wizard

        wizard = Wizard(path)
        answers = wizard.run()
        if not wizard.yes(f"Write the configuration to {path}?", True):
            print("nothing written")
            return 1
    from toolkit.sync.checks import check_connections

    check = None if args.offline else check_connections
    from toolkit.mapping import default_mapping_text

    result = pipeconfig.write_pipe_config(
        path,
        answers,
        default_mapping=default_mapping_text,
        force=args.force,
        check_connections=check,
    )
    for warning in result.warnings:
        print(f"scimsync: warning: {warning}", file=sys.stderr)
    print(f"wrote {result.path}")
    if result.mapping_written:
        print(
            f"wrote {result.mapping_file} (the default mapping: edit it to change what is synchronized)"
        )
    return 0


def _add_prepare_endpoint_server(sub: argparse._SubParsersAction) -> None:
    """Registered by the endpoint area."""
    cmd = sub.add_parser(
        "prepare-endpoint-server",
        help="check a configured server for syncing (and create the LDAP sync user)",
        description="Check that an LDAP source server is ready for syncing: the sync user binds, "
        "each base DN and the change feed are readable, and the feed is retained. With admin "
        "credentials and --create-sync-user, create the sync user with read-only rights first. "
        "For a SCIM server: /ServiceProviderConfig, /ResourceTypes and /Schemas answer and every "
        "attribute the mapping writes exists and is writable. "
        "Prints a checklist; exits 1 when a check fails.",
    )
    cmd.add_argument(
        "--server-name", required=True, metavar="NAME", help="an external server of the config"
    )
    cmd.add_argument(
        "--admin-bind-dn", metavar="DN", help="an administrator that may add entries and rights"
    )
    cmd.add_argument(
        "--admin-password-file", type=Path, metavar="FILE", help="file holding the admin password"
    )
    cmd.add_argument(
        "--create-sync-user",
        action="store_true",
        help="create the configured bind-dn with read-only rights",
    )
    cmd.set_defaults(func=_prepare_endpoint_server)


def _prepare_endpoint_server(args: argparse.Namespace) -> int:
    from toolkit.config import load_config

    config = load_config(config_path(args))
    admin_password = None
    if args.admin_password_file:  # read as any secret file: an empty one is refused
        from toolkit.config.secrets import SecretRef

        ref = SecretRef("file", str(args.admin_password_file), name="--admin-password-file")
        admin_password = ref.resolve()
    if args.create_sync_user and not (args.admin_bind_dn and admin_password is not None):
        print(
            "scimsync: error: --create-sync-user needs --admin-bind-dn and --admin-password-file",
            file=sys.stderr,
        )
        return 2
    from toolkit.sync.checks import prepare_endpoint

    results = prepare_endpoint(
        config,
        args.server_name,
        admin_dn=args.admin_bind_dn,
        admin_password=admin_password,
        create_sync_user=args.create_sync_user,
    )
    for result in results:
        print(f"{'PASS' if result.ok else 'FAIL'}  {result.name}: {result.detail}")
        if not result.ok and result.fix:
            print(f"      fix: {result.fix}")
    failed = sum(1 for r in results if not r.ok)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


# --- dry-run, resync, realtime-sync, status ---------------------------------------------------


def _add_sync(sub: argparse._SubParsersAction) -> None:
    dry = sub.add_parser("dry-run", help="what a resync would do, object by object; writes nothing")
    _common_run_args(dry)
    dry.add_argument(
        "--output", type=Path, metavar="FILE", help="write the plan: .json, .csv, .parquet or .html"
    )
    dry.set_defaults(func=_dry_run)
    resync = sub.add_parser(
        "resync", help="apply the plan: create, modify and delete on the SCIM target"
    )
    _common_run_args(resync)
    resync.add_argument("--dry-run", action="store_true", help="the same as `scimsync dry-run`")
    resync.add_argument(
        "--output", type=Path, metavar="FILE", help="with --dry-run: write the plan"
    )
    resync.add_argument(
        "--source-input-file", type=Path, metavar="FILE", help="only these DNs (one per line)"
    )
    resync.add_argument(
        "--dn",
        action="append",
        dest="dns",
        metavar="DN",
        help="only this entry, now, showing each step (repeatable)",
    )
    resync.add_argument(
        "--failed-dns-file", type=Path, metavar="FILE", help="where the DNs that failed go"
    )
    resync.add_argument(
        "--rate-per-second", type=float, metavar="N", help="at most N requests per second"
    )
    resync.add_argument("--max-deletes", metavar="N|P%%", help="override the pipe's max-deletes")
    resync.add_argument(
        "--allow-deletes", action="store_true", help="apply even past the delete guards"
    )
    resync.add_argument(
        "--allow-recreate",
        action="store_true",
        help="apply even though every resource this pipe linked is gone from the server",
    )
    resync.add_argument(
        "--plan", type=Path, metavar="FILE", help="apply a saved dry-run plan (.json)"
    )
    resync.add_argument(
        "--workers", type=int, metavar="N", help="concurrent requests (default num-worker-threads)"
    )
    resync.set_defaults(func=_resync)


def _add_realtime(sub: argparse._SubParsersAction) -> None:
    realtime = sub.add_parser(
        "realtime-sync", help="follow the change feed: start, stop, set-startpoint"
    )
    verbs = realtime.add_subparsers(dest="realtime_command", metavar="VERB", required=True)
    point = verbs.add_parser("set-startpoint", help="where realtime sync starts reading the feed")
    point.add_argument("--pipe-name", metavar="P")
    where = point.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--beginning-of-changelog", action="store_true", help="replay every retained change"
    )
    where.add_argument(
        "--end-of-changelog", action="store_true", help="ignore every change made up to now"
    )
    where.add_argument(
        "--change-number", type=int, metavar="N", help="start at change number N (changelog)"
    )
    where.add_argument(
        "--startpoint-rewind", metavar="DURATION", help="the changes of the last DURATION (2h30m)"
    )
    where.add_argument(
        "--startpoint-time", metavar="RFC3339", help="changes made at or after this time"
    )
    point.set_defaults(func=_realtime_set_startpoint)
    start = verbs.add_parser("start", help="start realtime sync (detached unless --foreground)")
    start.add_argument("--pipe-name", metavar="P")
    start.add_argument("--foreground", action="store_true", help="run in this process")
    start.add_argument("--until-idle", action="store_true", help="exit 0 once the feed is drained")
    start.add_argument("--max-changes", type=int, metavar="N", help="stop after N changes")
    start.add_argument(
        "--allow-deletes",
        action="store_true",
        help="apply deletes past the delete guard, also those it held back before",
    )
    start.set_defaults(func=_realtime_start)
    stop = verbs.add_parser("stop", help="stop after the in-flight changes finish")
    stop.add_argument("--pipe-name", metavar="P")
    stop.set_defaults(func=_realtime_stop)
    status = sub.add_parser("status", help="started or not, cursor, lag, rates, counters, failures")
    status.add_argument("--pipe-name", metavar="P")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=_status)


def _realtime_set_startpoint(args: argparse.Namespace) -> int:
    from toolkit.ldap.changes import describe_cursor
    from toolkit.sync import startpoint

    if args.beginning_of_changelog:
        how, value = "beginning", None
    elif args.end_of_changelog:
        how, value = "end", None
    elif args.change_number is not None:
        how, value = "change-number", args.change_number
    elif args.startpoint_rewind:
        how, value = "rewind", args.startpoint_rewind
    else:
        how, value = "time", args.startpoint_time
    config = _load(args)
    cursor = startpoint.set_startpoint(config, args.pipe_name, how, value)
    print(
        f"start point of pipe {config.pipe(args.pipe_name).name} set ({how}): "
        + describe_cursor(cursor)
    )
    return 0


def _realtime_start(args: argparse.Namespace) -> int:
    from toolkit.sync import realtime

    config = _load(args)
    if not args.foreground:
        if args.until_idle or args.max_changes:
            raise FatalError("--until-idle and --max-changes need --foreground")
        pid = realtime.start_detached(config, args.pipe_name, args.allow_deletes)
        print(f"realtime sync of pipe {config.pipe(args.pipe_name).name} started (pid {pid})")
        return 0
    from toolkit.terminal import terminal_bars

    stats = realtime.run_foreground(
        config,
        args.pipe_name,
        args.until_idle,
        args.max_changes,
        args.allow_deletes,
        on_progress=terminal_bars(),
    )
    done = ", ".join(f"{k} {v}" for k, v in sorted(stats.completed.items())) or "no changes"
    print(f"realtime sync stopped after {stats.changes} changes ({done}); {stats.detector}")
    if stats.held_deletes:
        print(
            f"scimsync: {stats.held_deletes} deletes held back by the delete guard (see "
            "`scimsync status`): check the directory, then `scimsync realtime-sync start "
            "--allow-deletes` to apply them",
            file=sys.stderr,
        )
    if stats.failed:  # as resync: a scheduler (or papermill) sees that changes failed
        print(
            f"{stats.failed} entries failed (see `scimsync status`); they are retried in the "
            "background, or by a resync",
            file=sys.stderr,
        )
    return 1 if stats.held_deletes or stats.failed else 0


def _realtime_stop(args: argparse.Namespace) -> int:
    from toolkit.sync import realtime

    config = _load(args)
    pid = realtime.stop(config, args.pipe_name)
    name = config.pipe(args.pipe_name).name
    print(
        f"realtime sync of pipe {name} stopped (pid {pid})"
        if pid
        else f"pipe {name} was not running"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from toolkit.sync import realtime

    status = realtime.status(_load(args), args.pipe_name)
    if args.json:
        print_json(status.as_json())
        return 0
    print(f"pipe {status.pipe}:")
    for name, value in status.facts():
        print(f"  {name:<13} {value}")
    for failure in status.failures[:10]:
        print(f"    {failure.dn}: {failure.error.splitlines()[0] if failure.error else ''}")
    return 0


def _common_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipe-name", metavar="P", help="the sync pipe (default: the only one)")
    parser.add_argument(
        "--source-search-filter", metavar="F", help="only source entries matching this LDAP filter"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--full-compare",
        action="store_true",
        help="map and compare every object, also those an earlier run found unchanged whose "
        "entry, target version and references have not changed since",
    )
    parser.add_argument(
        "--full-read",
        action="store_true",
        help="read every LDAP entry and SCIM resource, not only what changed since the last "
        "read (a full read also happens at least every full-read-interval of the pipe)",
    )


def _run_options(args: argparse.Namespace):
    from toolkit.sync.batch import RunOptions
    from toolkit.terminal import terminal_bars

    return RunOptions(  # checks the options (errors name them) before any server is asked
        pipe_name=args.pipe_name,
        source_search_filter=args.source_search_filter,
        source_input_file=getattr(args, "source_input_file", None),
        dns=getattr(args, "dns", None),
        max_deletes=getattr(args, "max_deletes", None),
        allow_deletes=getattr(args, "allow_deletes", False),
        allow_recreate=getattr(args, "allow_recreate", False),
        rate_per_second=getattr(args, "rate_per_second", None),
        failed_dns_file=getattr(args, "failed_dns_file", None),
        workers=getattr(args, "workers", None),
        full_compare=args.full_compare,
        full_read=args.full_read,
        on_progress=terminal_bars(),
    )


def _load(args: argparse.Namespace):
    from toolkit.config import load_config

    return load_config(config_path(args))


def _dry_run(args: argparse.Namespace) -> int:
    from toolkit.sync.batch import dry_run

    plan = dry_run(_load(args), _run_options(args))
    if args.output:
        plan.save(args.output)
    if args.json:
        print_json(plan.as_summary_json())
        return 0
    print(
        f"dry run of pipe {plan.pipe}: {plan.source_count} source entries, {plan.managed_count} linked resources"
    )
    _print_reads(plan)
    print(plan.summary().to_string())
    if plan.quick_checked:
        print(
            f"{plan.quick_checked} unchanged objects were not compared again: their entry, target "
            "version and references are as when an earlier run compared them (--full-compare)"
        )
    for finding in plan.guard.findings:
        unless = f" (unless {finding.override})" if finding.override else ""
        print(f"resync would refuse: {finding.text}{unless}")
    for warning in plan.guard.warnings:
        print(f"WARNING: {warning}")
    _print_duplicates(plan)
    invalid = [row for row in plan.rows if row.problems]
    if invalid:
        print(f"resync would not send {len(invalid)} objects: the server's schema refuses them")
        for row in invalid[:20]:
            print(f"  {row.dn}: {'; '.join(row.problems)}")
    unmapped = [row for row in plan.rows if (row.reason or "").startswith("cannot map: ")]
    if unmapped:
        print(f"resync would not send {len(unmapped)} objects: the mapping refuses a value")
        for row in unmapped[:20]:
            print(f"  {row.reason.removeprefix('cannot map: ')}")
    if args.output:
        print(f"plan written to {args.output}")
    return 0


def _print_reads(plan: Any) -> None:
    from toolkit.sync.reads import read_lines

    for line in read_lines(plan.reads):
        print(line)


def _print_duplicates(plan: Any) -> None:
    duplicates = plan.duplicates()
    if duplicates:
        print(
            f"{len(duplicates)} SCIM resources duplicate ones this pipe manages; "
            "a run leaves them (remove or keep each by hand):"
        )
        for row in duplicates[:20]:
            print(f"  {row.resource_type} {row.scim_id}: {row.reason}")


def _resync(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    if args.dns:
        return _resync_dns(args)
    from toolkit.sync.batch import resync

    result = resync(_load(args), _run_options(args), saved_plan=args.plan)
    if args.json:
        print_json(result.as_json())
    else:
        print(f"resync of pipe {result.plan.pipe}:")
        if result.start_point:
            print(result.start_point)
        _print_reads(result.plan)
        print(result.plan.summary().to_string())
        _print_duplicates(result.plan)
        print(f"applied {result.applied.applied}, failed {result.applied.failed}")
        for failure in result.applied.failures[:20]:
            print(f"  failed {failure.row.dn}: {failure.error.splitlines()[0]}")
    return 1 if result.applied.failed else 0


def _resync_dns(args: argparse.Namespace) -> int:
    """resync --dn: provision those entries on demand and print each one's steps."""
    from toolkit.sync.ondemand import provision

    if args.plan or args.source_input_file:
        raise FatalError("--dn: not with --plan or --source-input-file (name the DNs with --dn)")
    options = _run_options(args)
    done = provision(_load(args), options.dns or [], options)
    assert done.resync is not None
    if args.json:
        out = done.resync.as_json()
        out["objects"] = [
            {
                "dn": r.dn,
                "situation": r.situation,
                "resource_type": r.resource_type,
                "scim_id": r.scim_id,
                "ok": r.ok,
                "steps": [{"step": s.name, "ok": s.ok, "detail": s.detail} for s in r.steps],
            }
            for r in done.reports
        ]
        print_json(out)
        return 1 if done.failed else 0
    print(f"provision on demand, pipe {done.plan.pipe}:")
    if done.resync.start_point:
        print(done.resync.start_point)
    for report in done.reports:
        print(f"{report.dn}: {'done' if report.ok else 'FAILED'}")
        for step in report.steps:
            mark = {True: "ok", False: "FAILED", None: "-"}[step.ok]
            print(f"  {step.name:16} {mark:6} {step.detail.splitlines()[0] if step.detail else ''}")
    print(f"applied {done.resync.applied.applied}, failed {done.resync.applied.failed}")
    return 1 if done.failed or done.resync.applied.failed else 0


# --- notebook --------------------------------------------------------------------------------


def _add_notebook(sub: argparse._SubParsersAction) -> None:
    notebook = sub.add_parser(
        "notebook", help="the Jupyter notebooks: list them, run one headless with papermill"
    )
    verbs = notebook.add_subparsers(dest="notebook_command", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="the notebooks and their parameters")
    listing.set_defaults(func=_notebook_list)
    run = verbs.add_parser(
        "run",
        help="run a notebook headless (papermill); exits 1 when a cell fails",
        description="Run a notebook with papermill. --config (or $SCIMSYNC_CONFIG) becomes its "
        "config_path unless -p config_path is given; an empty config_path starts a lab.",
    )
    run.add_argument(
        "name", metavar="NAME", help="01-setup, 02-explore, 03-dry-run, 04-sync (or a path)"
    )
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="a parameter, checked against the notebook's declared type (booleans: true/false/yes/no/1/0)",
    )
    run.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="the executed notebook (default: scimsync-runs/NAME-TIME/NAME.ipynb, with its outputs)",
    )
    run.set_defaults(func=_notebook_run)


def _notebook_list(args: argparse.Namespace) -> int:
    from toolkit.notebooks import NOTEBOOKS, declared_parameters, notebook_path

    for name, text in NOTEBOOKS.items():
        print(f"{name:11} {text}")
        print(f"{'':11} {notebook_path(name)}")
        shown = ", ".join(
            f"{p.name}: {p.kind} = {p.default}" for p in declared_parameters(name).values()
        )
        print(f"{'':11} parameters: {shown}")
    return 0


def _notebook_run(args: argparse.Namespace) -> int:
    from toolkit.notebooks import declared_parameters, new_run_folder, notebook_path, run_notebook

    source = notebook_path(args.name)
    declared = declared_parameters(source)
    # values stay text: run_notebook types them by the notebook's declared kinds
    parameters = dict(args.parameter)
    given = args.config or os.environ.get("SCIMSYNC_CONFIG")
    if given and "config_path" not in parameters and "config_path" in declared:
        parameters["config_path"] = str(config_path(args))
    output = args.output or new_run_folder(source.stem) / source.name
    if "run_dir" in declared and "run_dir" not in parameters:
        parameters["run_dir"] = str(output.parent)  # the notebook's outputs go beside it
    run_notebook(source, output, parameters, progress=sys.stderr.isatty())
    print(f"ran {source.name}; executed notebook written to {output}")
    return 0


# --- demo ------------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="the main job on the embedded lab through the notebooks, start to finish (make demo)",
    )
    demo.add_argument("--users", type=int, default=2000)
    demo.add_argument("--groups", type=int, default=50)
    demo.add_argument(
        "--dir",
        type=Path,
        default=Path("scimsync-demo"),
        metavar="FOLDER",
        help="where the executed notebooks and the report are kept (default ./scimsync-demo)",
    )
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from toolkit import demo

    demo.run(users=args.users, groups=args.groups, folder=args.dir)
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
    _add_realtime(sub)
    _add_demo(sub)
    _add_notebook(sub)
    return parser


def _fatal_exit_code(exc: FatalError) -> int:
    """2 for usage and configuration errors; an error class that is a failed check (the
    delete guards' refusal) says 1 with an `exit_code` attribute."""
    code = getattr(exc, "exit_code", None)
    return code if isinstance(code, int) else 2


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
        return _fatal_exit_code(exc)
    except ScimsyncError as exc:
        print(f"scimsync: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scimsync: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `scimsync ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
