"""The journal's file: its SQLite schema, packed row positions, and the replay of its log.

:mod:`cms_magic.sending.journal` is the API; this module is the storage under it. The
file holds three tables:

- ``meta``: what the journal was made for (format, version, the target's URL, a digest
  and the masked form of its quota key, the row count, the batching options, when);
- ``plan``: one row per planned batch: its number, its rows (packed positions) and the
  digest of its rows and request body (the data's fingerprint, batch by batch);
- ``log``: append-only records, in order: a run opened or closed, a request about to go
  out (``SENDING``: batch, rows, attempt, the body's MD5), rows settled by an answer
  (``SETTLED``: rows, status, reason, request id), rows rejected before any request
  (``REJECTED``: rows and their reasons).

A row's state is the last record that names it (:func:`replay`): none, never sent;
``SENDING``, in flight (written before the request went out, no answer recorded:
``unknown``); ``SETTLED``/``REJECTED``, the status recorded.

Positions are packed compactly (:func:`pack_positions`): a run of consecutive rows is
13 bytes whatever its length; other rows as zlib-compressed deltas.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from cms_magic.credentials.static import mask
from cms_magic.errors import JournalError, JournalMismatchError
from cms_magic.results import NOT_SENT, REJECTED, UNKNOWN

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "CLOSED",
    "FORMAT",
    "OPENED",
    "REJECTED_ROWS",
    "SENDING",
    "SETTLED",
    "VERSION",
    "JournalError",
    "JournalMismatchError",
    "JournalTarget",
    "Record",
    "Replay",
    "check",
    "connect",
    "create",
    "in_flight_reason",
    "pack_positions",
    "planned_batches",
    "read_meta",
    "replay",
    "transaction",
    "unpack_positions",
]


FORMAT: Final = "cms_magic send journal"
VERSION: Final = "1"

# Record kinds of the log table.
OPENED, CLOSED, SENDING, SETTLED, REJECTED_ROWS = range(5)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plan (
    batch INTEGER PRIMARY KEY,
    rows BLOB NOT NULL,
    digest BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    batch INTEGER,
    rows BLOB,
    attempt INTEGER,
    status INTEGER,
    digest BLOB,
    request_id TEXT,
    reason TEXT,
    at REAL NOT NULL
);
"""

#: Small pages: a record's commit appends about one page to the WAL, so 1 KiB pages write
#: a quarter of what the default 4 KiB do. Measured for 3,000 one-row commits (NORMAL):
#: 10.0 against 12.9 us a commit, a 1.0 against 4.1 MB WAL, the slowest commit (the one
#: that checkpoints) 1.2 against 3.5 ms.
PAGE_SIZE: Final = 1024


def connect(path: str, *, create: bool, durable: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal.

    ``synchronous=NORMAL`` (default): a commit is in the OS's hands when it returns, so it
    survives the process being killed at any instant; only an OS crash or power loss can
    lose the last commits (never corrupting the file). ``durable``: ``FULL``, every
    commit is fsync'ed (survives power loss too; each record costs one fsync)."""
    import sqlite3

    mode = "rwc" if create else "rw"
    uri = "file:" + _quote(path) + f"?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        if create:
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only before the first table
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    except BaseException:
        conn.close()
        raise
    return conn


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/:")


# --------------------------------------------------------------------------- errors, target, meta


@dataclass(frozen=True, slots=True)
class JournalTarget:
    """Where a send goes, as a journal records it: the URL, a digest of the quota key
    (the AccessKey id, or a refreshing source's key) and its masked form for messages."""

    url: str
    key_digest: str
    key_shown: str

    @classmethod
    def of(cls, url: str, quota_key: str) -> JournalTarget:
        digest = hashlib.sha256(b"cms_magic journal key\0" + quota_key.encode()).hexdigest()
        return cls(url.rstrip("/"), digest[:32], mask(quota_key))

    def __str__(self) -> str:
        return f"{self.url} (key {self.key_shown})"


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_all_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta"))


def create(
    conn: sqlite3.Connection,
    layout: Mapping[str, int],
    target: JournalTarget,
    total: int,
    now: float,
) -> None:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "created": repr(now),
        "target_url": target.url,
        "target_key": target.key_digest,
        "target_shown": target.key_shown,
        "total": str(total),
        "layout": json.dumps(dict(layout), sort_keys=True),
    }
    with transaction(conn):
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())


def check(
    path: str,
    conn: sqlite3.Connection,
    layout: Mapping[str, int],
    target: JournalTarget,
    total: int,
) -> None:
    meta = read_meta(path, conn)
    was = JournalTarget(meta["target_url"], meta["target_key"], meta["target_shown"])
    if (was.url, was.key_digest) != (target.url, target.key_digest):
        raise JournalMismatchError(path, "target", f"it sends to {was}, this send to {target}")
    if int(meta["total"]) != total:
        raise JournalMismatchError(
            path, "data", f"it has {int(meta['total']):,} rows, this send {total:,}"
        )
    was_layout = json.loads(meta["layout"])
    if was_layout != dict(layout):
        shown = ", ".join(
            f"{k}={was_layout.get(k)} (now {v})"
            for k, v in layout.items()
            if was_layout.get(k) != v
        )
        raise JournalMismatchError(path, "options", f"its batches were planned with {shown}")


def read_meta(path: str, conn: sqlite3.Connection) -> dict[str, str]:
    import sqlite3

    try:
        meta = read_all_meta(conn)
    except sqlite3.DatabaseError:
        meta = {}
    if meta.get("format") != FORMAT:
        raise JournalError(path, "is not a cms_magic journal (an SQLite file of something else)")
    if meta.get("version") != VERSION:
        raise JournalError(
            path,
            f"is a journal of format version {meta.get('version')}; this cms_magic reads "
            f"version {VERSION}",
        )
    return meta


# --------------------------------------------------------------------------- positions

_RANGE: Final = b"R"
_DELTAS: Final = b"D"
_ARRAY: Final = b"A"
_RANGE_HEAD: Final = struct.Struct("<qI")
_FIRST: Final = struct.Struct("<q")


def pack_positions(positions: Sequence[int] | np.ndarray[Any, Any]) -> bytes:
    """Row positions as a compact blob: 13 bytes for consecutive rows, else deltas."""
    if isinstance(positions, (tuple, list)) and positions:  # the run's batches: fast path
        first, n = int(positions[0]), len(positions)
        if positions[-1] - first == n - 1 and list(positions) == list(range(first, first + n)):
            return _RANGE + _RANGE_HEAD.pack(first, n)
    where = np.asarray(positions, dtype=np.int64)
    n = len(where)
    if n == 0:
        return _RANGE + _RANGE_HEAD.pack(0, 0)
    first = int(where[0])
    if int(where[-1]) - first == n - 1 and (n < 3 or bool(np.all(np.diff(where) == 1))):
        return _RANGE + _RANGE_HEAD.pack(first, n)
    steps = np.diff(where)
    if n > 1 and int(steps.min()) > 0 and int(steps.max()) < 2**32:
        return _DELTAS + _FIRST.pack(first) + zlib.compress(steps.astype("<u4").tobytes(), 1)
    return _ARRAY + zlib.compress(where.astype("<i8").tobytes(), 1)


def unpack_positions(blob: bytes) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The positions a :func:`pack_positions` blob holds."""
    kind, body = blob[:1], blob[1:]
    if kind == _RANGE:
        first, count = _RANGE_HEAD.unpack(body)
        return np.arange(first, first + count, dtype=np.int64)
    if kind == _DELTAS:
        (first,) = _FIRST.unpack(body[: _FIRST.size])
        steps = np.frombuffer(zlib.decompress(body[_FIRST.size :]), dtype="<u4")
        out = np.empty(len(steps) + 1, dtype=np.int64)
        out[0] = first
        np.cumsum(steps, out=out[1:])
        out[1:] += first
        return out
    if kind == _ARRAY:
        return np.frombuffer(zlib.decompress(body), dtype="<i8").astype(np.int64)
    raise ValueError(f"unknown positions blob kind {kind!r}")


def _span(blob: bytes) -> slice | None:
    """The slice of consecutive rows a range blob holds (None for other blobs)."""
    if blob[:1] != _RANGE:
        return None
    first, count = _RANGE_HEAD.unpack(blob[1:])
    return slice(first, first + count)


# --------------------------------------------------------------------------- replay


@dataclass(frozen=True, slots=True)
class Record:
    """One log record that gave rows their state (what a row's reason and detail come from)."""

    kind: int
    batch: int
    attempt: int
    status: int
    request_id: str | None
    reason: str | None  # SETTLED: the reason; REJECTED_ROWS: JSON list, one per row
    at: float


@dataclass
class Replay:
    """The log applied to every row: ``status`` (results codes), ``in_flight`` and, per
    row, the index of the last record that named it (``last``, -1: none) in ``records``."""

    status: np.ndarray[Any, np.dtype[np.uint8]]
    in_flight: np.ndarray[Any, np.dtype[np.bool_]]
    last: np.ndarray[Any, np.dtype[np.int32]]
    records: list[Record]
    runs: int
    finished: bool
    updated: float | None
    #: The rows of REJECTED_ROWS records, by record index (to find each row's reason).
    rejected_rows: dict[int, np.ndarray[Any, np.dtype[np.int64]]]

    def reasons(self, rows: np.ndarray[Any, Any]) -> dict[int, str]:
        """The reason of each of ``rows`` from its last record (rows without one: absent)."""
        out: dict[int, str] = {}
        rows = rows[self.last[rows] >= 0]
        if not len(rows):
            return out
        owners = self.last[rows]
        order = np.argsort(owners, kind="stable")
        rows, owners = rows[order], owners[order]
        cuts = np.flatnonzero(np.diff(owners)) + 1
        for part in np.split(rows, cuts):
            index = int(self.last[part[0]])
            record = self.records[index]
            if record.kind == REJECTED_ROWS:
                texts = json.loads(record.reason or "[]")
                where = self.rejected_rows[index]
                mapping = dict(zip(where.tolist(), texts, strict=True))
                out.update((p, mapping[p]) for p in part.tolist())
            else:
                text = record.reason if record.kind == SETTLED else in_flight_reason(record)
                if text is not None:
                    out.update(dict.fromkeys(part.tolist(), text))
        return out


def in_flight_reason(record: Record) -> str:
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(record.at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"unknown: in flight when the journal was last written (batch {record.batch}, "
        f"attempt {record.attempt}, sent {when}, no answer recorded); the events may or "
        "may not have been delivered"
    )


def replay(conn: sqlite3.Connection, total: int) -> Replay:
    """Apply the log, in order, to ``total`` rows (one read of the log table)."""
    status = np.full(total, NOT_SENT, dtype=np.uint8)
    in_flight = np.zeros(total, dtype=bool)
    last = np.full(total, -1, dtype=np.int32)
    records: list[Record] = []
    rejected_rows: dict[int, np.ndarray[Any, np.dtype[np.int64]]] = {}
    runs = 0
    finished = False
    updated: float | None = None
    query = (
        "SELECT kind, batch, rows, attempt, status, request_id, reason, at FROM log ORDER BY seq"
    )
    for kind, batch, rows, attempt, code, request_id, reason, at in conn.execute(query):
        updated = at
        if kind == OPENED:
            runs += 1
            finished = False
            continue
        if kind == CLOSED:
            finished = True
            continue
        where: slice | np.ndarray[Any, Any] | None = _span(rows)
        if where is None:
            where = unpack_positions(rows)
        index = len(records)
        if kind == SENDING:
            status[where] = UNKNOWN
            in_flight[where] = True
        elif kind == SETTLED:
            status[where] = code
            in_flight[where] = False
        elif kind == REJECTED_ROWS:
            status[where] = REJECTED
            in_flight[where] = False
            rejected_rows[index] = unpack_positions(rows)
        else:
            continue  # a later version's record: ignored
        last[where] = index
        records.append(
            Record(
                kind,
                batch if batch is not None else -1,
                attempt or 0,
                code or 0,
                request_id,
                reason,
                at,
            )
        )
    return Replay(status, in_flight, last, records, runs, finished, updated, rejected_rows)


def planned_batches(conn: sqlite3.Connection, total: int) -> np.ndarray[Any, np.dtype[np.int32]]:
    """The batch each row was planned in (-1: not planned yet), from the plan table."""
    batch = np.full(total, -1, dtype=np.int32)
    for number, rows in conn.execute("SELECT batch, rows FROM plan"):
        where: slice | np.ndarray[Any, Any] | None = _span(rows)
        batch[where if where is not None else unpack_positions(rows)] = number
    return batch
