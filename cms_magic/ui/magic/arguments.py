"""The ``%%cms_event`` parser: the shared options from :data:`cms_magic.ui.options.OPTIONS`,
plus the flags only the magic has (its inputs and its behaviour).

IPython's ``@magic_arguments`` builds the parser (and the ``%%cms_event?``
help) from decorators; :func:`cms_event_arguments` applies one decorator per
option, in the order the help shows them, so a shared option's flag, help and
type are written once, in the table. The typed doors to IPython's untyped
module live here too.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError

from cms_magic.ui.options import MAPPING_OPTIONS, SEND_OPTIONS, TARGET_OPTIONS, Option

__all__ = [
    "FRAME_ONLY",
    "cms_event_arguments",
    "one_line",
    "parse_line",
    "split_line",
]

_F = TypeVar("_F", bound=Callable[..., Any])

# IPython's magic_arguments module has no annotations: typed doors to it.
_untyped_magic_arguments: Callable[..., Any] = _magic_arguments.magic_arguments
_untyped_argument: Callable[..., Any] = _magic_arguments.argument
_untyped_argument_group: Callable[..., Any] = _magic_arguments.argument_group

#: The mapping options that map DataFrame columns (the others apply to any input).
FRAME_ONLY: Final = tuple(o for o in MAPPING_OPTIONS if o.name not in ("name", "group_id"))

_Spec = tuple[str, tuple[Any, ...], dict[str, Any]]  # ("argument" | "group", args, kwargs)


def _option(option: Option) -> _Spec:
    return ("argument", (option.flag,), option.argparse_kwargs())


def _group(title: str, description: str | None = None) -> _Spec:
    return ("group", (title, description), {})


def _specs() -> list[_Spec]:
    """Every argument of ``%%cms_event``, in the order ``%%cms_event?`` shows them."""
    return [
        (
            "argument",
            ("dest_var",),
            {
                "nargs": "?",
                "help": "Variable that receives the result (a SendResult; a SendJob with "
                "--background). Without it the result is the cell's displayed value.",
            },
        ),
        _group("Input", "One of these; without them the cell runs as Python."),
        (
            "argument",
            ("--df",),
            {
                "metavar": "NAME",
                "help": "Send the rows of the DataFrame NAME; the cell body is not run (as a "
                "line magic: %%cms_event --df NAME).",
            },
        ),
        (
            "argument",
            ("--raw",),
            {
                "action": "store_true",
                "help": "The cell text itself, unexecuted, is the content of one event.",
            },
        ),
        (
            "argument",
            ("--json",),
            {
                "action": "store_true",
                "help": "The cell text is a JSON array of events (name, content, groupId, time).",
            },
        ),
        _group(
            "Mapping",
            "As in cms_magic.events_from_frame; for other input only --name and --group-id "
            "apply (to events without one).",
        ),
        *(_option(o) for o in MAPPING_OPTIONS),
        _group(
            "Target",
            "Default: %config CmsMagic.endpoint / CmsMagic.region, then the environment, then "
            "the local emulator (unless cloud credentials are configured). Secrets are never "
            "magic arguments.",
        ),
        *(_option(o) for o in TARGET_OPTIONS),
        _group("Sending", "For this cell only; defaults: %config CmsMagic (%cms config)."),
        *(_option(o) for o in SEND_OPTIONS),
        _group("Behaviour"),
        (
            "argument",
            ("--dry-run",),
            {
                "action": "store_true",
                "help": "Everything but the POST: statuses 'dry_run', and the first request's "
                "headers (Authorization masked) and body.",
            },
        ),
        (
            "argument",
            ("--background",),
            {
                "action": "store_true",
                "help": "Return a SendJob at once; progress keeps updating in the cell.",
            },
        ),
        (
            "argument",
            ("--quiet",),
            {"action": "store_true", "help": "No progress and no summary line."},
        ),
        (
            "argument",
            ("--raise",),
            {
                "action": "store_true",
                "dest": "raise_",
                "help": "Raise EventsNotAcceptedError if any event is not accepted "
                "(papermill, CI).",
            },
        ),
    ]


def cms_event_arguments() -> Callable[[_F], _F]:
    """``@magic_arguments`` with every ``%%cms_event`` argument: parser and help in one."""

    def decorate(func: _F) -> _F:
        # IPython applies its argument decorators bottom-up and then reverses them.
        for kind, args, kwargs in reversed(_specs()):
            door = _untyped_argument if kind == "argument" else _untyped_argument_group
            func = cast("_F", door(*args, **kwargs)(func))
        return cast("_F", _untyped_magic_arguments()(func))

    return decorate


def split_line(line: str) -> list[str]:
    """The words of a magic line, shell-style (quotes removed); ``UsageError`` if unbalanced."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"cannot split the magic line: {exc}") from None


def one_line(text: str) -> str:
    """A message on one line: line breaks and runs of spaces become single spaces."""
    return " ".join(str(text).split())


def parse_line(magic: Callable[..., Any], words: Sequence[str], name: str) -> Any:
    """The parsed arguments of a magic declared with :func:`cms_event_arguments`."""
    parser: Any = getattr(magic, "parser")  # noqa: B009 - set by @magic_arguments
    try:
        return parser.parse_args(list(words))
    except UsageError as exc:
        raise UsageError(f"{name}: {one_line(str(exc))} (options: {name}?)") from None
