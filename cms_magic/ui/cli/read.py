"""``cms-event events|count|histogram``: read back what CloudMonitor holds (issue 15).

::

    cms-event events [filters] [target] [--format csv|jsonl] [--output FILE] [--quiet]
    cms-event count [filters] [target] [--by-name]
    cms-event histogram [filters] [target] [--level LEVEL]

The filters are the one options table's (:data:`cms_magic.ui.options.READ_OPTIONS`), the
target options a send's (without ``--internal``: the OpenAPI has no internal endpoint),
chosen by :func:`cms_magic.targets.resolve_target` and read at the region's OpenAPI
endpoint. Each command calls one core function and writes:

- ``events``: CSV (the default) or JSON lines, to stdout or ``--output FILE``, in UTF-8
  whatever the locale (CJK content safe); times are ISO 8601 with their zone
  (``2026-12-01T09:00:00.123000+00:00``). A closed pipe (``| head``) ends it quietly.
- ``count``: the number on stdout (``--by-name``: ``name  count`` per event name).
- ``histogram``: a text table per bucket, start, end, count and a bar of ``#``.

A summary line (the target, how many, the window) and a long read's progress go to
stderr (``--quiet``: none). Exit status: 0 done; 2 a usage or configuration error (the
option named as its flag, one line); 1 the service refused or failed (one line, with
the code and request id; a missing RAM permission names the action), no traceback.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cms_magic.progress import plural
from cms_magic.ui.cli.send import cli_subject, err
from cms_magic.ui.options import READ_COMMANDS, READ_TARGET_OPTIONS, add_arguments, read_keywords

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "READ_COMMAND_HELP", "add_read_commands", "frame_bytes", "run_read"]

#: ``--format`` values of ``cms-event events``.
FORMATS: Final = ("csv", "jsonl")
_JSONL_SUFFIXES: Final = (".jsonl", ".ndjson")

READ_COMMAND_HELP: Final = {
    "events": "read back the events CloudMonitor holds, as CSV or JSON lines",
    "count": "how many events match (per event name with --by-name)",
    "histogram": "events per time bucket, as a text table with bars",
}


def add_read_commands(commands: Any) -> None:
    """Add ``events``, ``count`` and ``histogram`` to the ``cms-event`` subparsers."""
    for command, names in READ_COMMANDS.items():
        parser: argparse.ArgumentParser = commands.add_parser(
            command, help=READ_COMMAND_HELP[command], description=READ_COMMAND_HELP[command]
        )
        add_arguments(parser.add_argument_group("filters"), names, read=True)
        add_arguments(parser.add_argument_group("target"), (o.name for o in READ_TARGET_OPTIONS))
        output = parser.add_argument_group("output")
        if command == "events":
            output.add_argument(
                "--format",
                choices=FORMATS,
                default=None,
                help="csv or jsonl (default: from --output's suffix, else csv)",
            )
            output.add_argument(
                "--output", type=Path, metavar="FILE", help="write to FILE (default: stdout)"
            )
        output.add_argument(
            "--quiet", action="store_true", help="no summary line and no progress on stderr"
        )


def _iso(value: object) -> object:
    isoformat = getattr(value, "isoformat", None)
    if value is None or not callable(isoformat) or str(value) == "NaT":
        return None
    return isoformat()


def _with_iso_times(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every tz-aware time column as ISO 8601 texts (zone included)."""
    import pandas as pd

    copy: pd.DataFrame = frame.copy()
    for column in copy.columns:
        if isinstance(copy[column].dtype, pd.DatetimeTZDtype):
            copy[column] = copy[column].map(_iso).astype(object)
    return copy


def frame_bytes(frame: pd.DataFrame, form: str) -> bytes:
    """The events frame as CSV (a header line) or JSON lines, UTF-8, times in ISO 8601."""
    shown = _with_iso_times(frame)
    if form == "jsonl":
        if shown.empty:
            return b""
        text: str = shown.to_json(orient="records", lines=True, force_ascii=False)
        return (text if text.endswith("\n") else text + "\n").encode("utf-8")
    buffer = io.StringIO()
    shown.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    output: Path | None = args.output
    if output is not None and output.suffix.lower() in _JSONL_SUFFIXES:
        return "jsonl"
    return "csv"


def _emit(data: bytes) -> None:
    """Bytes on stdout (UTF-8 whatever the locale); a replaced stdout without a buffer gets
    the text."""
    buffer = getattr(sys.stdout, "buffer", None)
    sys.stdout.flush()
    if buffer is None:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    buffer.write(data)
    buffer.flush()


def _silence_stdout() -> None:
    """After a closed pipe: stdout points at /dev/null, so that the interpreter's last flush
    at exit does not complain."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _label(target: Any) -> str:
    from cms_magic.ui.render import read_label

    return read_label(target)


def run_read(args: argparse.Namespace) -> int:
    """Run one read command; returns the exit status (2 for the caller's mistakes is the
    caller's: :func:`cms_magic.ui.cli.main` catches ``ConfigError`` and its kin)."""
    from cms_magic import readback
    from cms_magic.openapi.errors import OpenApiError
    from cms_magic.targets import resolve_target
    from cms_magic.ui.render import ReadProgressLine, read_summary

    command: str = args.command
    keywords = read_keywords(command, args)
    target = resolve_target(
        args.endpoint, region=args.region, credentials_given=args.profile is not None
    )
    url = readback.openapi_url(target)
    credentials = target.credentials(profile=args.profile)
    where: dict[str, Any] = {"endpoint": url, "credentials": credentials}
    label = _label(target)
    quiet: bool = args.quiet
    progress = None if quiet or command != "events" else ReadProgressLine(label, stream=sys.stderr)
    try:
        if command == "events":
            frame = readback.query_events(**keywords, **where, progress=progress)
            what = plural(len(frame), "event")
            _write_events(frame, args)
        elif command == "count":
            value = readback.count_events(**keywords, **where)
            what = _write_count(value)
        else:
            buckets = readback.event_histogram(**keywords, **where)
            what = _write_histogram(buckets)
    except OpenApiError as exc:
        said = " ".join(exc.describe(cli_subject(args.profile)).split())
        err(f"cms-event {command}: error: {said}")
        return 1
    except BrokenPipeError:  # `cms-event events | head`: the reader has what it wanted
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        err(f"cms-event {command}: interrupted")
        return 130
    if not quiet:
        line = read_summary(what, since=args.since, until=args.until, tz=args.tz)
        if args.command == "events" and args.output is not None:
            line = f"{line} -> {args.output}"
        if progress is not None:
            progress.finish(line)
        else:
            err(f"{label}: {line}")
    return 0


def _write_events(frame: pd.DataFrame, args: argparse.Namespace) -> None:
    data = frame_bytes(frame, _format(args))
    output: Path | None = args.output
    if output is None:
        _emit(data)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        from cms_magic.errors import ConfigError

        raise ConfigError(
            f"cannot be written: {exc.strerror or exc}", option="output", value=str(output)
        ) from None


def _write_count(value: Any) -> str:
    if isinstance(value, int):
        _emit(f"{value}\n".encode())
        return plural(value, "event")
    names = [str(n) for n in value["name"]]
    counts = [int(c) for c in value["count"].fillna(0)]
    width = max([len("name"), *map(len, names)])
    lines = [f"{'name':<{width}}  count"]
    lines += [f"{n:<{width}}  {c:>5,}" for n, c in zip(names, counts, strict=True)]
    _emit(("\n".join(lines) + "\n").encode("utf-8"))
    return f"{plural(sum(counts), 'event')} ({plural(len(names), 'name')})"


def _write_histogram(frame: pd.DataFrame) -> str:
    from cms_magic.ui.chart import histogram_text

    _emit((histogram_text(frame) + "\n").encode("utf-8"))
    total = int(frame["count"].fillna(0).sum())
    return f"{plural(total, 'event')} in {plural(len(frame), 'bucket')}"
