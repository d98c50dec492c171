"""``cms-event``: report events from files, outside notebooks.

    cms-event send FILE [mapping] [target] [--dry-run] [--failed-out PATH]
    cms-event regions
    cms-event emulator [--port N] ...

``FILE`` is CSV, JSON lines (``.jsonl``/``.ndjson``) or Parquet (with pyarrow
installed); ``-`` reads CSV from standard input. The mapping and target options
mean what they mean for :func:`cms_magic.send` and the ``%%cms_event`` magic.
Credentials come from the environment or a CLI profile (``--profile``), never
from the command line.

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
from cms_magic.errors import CmsError

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
        "(--profile).",
    )
    parser.add_argument("--version", action="version", version=f"cms_magic {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    send = commands.add_parser("send", help="send a file's rows as events")
    send.add_argument("file", help="CSV, JSON lines (.jsonl) or Parquet file; '-' for CSV on stdin")
    mapping = send.add_argument_group("mapping (rows -> events)")
    name = mapping.add_mutually_exclusive_group()
    name.add_argument("--name", help="one event name for every row")
    name.add_argument("--name-col", help="column holding the event name (default: 'name')")
    content = mapping.add_mutually_exclusive_group()
    content.add_argument("--content-col", help="column holding the content")
    content.add_argument(
        "--content-template", help="str.format template over the row, e.g. '{host}: {msg}'"
    )
    group = mapping.add_mutually_exclusive_group()
    group.add_argument("--group-id", type=int, help="one application group id for every row")
    group.add_argument("--group-id-col", help="column holding the group id")
    mapping.add_argument("--time-col", help="column holding the event time")
    mapping.add_argument("--tz", help="time zone for naive times (default: this machine's)")
    target = send.add_argument_group("target")
    where = target.add_mutually_exclusive_group(required=True)
    where.add_argument("--region", help="region id, e.g. cn-hangzhou (see `cms-event regions`)")
    where.add_argument(
        "--endpoint",
        help="endpoint URL, or 'local' for an emulator started in this process "
        "(for trying things out: its events are discarded at exit)",
    )
    target.add_argument(
        "--internal", action="store_true", help="use the region's internal endpoint"
    )
    target.add_argument("--profile", help="credentials profile (~/.aliyun/config.json)")
    behaviour = send.add_argument_group("behaviour")
    behaviour.add_argument("--dry-run", action="store_true", help="everything but the POST")
    behaviour.add_argument("--failed-out", type=Path, help="write rows not accepted to this file")
    behaviour.add_argument("--qps", type=float, default=20.0, help="requests per second (20)")
    behaviour.add_argument("--concurrency", type=int, default=4, help="requests in flight (4)")
    behaviour.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    behaviour.add_argument(
        "--retry-ambiguous",
        action="store_true",
        help="also retry requests that timed out after being sent (may duplicate events)",
    )
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
        raise CmsError(f"{path}: no such file")
    suffix = file.suffix.lower()
    if suffix in _JSON_LINES:
        return pd.read_json(file, lines=True, dtype=False)
    if suffix in {".parquet", ".pq"}:
        try:
            return pd.read_parquet(file)
        except ImportError as exc:
            raise CmsError(
                f"{path}: reading Parquet needs pyarrow (pip install pyarrow): {exc}"
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
    from cms_magic import emulator

    frame = read_table(args.file)
    credentials = None
    endpoint = args.endpoint or args.region
    if args.endpoint == "local":
        local = emulator.embedded()
        endpoint, credentials = local.url, local.credentials
        print(
            f"sending to a local emulator at {local.url} (in this process; nothing leaves "
            "this machine, and its events are discarded at exit)",
            file=sys.stderr,
        )
    mapping = {
        "name": args.name,
        "name_col": args.name_col,
        "content_col": args.content_col,
        "content_template": args.content_template,
        "group_id": args.group_id,
        "group_id_col": args.group_id_col,
        "time_col": args.time_col,
        "tz": args.tz,
    }
    result = cms_magic.send(
        frame,
        endpoint=endpoint,
        internal=args.internal,
        credentials=credentials,
        profile=args.profile,
        dry_run=args.dry_run,
        progress=not args.quiet,
        qps=args.qps,
        concurrency=args.concurrency,
        timeout=args.timeout,
        retry_ambiguous=args.retry_ambiguous,
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
    except CmsError as exc:
        print(f"cms-event: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `cms-event regions | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        from cms_magic.sending.client import last_result

        partial = last_result()
        if partial is not None:
            print(f"interrupted: {partial.summary()}", file=sys.stderr)
        return 130
