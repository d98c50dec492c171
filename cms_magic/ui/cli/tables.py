"""Files in and out of ``cms-event send``: reading the input, writing ``--failed-out``.

An input file that cannot be read (no such file, an extension we do not read, a
malformed CSV or JSON lines file, Parquet without pyarrow) is an
:class:`~cms_magic.errors.InputError` about the ``file``, so the command line
says it in one line and exits 2.

The ``--failed-out`` file holds every row not accepted: the source columns as
read, then ``status`` and ``reason`` (``cms_status`` / ``cms_reason`` when the
source has columns of those names). Sent again (``cms-event send FAILED_FILE``
with the same options), a file whose last two columns are such a pair, with
only statuses of rows not accepted, is read as the source rows: the pair is left
out, so a whole-row content is the same as the first time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cms_magic.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from cms_magic.results import SendResult

__all__ = ["check_writable", "failed_rows", "read_table", "strip_outcome", "write_table"]

_JSON_LINES: Final = {".jsonl", ".ndjson", ".json"}
_PARQUET: Final = {".parquet", ".pq"}
_CSV: Final = {".csv", ".tsv", ".txt"}
_COMPRESSED: Final = {".gz", ".bz2", ".xz", ".zst", ".zip"}
_KNOWN: Final = "CSV (.csv), JSON lines (.jsonl, .ndjson) or Parquet (.parquet)"

#: The statuses a ``--failed-out`` file holds (every status but accepted and dry_run).
_NOT_ACCEPTED: Final = frozenset({"rejected", "not_sent", "unknown"})


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix in _JSON_LINES:
        return "jsonl"
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "tsv" if suffix == ".tsv" else "csv"
    raise InputError(
        f"cannot tell its format from its name; cms-event reads {_KNOWN}",
        option="file",
        value=str(path),
    )


def _cannot_read(path: str, what: str, exc: BaseException) -> InputError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return InputError(f"is not valid {what}: {detail}", option="file", value=path)


def read_table(path: str) -> pd.DataFrame:
    """Read CSV, JSON lines or Parquet by the file's extension (``-``: CSV on stdin)."""
    import sys

    import pandas as pd

    if path == "-":
        return _read_csv(sys.stdin, path, ",")
    file = Path(path)
    if not file.exists():
        raise InputError("no such file", option="file", value=path)
    if file.is_dir():
        raise InputError("is a directory, not a file", option="file", value=path)
    kind = _kind(file)
    try:
        if kind == "jsonl":
            try:
                frame: pd.DataFrame = pd.read_json(file, lines=True, dtype=False)
            except ValueError as exc:
                raise _cannot_read(path, "JSON lines (one JSON object a line)", exc) from None
            return frame
        if kind == "parquet":
            try:
                return pd.read_parquet(file)
            except ImportError:
                raise InputError(
                    "reading Parquet needs pyarrow: pip install pyarrow", option="file", value=path
                ) from None
            except Exception as exc:  # pyarrow's errors are its own classes
                raise _cannot_read(path, "Parquet", exc) from None
        return _read_csv(file, path, "\t" if kind == "tsv" else ",")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"is not UTF-8 text (byte {exc.start}: {exc.reason})", option="file", value=path
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot be read: {exc.strerror or type(exc).__name__}", option="file", value=path
        ) from None


def _read_csv(source: Any, path: str, sep: str) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(source, sep=sep)
    except pd.errors.EmptyDataError:
        raise InputError("is empty (not even a header line)", option="file", value=path) from None
    except pd.errors.ParserError as exc:
        raise _cannot_read(path, "CSV", exc) from None


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write rows in the format the extension says (CSV for any other)."""
    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in _JSON_LINES:
        _write_json_lines(frame, path)
    elif suffix in _PARQUET:
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")


def _json_default(value: object) -> object:
    """What orjson cannot write itself: pandas/numpy scalars, times as ISO 8601 in their zone."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _write_json_lines(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object per row, readable as written: no escaped slashes, times in their own
    zone (pandas' to_json writes ``\\/`` and converts aware times to UTC)."""
    import orjson

    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    with path.open("wb") as out:
        for row in frame.to_dict(orient="records"):
            out.write(orjson.dumps(row, default=_json_default, option=option))
            out.write(b"\n")


def check_writable(path: Path) -> Path:
    """``path`` if the rows not accepted can be written there; checked before anything is
    sent, so no send ends with rows it cannot keep."""
    import importlib.util

    shown = str(path)
    if path.is_dir():
        raise InputError("is a directory; give a file name", option="failed_out", value=shown)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(
            "cannot be written: its directory does not exist", option="failed_out", value=shown
        )
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(parent, os.W_OK):
        raise InputError("cannot be written: permission denied", option="failed_out", value=shown)
    suffix = path.suffix.lower()
    if suffix in _PARQUET and not any(
        importlib.util.find_spec(engine) for engine in ("pyarrow", "fastparquet")
    ):
        raise InputError(
            "writing Parquet needs pyarrow: pip install pyarrow (or name a .csv or .jsonl file)",
            option="failed_out",
            value=shown,
        )
    return path


def _outcome_names(columns: list[str]) -> tuple[str, str]:
    prefix = ""
    while f"{prefix}status" in columns or f"{prefix}reason" in columns:
        prefix = "cms_" + prefix
    return f"{prefix}status", f"{prefix}reason"


def failed_rows(result: SendResult, source: pd.DataFrame) -> pd.DataFrame:
    """The source rows not accepted, with their ``status`` and ``reason`` as the last columns."""
    import numpy as np

    positions = np.flatnonzero(result.failed_mask())
    rows: pd.DataFrame = source.iloc[positions].copy()
    status, reason = _outcome_names([str(c) for c in rows.columns])
    outcome = result.failed_events()  # the same rows in the same order, not the whole frame
    rows[status] = outcome["status"].astype(str).to_numpy()
    rows[reason] = outcome["reason"].to_numpy()
    return rows


def strip_outcome(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """``frame`` without the outcome columns a ``--failed-out`` file ends with (and True),
    or as it is (and False)."""
    columns = [str(c) for c in frame.columns]
    if len(columns) < 3:
        return frame, False
    status, reason = columns[-2:]
    prefix = status[: -len("status")]
    if (
        not status.endswith("status")
        or reason != f"{prefix}reason"
        or prefix.replace("cms_", "") != ""
    ):
        return frame, False
    values = set(frame.iloc[:, -2].dropna().astype(str))
    if not values <= _NOT_ACCEPTED or frame.iloc[:, -2].isna().any():
        return frame, False
    return frame.iloc[:, :-2], True
