"""How a frame's columns become event fields: :class:`EventMapping` and its checks.

Each field comes from a constant or a column: ``name`` / ``name_col``,
``content_col`` / ``content_template``, ``group_id`` / ``group_id_col``, and
``time_col`` with ``tz`` for naive times. A mapping is checked twice: on its own
when it is made (two sources for one field, a malformed template, an unknown
zone) and against a frame's columns by :meth:`EventMapping.resolved` (a column
that does not exist). Both raise :class:`~cms_magic.errors.MappingError` with
fields: ``option`` is the Python keyword, ``value`` what was given, ``column``
the column concerned, ``hint`` a "did you mean" for a near miss, so each skin
can word the same error its own way.

Column labels are matched as they are (``0`` for ``read_csv(header=None)``),
then by their text, so ``"0"`` typed in a magic finds the column ``0``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from numbers import Integral
from typing import Final

from cms_magic.errors import MappingError, close_matches, show_value
from cms_magic.protocol import GROUP_ID_MAX

__all__ = [
    "MAPPING_OPTIONS",
    "EventMapping",
    "resolve_tz",
    "template_columns",
    "template_fields",
]

#: The mapping's options, in the order the skins' options table lists them.
MAPPING_OPTIONS: Final = (
    "name",
    "name_col",
    "content_col",
    "content_template",
    "group_id",
    "group_id_col",
    "time_col",
    "tz",
)

_COLUMN_OPTIONS: Final = ("name_col", "content_col", "group_id_col", "time_col")
# Options that give one field two ways: (the first way, the second, the first in plain words).
# The words name no option, so every skin can show the rule as it is.
_EITHER: Final = (
    ("name", "name_col", "a constant name"),
    ("content_col", "content_template", "a content column"),
    ("group_id", "group_id_col", "a constant group id"),
)


@dataclass(frozen=True)
class EventMapping:
    """How a frame's columns become event fields; each field is a constant or a column.

    ``name`` defaults to a column called ``name``, ``content`` to a column
    called ``content``, when the frame has one; without a ``content`` column or
    template, the content is the whole row as compact JSON. Columns are given
    by their label (any hashable: ``"host"``, or ``0`` for a frame without a
    header row).
    """

    name: str | None = None
    name_col: Hashable | None = None
    content_col: Hashable | None = None
    content_template: str | None = None
    group_id: int | None = None
    group_id_col: Hashable | None = None
    time_col: Hashable | None = None
    tz: str | tzinfo | None = None

    def __post_init__(self) -> None:
        for first, second, words in _EITHER:
            given, other = getattr(self, first), getattr(self, second)
            if given is not None and other is not None:
                raise MappingError(
                    f"cannot be given with {words} ({show_value(given)}); give one of the two",
                    option=second,
                    value=other,
                )
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise MappingError("must be a non-empty string", option="name", value=self.name)
        if self.group_id is not None:
            object.__setattr__(self, "group_id", _checked_group_id(self.group_id))
        for option in _COLUMN_OPTIONS:
            label = getattr(self, option)
            try:
                hash(label)
            except TypeError:
                raise MappingError(
                    "must be a column label (a string, or the label itself, e.g. 0)",
                    option=option,
                    value=label,
                ) from None
        if self.content_template is not None:
            template_fields(self.content_template)  # raises on a malformed template
        if self.tz is not None:
            resolve_tz(self.tz)

    def resolved(self, columns: Sequence[Hashable]) -> EventMapping:
        """Check the mapping against a frame's columns; fill the defaults.

        The result names every column by its label in ``columns`` (so ``"0"``
        becomes ``0`` for a frame whose labels are integers); ``name_col``
        defaults to a column called ``name``, ``content_col`` to one called
        ``content`` (when no template is given).
        """
        labels = list(columns)
        found = {
            option: _column(labels, option, getattr(self, option)) for option in _COLUMN_OPTIONS
        }
        if self.name is None and found["name_col"] is None:
            if not _matching(labels, "name"):
                near = _near(labels, "name")
                raise MappingError(
                    f"required, and no column is called 'name' to take it from; "
                    f"columns: {_listed(labels)}",
                    option="name",
                    column="name",
                    hint=near or "give one name for every row, or the column that holds the names",
                )
            found["name_col"] = _column(labels, "name_col", "name")
        if self.content_template is not None:
            template_columns(self.content_template, labels)
        elif found["content_col"] is None:
            default = _matching(labels, "content")
            if len(default) > 1:
                raise MappingError(
                    f"names {len(default)} columns (the frame's column labels are not unique), "
                    "so the content would be a guess",
                    option="content_col",
                    value="content",
                    column=default[0],
                    hint="rename the columns, or give %s or %s",
                    hint_options=("content_col", "content_template"),
                )
            if len(default) == 1:
                found["content_col"] = default[0]
            else:
                _check_row_json_keys(labels)
        if all(_unchanged(found[option], getattr(self, option)) for option in _COLUMN_OPTIONS):
            return self
        return replace(self, **found)  # type: ignore[arg-type]


def template_fields(template: str) -> list[str]:
    """The column names a ``str.format`` template refers to (``{col}``, ``{col!r:>8}``, ``{0}``)."""
    names: list[str] = []
    if not isinstance(template, str):
        raise MappingError(
            "must be a string: a str.format template over the row, e.g. '{host}: {message}'",
            option="content_template",
            value=template,
        )
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise MappingError(
            f"is not a valid format string ({exc})", option="content_template", value=template
        ) from None
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        head = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if head == "":
            raise MappingError(
                f"each field must name a column, e.g. '{{host}}'; got '{{{field_name}}}'",
                option="content_template",
                value=template,
            )
        if head not in names:
            names.append(head)
    return names


def template_columns(template: str, columns: Sequence[Hashable]) -> list[tuple[str, Hashable]]:
    """Each field of ``template`` with the label of the column it names; raises if one is missing.

    A field of digits (``{0}``) names an integer label (or a label spelt with those digits).
    """
    labels = list(columns)
    pairs: list[tuple[str, Hashable]] = []
    missing: list[str] = []
    for name in template_fields(template):
        matches = _matching(labels, int(name) if name.isdigit() else name)
        if not matches:
            missing.append(name)
        elif len(matches) > 1:
            raise MappingError(
                f"refers to {name!r}, which names {len(matches)} columns "
                "(the frame's column labels are not unique)",
                option="content_template",
                value=template,
                column=matches[0],
            )
        else:
            pairs.append((name, matches[0]))
    if missing:
        which = "which is not a column" if len(missing) == 1 else "which are not columns"
        nears = [(name, _near(labels, name)) for name in missing]
        hints = [near for _, near in nears if near]
        hint: str | None = None
        if len(missing) == 1:
            hint = hints[0] if hints else None
        elif hints:
            hint = "; ".join(f"for {name!r}, {near}" for name, near in nears if near)
        raise MappingError(
            f"refers to {', '.join(map(repr, missing))}, {which}; columns: {_listed(labels)}",
            option="content_template",
            value=template,
            column=missing[0],
            hint=hint,
        )
    return pairs


def resolve_tz(tz: str | tzinfo | None, *, option: str = "tz") -> tzinfo:
    """A ``tzinfo`` for a zone name, or the machine's local zone for None."""
    from dateutil import tz as dateutil_tz

    if tz is None:
        return dateutil_tz.tzlocal()
    if isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str):
        raise MappingError(
            "must be a time zone name such as 'Asia/Shanghai', or a tzinfo",
            option=option,
            value=tz,
        )
    found: tzinfo | None = None
    if tz.strip():
        try:
            from zoneinfo import ZoneInfo

            found = ZoneInfo(tz)
        except (KeyError, ValueError, ModuleNotFoundError):
            found = dateutil_tz.gettz(tz)
    if found is None:
        near = _near_zone(tz)
        raise MappingError(
            "unknown time zone; use an IANA name such as 'Asia/Shanghai' or 'UTC'",
            option=option,
            value=tz,
            hint=f"did you mean {near!r}?" if near else None,
        )
    return found


# --------------------------------------------------------------------------- helpers


def _checked_group_id(value: object) -> int:
    """A constant group id as an int, or a MappingError about ``group_id``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise MappingError(
            f"must be an integer from 0 to {GROUP_ID_MAX}", option="group_id", value=value
        )
    number = int(value)
    if not 0 <= number <= GROUP_ID_MAX:
        raise MappingError(
            f"must be between 0 and {GROUP_ID_MAX} (a non-negative 64-bit integer)",
            option="group_id",
            value=value,
        )
    return number


def _column(labels: list[Hashable], option: str, wanted: Hashable | None) -> Hashable | None:
    """The label in ``labels`` that ``wanted`` names, or a MappingError about ``option``."""
    if wanted is None:
        return None
    matches = _matching(labels, wanted)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise MappingError(
            f"names {len(matches)} columns (the frame's column labels are not unique)",
            option=option,
            value=wanted,
            column=matches[0],
        )
    raise MappingError(
        f"no such column; columns: {_listed(labels)}",
        option=option,
        value=wanted,
        column=wanted,
        hint=_near(labels, wanted),
    )


def _check_row_json_keys(labels: list[Hashable]) -> None:
    """The whole row as JSON needs one key per column: labels whose text repeats cannot be."""
    seen: set[str] = set()
    repeated: list[str] = []
    for label in labels:
        key = str(label)
        if key in seen and key not in repeated:
            repeated.append(key)
        seen.add(key)
    if repeated:
        raise MappingError(
            f"not given, so the content is the whole row as JSON, whose keys must be unique; "
            f"the frame's column labels repeat {', '.join(map(repr, repeated))}",
            option="content_col",
            column=repeated[0],
            hint="rename the columns, or give %s or %s",
            hint_options=("content_col", "content_template"),
        )


def _unchanged(found: Hashable | None, given: Hashable | None) -> bool:
    """The label found is the one given (an equal label of the same type counts: a string
    column index backed by pyarrow gives new ``str`` objects)."""
    return found is given or (type(found) is type(given) and _same(found, given))


def _same(label: Hashable, wanted: Hashable) -> bool:
    try:
        return bool(label == wanted)
    except (TypeError, ValueError):
        return False


def _matching(labels: list[Hashable], wanted: Hashable) -> list[Hashable]:
    """The labels ``wanted`` names: those equal to it, else those whose text equals its text."""
    exact = [label for label in labels if _same(label, wanted)]
    if exact:
        return exact
    text = str(wanted)
    return [label for label in labels if str(label) == text]


def _near(labels: list[Hashable], wanted: Hashable) -> str | None:
    """``did you mean 'message'?`` for a near miss among ``labels``, else None."""
    near = close_matches(str(wanted), labels)
    if not near:
        return None
    label = next(label for label in labels if str(label) == near[0])
    return f"did you mean {label!r}?"


def _near_zone(name: str) -> str | None:
    try:
        from zoneinfo import available_timezones

        zones = sorted(available_timezones())
    except (ModuleNotFoundError, OSError):
        return None
    near = close_matches(name, zones)
    return near[0] if near else None


def _listed(labels: list[Hashable]) -> str:
    """The columns as they are named: ``name, time, 0, 1`` (``(none)`` for no columns)."""
    return ", ".join(str(label) for label in labels) or "(none)"
