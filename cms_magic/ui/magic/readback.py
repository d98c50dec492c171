"""``%cms events|count|histogram``: read back what CloudMonitor holds (issue 15).

::

    %cms events [DEST] [--name X] [--group-id N] [--since 1h] [--until ...] [--search ...]
                [--limit N] [--endpoint URL | --region ID] [--profile NAME]
    %cms count [DEST] [filters] [--by-name]
    %cms histogram [DEST] [filters] [--level LEVEL]

The filters are the one options table's (:data:`cms_magic.ui.options.READ_OPTIONS`); the
target and the credentials are chosen as for a send (the magic's ``target()`` and
``credentials()``: flags, ``%config CmsMagic``, the environment, the one rule), then read
at the region's OpenAPI endpoint (:func:`cms_magic.readback.openapi_url`). Each command
calls one core function (:func:`~cms_magic.readback.query_events`,
:func:`~cms_magic.readback.count_events`, :func:`~cms_magic.readback.event_histogram`) and
says one line: the target, how many, the window (``-> DEST`` when stored).

- ``events``: the DataFrame is the cell's value, or goes into ``DEST``; a long read shows
  its progress on the line that then turns into the summary.
- ``count``: the number (with ``--by-name`` the service's per-name DataFrame) is the cell's
  value, or goes into ``DEST``.
- ``histogram``: shows the chart (inline SVG, :mod:`cms_magic.ui.chart`; a text table with
  bars where there is no SVG); the frame goes into ``DEST`` if given.

Every mistake and every refusal of the service is one ``UsageError`` line in the magic's
words (``--since '1y': must be ...``; a missing RAM permission names the action).
"""

from __future__ import annotations

import keyword
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from cms_magic.errors import CmsError, CredentialsError
from cms_magic.progress import plural
from cms_magic.ui.magic.arguments import one_line
from cms_magic.ui.magic.guard import HOW_CREDENTIALS
from cms_magic.ui.magic.report import out
from cms_magic.ui.options import (
    READ_COMMANDS,
    READ_TARGET_OPTIONS,
    add_arguments,
    flag_subject,
    read_keywords,
)

if TYPE_CHECKING:
    import argparse

    import pandas as pd

    from cms_magic.ui.render import ReadProgressLine

__all__ = ["READ_HELP", "HistogramChart", "ReadInterrupted", "read_parser", "run_read"]

#: What each read command is, for its ``--help`` and ``%cms help``.
READ_HELP: Final = {
    "events": "the events matching the filters, as a DataFrame (the cell's value, or DEST)",
    "count": "how many events match (per event name with --by-name)",
    "histogram": "events per time bucket, as a chart (the DataFrame into DEST if given)",
}


class HistogramChart:
    """A histogram frame as a notebook shows it: an inline SVG bar chart
    (``_repr_svg_``), and the text table with bars elsewhere (``repr``)."""

    def __init__(self, frame: pd.DataFrame, *, title: str | None = None) -> None:
        self.frame = frame
        self.title = title

    def _repr_svg_(self) -> str:
        from cms_magic.ui.chart import histogram_svg

        return histogram_svg(self.frame, title=self.title)

    def __repr__(self) -> str:
        from cms_magic.ui.chart import histogram_text

        return histogram_text(self.frame) if len(self.frame) else "(no buckets)"


def read_parser(command: str) -> argparse.ArgumentParser:
    """The parser of ``%cms COMMAND``: DEST, the command's filters, the target options."""
    make: Any = MagicArgumentParser  # IPython's class has no annotations
    parser: argparse.ArgumentParser = make(
        prog=f"%cms {command}", description=READ_HELP[command], add_help=False
    )
    parser.add_argument("dest", nargs="?", metavar="DEST", help="variable that receives the result")
    add_arguments(parser.add_argument_group("filters"), READ_COMMANDS[command], read=True)
    add_arguments(parser.add_argument_group("target"), (o.name for o in READ_TARGET_OPTIONS))
    parser.add_argument("--quiet", action="store_true", help="no progress and no summary line")
    return parser


def _parse(command: str, words: Sequence[str]) -> argparse.Namespace | None:
    parser = read_parser(command)
    if any(w in ("-h", "--help") for w in words):
        out(parser.format_help())
        return None
    try:
        args = parser.parse_args(list(words))
    except UsageError as exc:
        raise UsageError(f"%cms {command}: {one_line(str(exc))} (%cms {command} --help)") from None
    dest = args.dest
    if dest is not None and (not dest.isidentifier() or keyword.iskeyword(dest)):
        raise UsageError(
            f"%cms {command}: DEST must be a Python name (the variable that receives the "
            f"result), got {dest!r}; options start with --"
        )
    return args


def _message(command: str, exc: CmsError) -> str:
    """One line, in flags, for a read's error."""
    if isinstance(exc, CredentialsError):
        # What is wrong with the credentials (never their values), then how to give them.
        first = exc.describe(flag_subject).splitlines()[0].strip()
        first = first.removesuffix("Looked in:").strip().rstrip(".:;")
        return f"%cms {command}: {first}: {HOW_CREDENTIALS}"
    text = one_line(exc.describe(flag_subject))
    return f"%cms {command}: {text}"


class ReadInterrupted(KeyboardInterrupt):
    """Ctrl-C during a read: still a ``KeyboardInterrupt`` (a run of cells stops), shown by
    IPython as its one line, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def run_read(magic: Any, command: str, words: Sequence[str]) -> Any:
    """Run ``%cms COMMAND WORDS`` for a read command; returns the cell's value."""
    args = _parse(command, words)
    if args is None:
        return None
    try:
        return _read(magic, command, args)
    except KeyboardInterrupt:
        kept = f"; {args.dest} was not changed" if args.dest else ""
        raise ReadInterrupted(
            f"%cms {command}: interrupted, the read was cancelled{kept}"
        ) from None
    except CmsError as exc:
        if not getattr(magic, "short_errors", True):
            raise
        raise UsageError(_message(command, exc)) from None


def _progress_mode(magic: Any) -> str:
    try:
        return str(magic.effective("progress").value)
    except (AttributeError, KeyError):
        return "auto"


def _renderer(magic: Any, label: str, quiet: bool) -> ReadProgressLine | None:
    from cms_magic.ui.render import ReadProgressLine

    if quiet or _progress_mode(magic) == "off":
        return None
    shell = getattr(magic, "shell", None)
    if getattr(shell, "kernel", None) is not None:
        return ReadProgressLine(label)
    return ReadProgressLine(label, stream=sys.stdout)


def _read(magic: Any, command: str, args: argparse.Namespace) -> Any:
    from cms_magic import readback
    from cms_magic.ui.render import read_label, read_summary

    target = magic.target(args.endpoint, args.region, profile=args.profile)
    url = readback.openapi_url(target)  # 'public' names no region: said before credentials
    credentials = magic.credentials(target, args.profile)
    label = read_label(target)
    keywords = read_keywords(command, args)
    where = {"endpoint": url, "credentials": credentials}
    dest: str | None = args.dest
    renderer = _renderer(magic, label, args.quiet) if command == "events" else None
    value: Any
    if command == "events":
        value = readback.query_events(**keywords, **where, progress=renderer)
        what = plural(len(value), "event")
    elif command == "count":
        value = readback.count_events(**keywords, **where)
        if keywords["by_name"]:
            total = int(value["count"].fillna(0).sum())
            what = f"{plural(total, 'event')} ({plural(len(value), 'name')})"
        else:
            what = plural(value, "event")
    else:
        value = readback.event_histogram(**keywords, **where)
        total = int(value["count"].fillna(0).sum())
        what = f"{plural(total, 'event')} in {plural(len(value), 'bucket')}"
    line = read_summary(what, since=args.since, until=args.until, tz=args.tz, dest=dest)
    if renderer is not None:
        renderer.finish(line)
    elif not args.quiet:
        out(f"{label}: {line}")
    if command == "histogram":
        _show(HistogramChart(value, title=_title(keywords)))
    if dest is not None:
        _namespace(magic)[dest] = value
        return None
    return None if command == "histogram" else value


def _title(keywords: Mapping[str, Any]) -> str:
    name = keywords.get("name")
    level = keywords.get("level")
    words = ["events per bucket"]
    if name:
        words.append(f"named {name}")
    if level:
        words.append(f"at {str(level).upper()}")
    return ", ".join(words)


def _show(chart: HistogramChart) -> None:
    from IPython import display as ipython_display

    display: Any = ipython_display.display
    display(chart)


def _namespace(magic: Any) -> MutableMapping[str, Any]:
    namespace = magic.user_namespace
    if not isinstance(namespace, MutableMapping):
        raise UsageError("%cms: the notebook's variables cannot be written")
    return namespace
