"""``cms-event``: report events from files, outside notebooks.

    cms-event send FILE [mapping] [target] [--dry-run] [--failed-out PATH]
    cms-event events [filters] [target] [--format csv|jsonl] [--output FILE]
    cms-event count [filters] [target] [--by-name]
    cms-event histogram [filters] [target] [--level LEVEL]
    cms-event regions
    cms-event emulator [--port N] ...

``FILE`` is CSV, JSON lines (``.jsonl``/``.ndjson``) or Parquet (with pyarrow
installed); ``-`` reads CSV from standard input. The mapping, target and
sending options come from the one options table (:mod:`cms_magic.ui.options`)
and mean what they mean for :func:`cms_magic.send` and the ``%%cms_event``
magic; the target is :func:`cms_magic.targets.resolve_target`'s (``--endpoint
local`` in any case, a region id, ``public``, a URL; with none given, the
environment, then the local emulator unless cloud credentials are configured).
Credentials come from the environment or a CLI profile (``--profile``), never
from the command line. Errors are the core's, worded with the flags
(:func:`cms_magic.ui.options.flag_subject`; a credential field as its
environment variable or the profile), one line on stderr, before anything is
sent.

``--failed-out PATH`` receives every row not accepted, with its ``status`` and
``reason`` (:mod:`cms_magic.ui.cli.tables`), also when the send is interrupted
(SIGINT, SIGTERM: :mod:`cms_magic.ui.cli.send`); sent again with the same
options, it resumes the send. ``--dry-run`` prints the first request as it
would go out (Authorization masked).

Exit status: 0 every event accepted (or, with ``--dry-run``, every event valid);
1 some events were not accepted (see the summary and ``--failed-out``);
2 a usage or configuration error (an unreadable file too); 130 interrupted by
SIGINT (Ctrl-C), 143 by SIGTERM.

``events``, ``count`` and ``histogram`` read back what CloudMonitor holds
(:mod:`cms_magic.ui.cli.read`): 0 done, 2 a usage or configuration error, 1 the
service refused or failed (one line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cms_magic._version import __version__
from cms_magic.errors import ConfigError, CredentialsError, InputError
from cms_magic.ui.cli.read import add_read_commands, run_read
from cms_magic.ui.cli.send import cli_subject, err, out, run_send
from cms_magic.ui.cli.tables import read_table, write_table
from cms_magic.ui.options import (
    JOURNAL_OPTIONS,
    MAPPING_OPTIONS,
    READ_COMMANDS,
    SEND_OPTIONS,
    TARGET_OPTIONS,
    add_arguments,
)

__all__ = ["main", "read_table", "write_table"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cms-event",
        description="Report Alibaba Cloud CloudMonitor custom events from files.",
        epilog="Credentials: ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET "
        "(and ALIBABA_CLOUD_SECURITY_TOKEN for STS), or a profile of ~/.aliyun/config.json "
        "(--profile). Without --region or --endpoint (or their environment variables), "
        "events go to a local emulator in this process, unless cloud credentials are "
        "configured.",
    )
    parser.add_argument("--version", action="version", version=f"cms_magic {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    send = commands.add_parser("send", help="send a file's rows as events")
    send.add_argument("file", help="CSV, JSON lines (.jsonl) or Parquet file; '-' for CSV on stdin")
    add_arguments(
        send.add_argument_group("mapping (rows -> events)"), (o.name for o in MAPPING_OPTIONS)
    )
    add_arguments(send.add_argument_group("target"), (o.name for o in TARGET_OPTIONS))
    add_arguments(send.add_argument_group("sending"), (o.name for o in SEND_OPTIONS))
    behaviour = send.add_argument_group("behaviour")
    behaviour.add_argument(
        "--dry-run", action="store_true", help="everything but the POST; shows the first request"
    )
    behaviour.add_argument(
        "--failed-out",
        type=Path,
        metavar="FILE",
        help="write every row not accepted, with its status and reason, to FILE "
        "(also when interrupted; send FILE again to resume)",
    )
    behaviour.add_argument("--quiet", action="store_true", help="no progress bar")
    journaling = send.add_argument_group(
        "journal (a send that survives a crash: run the same command again to resume)"
    )
    add_arguments(journaling, (o.name for o in JOURNAL_OPTIONS))
    journaling.add_argument(
        "--no-journal",
        action="store_true",
        help="do not journal (by default a send with --failed-out FILE journals to FILE.journal)",
    )
    journal = commands.add_parser(
        "journal",
        help="what a send's journal knows: rows accepted, in flight, not sent",
        description="Show the state of a journal written by `cms-event send --journal` (or "
        "send(..., journal=)): a summary, and with --output every row's status and reason.",
    )
    journal.add_argument("path", type=Path, help="the journal file")
    journal.add_argument(
        "--output", type=Path, metavar="FILE", help="write every row's state to FILE (CSV)"
    )

    commands.add_parser("regions", help="list the regions and their endpoints")
    whoami = commands.add_parser(
        "whoami",
        help="the target and the credentials a send would use: source, masked key id, expiry",
        description="Say where a send would go and which credentials it would sign with "
        "(the source, with its profile or role; the AccessKey id masked; when temporary "
        "credentials expire). A role, OIDC, credentials-URI or ECS source is asked for its "
        "current credentials. Never prints a secret or a token.",
    )
    add_arguments(whoami.add_argument_group("target"), (o.name for o in TARGET_OPTIONS))
    add_read_commands(commands)
    emulator = commands.add_parser(
        "emulator",
        help="run the local emulator (same as python -m cms_magic.emulator)",
        add_help=False,
    )
    emulator.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _regions() -> int:
    from cms_magic.regions import public_endpoint, regions

    rows = [(r.id, r.name, r.internal_endpoint) for r in regions()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    out(f"public endpoint: {public_endpoint()}\n")
    out(f"{'id':<{widths[0]}}  {'name':<{widths[1]}}  internal endpoint")
    for region_id, name, internal in rows:
        out(f"{region_id:<{widths[0]}}  {name:<{widths[1]}}  {internal}")
    return 0


def _journal(args: argparse.Namespace) -> int:
    from cms_magic.sending.journal import read_journal

    if not args.path.is_file():
        err(f"cms-event: error: {str(args.path)!r}: no such journal file")
        return 2
    report = read_journal(args.path)
    out(report.summary())
    if args.output is not None:
        report.frame().to_csv(args.output, index=False)
        err(f"cms-event: every row's state written to {args.output}")
    return 0


def _whoami(args: argparse.Namespace) -> int:
    from cms_magic.identity import describe_credentials
    from cms_magic.targets import resolve_target

    target = resolve_target(
        args.endpoint,
        region=args.region,
        internal=args.internal,
        credentials_given=args.profile is not None,
    )
    out(f"target: {target.label} (from {target.source})")
    out(f"  {target.where}")
    report = describe_credentials(target.credentials(profile=args.profile))
    out(f"credentials: {report.text(demo=target.is_local)}")
    return 1 if report.error is not None else 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["emulator"]:  # its options are the emulator's own
        from cms_magic.emulator import main as emulator_main

        return emulator_main(arguments[1:])
    args = _parser().parse_args(arguments)
    try:
        if args.command == "regions":
            return _regions()
        if args.command == "whoami":
            return _whoami(args)
        if args.command == "journal":
            return _journal(args)
        if args.command in READ_COMMANDS:
            return run_read(args)
        return run_send(args)
    except (ConfigError, CredentialsError, InputError) as exc:
        err(f"cms-event: error: {exc.describe(cli_subject(getattr(args, 'profile', None)))}")
        return 2
    except BrokenPipeError:  # e.g. `cms-event regions | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # before the send started (reading the file, say)
        err("cms-event: interrupted before anything was sent")
        return 130
