"""``cms-event``: report events from files, outside notebooks.

    cms-event send FILE [mapping] [target] [--dry-run] [--failed-out PATH]
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
(:func:`cms_magic.ui.options.flag_subject`).

Exit status: 0 every event accepted (or, with ``--dry-run``, every event valid);
1 some events were not accepted (see the summary and ``--failed-out``);
2 a usage or configuration error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cms_magic._version import __version__
from cms_magic.errors import ConfigError, CredentialsError, InputError
from cms_magic.ui.options import (
    MAPPING_OPTIONS,
    SEND_OPTIONS,
    TARGET_OPTIONS,
    add_arguments,
    flag_subject,
)
from cms_magic.ui.render import TqdmProgress

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["main"]

_JSON_LINES = {".jsonl", ".ndjson", ".json"}


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
    behaviour.add_argument("--dry-run", action="store_true", help="everything but the POST")
    behaviour.add_argument("--failed-out", type=Path, help="write rows not accepted to this file")
    behaviour.add_argument("--quiet", action="store_true", help="no progress bar")

    commands.add_parser("regions", help="list the regions and their endpoints")
    emulator = commands.add_parser(
        "emulator",
        help="run the local emulator (same as python -m cms_magic.emulator)",
        add_help=False,
    )
    emulator.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def read_table(path: str) -> pd.DataFrame:
    """Read CSV, JSON lines or Parquet by the file's extension."""
    import pandas as pd

    if path == "-":
        return pd.read_csv(sys.stdin)
    file = Path(path)
    if not file.exists():
        raise InputError("no such file", option="file", value=path)
    suffix = file.suffix.lower()
    if suffix in _JSON_LINES:
        return pd.read_json(file, lines=True, dtype=False)
    if suffix in {".parquet", ".pq"}:
        try:
            return pd.read_parquet(file)
        except ImportError as exc:
            raise InputError(
                f"reading Parquet needs pyarrow (pip install pyarrow): {exc}",
                option="file",
                value=path,
            ) from None
    return pd.read_csv(file)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write rows in the format the extension says (CSV by default)."""
    suffix = path.suffix.lower()
    if suffix in _JSON_LINES:
        frame.to_json(path, orient="records", lines=True, force_ascii=False, date_format="iso")
    elif suffix in {".parquet", ".pq"}:
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)


def _send(args: argparse.Namespace) -> int:
    import cms_magic
    from cms_magic.targets import resolve_target

    target = resolve_target(
        args.endpoint,
        region=args.region,
        internal=args.internal,
        credentials_given=args.profile is not None,
    )
    credentials = target.credentials(profile=args.profile)
    frame = read_table(args.file)
    rows = f"{len(frame):,} row{'' if len(frame) == 1 else 's'}"
    print(f"cms-event: sending {rows} to {target.label}: {target.where}", file=sys.stderr)
    sending = {
        o.name: o.default if getattr(args, o.name) is None else getattr(args, o.name)
        for o in SEND_OPTIONS
    }
    retry = cms_magic.RetryPolicy(max_attempts=sending.pop("max_retries") + 1)
    mapping = {o.name: getattr(args, o.name) for o in MAPPING_OPTIONS}
    result = cms_magic.send(
        frame,
        endpoint=target,
        credentials=credentials,
        dry_run=args.dry_run,
        progress=False if args.quiet else TqdmProgress(desc="cms-event"),
        retry=retry,
        **sending,
        **mapping,
    )
    print(result.summary())
    failed = result.failed_mask()
    if failed.any():
        reasons = result.events.loc[failed, "reason"].value_counts().head(5)
        for reason, count in reasons.items():
            print(f"  {count:,} x {reason}", file=sys.stderr)
    if args.failed_out is not None and failed.any():
        write_table(result.failed(), args.failed_out)
        print(f"{int(failed.sum()):,} rows not accepted written to {args.failed_out}")
    if args.dry_run:
        return 0 if result.counts()["rejected"] == 0 else 1
    return 0 if result.ok else 1


def _regions() -> int:
    from cms_magic.regions import public_endpoint, regions

    rows = [(r.id, r.name, r.internal_endpoint) for r in regions()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    print(f"public endpoint: {public_endpoint()}\n")
    print(f"{'id':<{widths[0]}}  {'name':<{widths[1]}}  internal endpoint")
    for region_id, name, internal in rows:
        print(f"{region_id:<{widths[0]}}  {name:<{widths[1]}}  {internal}")
    return 0


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
        return _send(args)
    except (ConfigError, CredentialsError, InputError) as exc:
        print(f"cms-event: error: {exc.describe(flag_subject)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `cms-event regions | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        from cms_magic import last_result

        partial = last_result()
        if partial is not None:
            print(f"interrupted: {partial.summary()}", file=sys.stderr)
        return 130
