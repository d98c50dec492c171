"""What a ``%%cms_event`` cell sends: a DataFrame, or a list of events.

One input at most: ``--df NAME`` (the cell body is not run), ``--raw`` (the
cell text is one event's content), ``--json`` (the cell text is a JSON array of
events), or, without them, the cell run as Python (:mod:`.cell`): a DataFrame
as its last value sends its rows, a dict or list of dicts those events, a
string one event with that content, and otherwise what the cell printed is the
content of one event. Every mistake is one ``UsageError`` that says what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from IPython.core.error import UsageError

from cms_magic.ui.magic.cell import run_cell

__all__ = ["CellInput", "fill_records", "read_input"]

_JSON_TYPES: Final[dict[type, str]] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def a(noun: str) -> str:
    """``an int``, ``a str``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


@dataclass(frozen=True)
class CellInput:
    """The events to send: a DataFrame (``is_frame``) or a list of events or records."""

    data: Any
    is_frame: bool

    def __len__(self) -> int:
        return len(self.data)


def read_input(
    shell: Any,
    cell: str | None,
    *,
    df: str | None,
    raw: bool,
    json_cell: bool,
) -> CellInput:
    """The input the flags choose, read from the cell or the user namespace."""
    chosen = [flag for flag, on in (("--df", df), ("--raw", raw), ("--json", json_cell)) if on]
    if len(chosen) > 1:
        raise UsageError(f"give one input at most: {' or '.join(chosen)}, not both")
    body = cell if cell is not None else ""
    if df is not None:
        if any(ln.strip() and not ln.strip().startswith("#") for ln in body.splitlines()):
            raise UsageError(
                "with --df NAME the cell body is not run, so it may hold comments only "
                "(or use the line magic: %cms_event --df NAME); to run the cell as Python "
                "and send the DataFrame it ends with, remove --df"
            )
        return CellInput(frame_named(shell.user_ns, df), True)
    if cell is None:
        raise UsageError(
            "nothing to send: the cell is empty (without a cell, %cms_event sends a "
            "DataFrame: --df NAME; --raw, --json and Python input come from the lines of a "
            "%%cms_event cell)"
        )
    if raw:
        text = body.strip("\r\n")
        if not text.strip():
            raise UsageError("the cell is empty: nothing to send")
        return CellInput([{"content": text}], False)
    if json_cell:
        return CellInput(_json_events(body), False)
    if not body.strip():
        raise UsageError(
            "the cell is empty: give --df NAME, or a cell whose last value is a DataFrame, "
            "a dict, a list of dicts or a string, or that prints something"
        )
    outcome = run_cell(shell, body)
    return _from_value(outcome.value, outcome.printed)


def frame_named(namespace: Mapping[str, Any], name: str, *, subject: str | None = None) -> Any:
    """The DataFrame called ``name``; else ``UsageError`` listing the DataFrames there are.

    ``subject`` begins the message (default: ``--df NAME``)."""
    import pandas as pd

    missing = object()
    value = namespace.get(name, missing)
    if isinstance(value, pd.DataFrame):
        return value
    frames = sorted(
        key
        for key, item in namespace.items()
        if not key.startswith("_") and isinstance(item, pd.DataFrame)
    )
    what = "no such variable" if value is missing else a(type(value).__name__)
    raise UsageError(
        f"{subject or f'--df {name}'}: {what}, not a DataFrame; DataFrames here: "
        f"{', '.join(frames) if frames else '(none)'}"
    )


def _from_value(value: Any, printed: str) -> CellInput:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return CellInput(value, True)
    if isinstance(value, Mapping):
        return CellInput([value], False)
    if isinstance(value, (list, tuple)):
        from cms_magic.events import Event

        if value and not any(isinstance(item, (Mapping, Event)) for item in value):
            kinds = sorted({type(item).__name__ for item in value})
            raise UsageError(
                f"the cell's last value is a list of {', '.join(kinds)}: a list must hold "
                "events (dicts with 'name' and 'content')"
            )
        return CellInput(list(value), False)
    if isinstance(value, str):
        if not value.strip():
            raise UsageError("the cell's last value is an empty string: nothing to send")
        return CellInput([{"content": value}], False)
    if value is not None:
        raise UsageError(
            f"the cell's last value is {a(type(value).__name__)}: end the cell with a "
            "DataFrame, a dict, a list of dicts or a string, or with nothing (what it "
            "printed is then sent), e.g. add ';' to its last line"
        )
    text = printed.rstrip("\r\n")
    if not text.strip():
        raise UsageError(
            "the cell printed nothing and has no last value: nothing to send "
            "(end it with a DataFrame, a dict, a list of dicts or a string)"
        )
    return CellInput([{"content": text}], False)


def _json_events(body: str) -> list[Any]:
    if not body.strip():
        raise UsageError("--json: the cell is empty; it should hold a JSON array of events")
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--json: the cell is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if isinstance(parsed, dict):
        return [parsed]
    if not isinstance(parsed, list):
        kind = _JSON_TYPES.get(type(parsed), "value")
        raise UsageError(f"--json: the cell must hold a JSON array of events, got {a(kind)}")
    return parsed


def fill_records(records: list[Any], *, name: str, group_id: int | None) -> list[Any]:
    """Events as given, with ``name`` (and ``groupId``) filled in where they have none."""
    filled: list[Any] = []
    for record in records:
        if isinstance(record, Mapping):
            event = dict(record)
            if event.get("name") is None:
                event["name"] = name
            if group_id is not None and event.get("groupId", event.get("group_id")) is None:
                event.pop("group_id", None)
                event["groupId"] = group_id
            filled.append(event)
        else:
            filled.append(record)
    return filled
