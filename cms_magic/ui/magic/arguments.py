"""The ``%%cms_event`` parser: the shared options from :data:`cms_magic.ui.options.OPTIONS`,
plus the flags only the magic has (its inputs and its behaviour).

IPython's ``@magic_arguments`` builds the parser (and the ``%%cms_event?``
help) from decorators; :func:`cms_event_arguments` applies one decorator per
option, in the order the help shows them, so a shared option's flag, help and
type are written once, in the table. The typed doors to IPython's untyped
module live here too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar, cast

from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError

from cms_magic.ui.options import (
    JOURNAL_OPTIONS,
    MAPPING_OPTIONS,
    SEND_OPTIONS,
    TARGET_OPTIONS,
    Option,
)

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
                "--background). Without it the result is _ (the summary says it, so the cell "
                "shows no value) and cms_magic.last_result(); a --background job is the "
                "cell's value.",
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
        _group("Journal", "A send that survives a crash: run it again to resume."),
        *(_option(o) for o in JOURNAL_OPTIONS),
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


_NAME_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
#: The kinds of value ``$name`` expands (a DataFrame goes by its name: ``--df NAME``).
_EXPANDABLE: Final = (str, int, float, os.PathLike)


def split_line(line: str, namespace: Mapping[str, Any] | None = None) -> list[str]:
    """The words of a magic line, shell-style (quotes removed); ``UsageError`` if unbalanced.

    With a ``namespace``, ``$name`` and ``${name}`` are replaced by the value of that
    variable (a string or a number), as IPython does in magic lines; ``$$`` is a
    literal ``$``, and nothing expands inside single quotes (a ``$`` not followed by
    a name, ``{`` or ``$`` stays as it is). A value is always part of one word, even
    with spaces in it. Braces are never touched: ``--content-template '{host}'``
    keeps its fields. An unknown name is a ``UsageError`` naming it.
    """
    words: list[str] = []
    word: list[str] = []
    started = False  # a word is under way (even an empty quoted one: '')
    quote: str | None = None
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                word.append(c)
            i += 1
            continue
        if c == "\\":
            if i + 1 >= n:
                raise UsageError("cannot split the magic line: No escaped character")
            following = line[i + 1]
            if quote == '"' and following not in '\\"$':
                word.append(c)  # inside double quotes a backslash escapes only \\ " $
            word.append(following)
            started = True
            i += 2
            continue
        if c == "$" and namespace is not None:
            text, i = _expand(line, i, namespace)
            word.append(text)
            started = True
            continue
        if quote == '"':
            if c == '"':
                quote = None
            else:
                word.append(c)
            i += 1
            continue
        if c.isspace():
            if started:
                words.append("".join(word))
                word, started = [], False
        elif c in "'\"":
            quote, started = c, True
        else:
            word.append(c)
            started = True
        i += 1
    if quote is not None:
        raise UsageError("cannot split the magic line: No closing quotation")
    if started:
        words.append("".join(word))
    return words


def _expand(line: str, i: int, namespace: Mapping[str, Any]) -> tuple[str, int]:
    """The text ``$...`` at ``line[i]`` stands for, and the index after it."""
    following = line[i + 1 : i + 2]
    if following == "$":
        return "$", i + 2
    if following == "{":
        end = line.find("}", i + 2)
        if end < 0:
            raise UsageError("cannot split the magic line: ${ without its closing }")
        name = line[i + 2 : end]
        if not name.isidentifier():
            raise UsageError(
                f"${{{name}}}: only a variable name goes between ${{ and }} (a literal $ is $$)"
            )
        return _value_of(name, namespace), end + 1
    if following not in _NAME_START:
        return "$", i + 1
    end = i + 1
    while end < len(line) and (line[end].isalnum() or line[end] == "_"):
        end += 1
    name = line[i + 1 : end]
    return _value_of(name, namespace), end


def _value_of(name: str, namespace: Mapping[str, Any]) -> str:
    missing = object()
    value = namespace.get(name, missing)
    if value is missing:
        raise UsageError(
            f"${name}: no variable {name!r} in the notebook (for a literal $, write $$, "
            "or put the word in single quotes)"
        )
    if not isinstance(value, _EXPANDABLE):
        hint = f" (to send its rows: --df {name})" if _is_frame(value) else ""
        raise UsageError(
            f"${name} is {_a(type(value).__name__)}: only a string or a number expands on a "
            f"magic line{hint}"
        )
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


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
