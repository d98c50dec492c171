"""Where the emulator keeps what it was sent: the accepted events and the log of requests.

:class:`Store` is the interface the upload handler uses; :class:`SqliteStore` keeps
everything in SQLite (stdlib :mod:`sqlite3`): in memory by default, or in a file
that survives restarts (``SqliteStore("events.sqlite")``, WAL journal).
:class:`MemoryStore` is the in-memory one. One ``add`` per request stores its
accepted events and its log record together (one transaction), reads return fresh
copies, and events are read in the order received with ``offset`` and ``limit``.

The read actions (:mod:`cms_magic.emulator.openapi_cms`) ask :class:`EventStore`'s
questions: each stored event has an id (``"1"``, ``"2"``... never reused, even after
:meth:`~SqliteStore.clear`) and the time it was stored; an :class:`EventQuery`
filters by name, id, group, event time (``[since_ms, until_ms]``, inclusive) and
keywords in the content. An event stored less than ``delay``
seconds ago is not visible to queries yet (the service's index lag); ``events()``
and ``count()`` see everything at once.

Threads: one writer at a time (a lock); an in-memory store reads under the same
lock, a file store reads through a small pool of its own connections (WAL lets
them read while a request is written).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from cms_magic.emulator.store_api import (
    INT_MAX,
    INT_MIN,
    Event,
    EventQuery,
    EventStore,
    RequestRecord,
    Store,
    StoredEvent,
    clamp,
    event_time_ms,
)
from cms_magic.errors import ConfigError

__all__ = [
    "Event",
    "EventQuery",
    "EventStore",
    "MemoryStore",
    "RequestRecord",
    "SqliteStore",
    "Store",
    "StoredEvent",
    "event_time_ms",
]

#: Marks a file as this store's (``PRAGMA application_id``: "cmse").
_APPLICATION_ID: Final = 0x636D7365
_SCHEMA_VERSION: Final = 1
_MAX_BUCKETS: Final = 100_000
_SCHEMA: Final = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the event id
    name TEXT,              -- as given (NULL only for a caller's odd event: see extra)
    content TEXT,
    group_id INTEGER,       -- as given, NULL when absent (queries read it as 0)
    time_raw,               -- as given (no type: text stays text), NULL when absent
    extra TEXT,             -- JSON of any other key (never for a validated event)
    time_ms INTEGER NOT NULL,   -- the event's time, else the time it was stored
    stored_ms INTEGER NOT NULL
);
CREATE INDEX events_time ON events (time_ms);
CREATE TABLE requests (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
"""


class SqliteStore:
    """A :class:`Store` and :class:`EventStore` in SQLite.

    ``path`` None keeps the database in memory (gone with the store); a path opens
    or creates that file (WAL journal), so the events outlive the process;
    ``temporary=True`` (no path) keeps it in a private file SQLite deletes when the
    store closes: only SQLite's page cache (about 2 MB) stays in memory. ``clock``
    (epoch seconds) stamps each event's stored time; ``delay`` is how many seconds
    a stored event stays invisible to queries (0: at once). :meth:`close` (or
    ``with``) releases the file; an unclosed store closes when collected.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_conn",
        "_delay",
        "_finalizer",
        "_idle",
        "_latest_ms",
        "_lock",
        "_temporary",
        "clock",
        "path",
    )

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        delay: float = 0.0,
        temporary: bool = False,
    ) -> None:
        self.path: str | None = None if path is None else os.fspath(path)
        if self.path in {"", ":memory:"}:
            raise ConfigError(
                "must be a file path, or None for a store in memory", option="path", value=path
            )
        if temporary and self.path is not None:
            raise ConfigError(
                "a temporary store has no path: give one or the other", option="temporary"
            )
        self._temporary = bool(temporary)
        self.clock = clock
        self._delay = _check_delay(delay)
        self._lock = threading.Lock()
        self._closed = False
        self._idle: list[sqlite3.Connection] = []
        self._conn = self._connect()
        self._open_schema()
        #: The latest stored time held: a query at or after it (no delay) needs no visibility check.
        self._latest_ms: int = self._conn.execute(
            "SELECT ifnull(max(stored_ms), ?) FROM events", (INT_MIN,)
        ).fetchone()[0]
        self._finalizer = weakref.finalize(self, _close_all, self._conn, self._idle)

    def __repr__(self) -> str:
        where = repr(self.path) if self.path else "temporary" if self._temporary else "in memory"
        if self._closed:
            return f"{type(self).__name__}({where}, closed)"
        requests = self._scalar("SELECT count(*) FROM requests")
        return f"{type(self).__name__}({where}, {self.count()} events, {requests} requests)"

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (a file store checkpoints its WAL); idempotent."""
        with self._lock:
            self._closed = True
        self._finalizer()

    # ----------------------------------------------------------------- settings

    @property
    def delay(self) -> float:
        """Seconds a stored event stays invisible to queries (the index lag)."""
        return self._delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay = _check_delay(seconds)

    # ----------------------------------------------------------------- Store

    def add(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        request: Mapping[str, Any],
        stored_at: float | None = None,
    ) -> None:
        """Log one request and keep its events, in one transaction.

        ``stored_at`` (epoch seconds) defaults to the store's clock.
        """
        stored_ms = _ms(self.clock() if stored_at is None else stored_at)
        rows = [_row(event, stored_ms) for event in events]
        record = json.dumps(dict(request), ensure_ascii=False)
        with self._lock:
            conn = self._open()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if rows:
                    conn.executemany(
                        "INSERT INTO events (name, content, group_id, time_raw, extra, time_ms,"
                        " stored_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                conn.execute("INSERT INTO requests (record) VALUES (?)", (record,))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if rows:
                self._latest_ms = max(self._latest_ms, stored_ms)

    def events(self, offset: int = 0, limit: int | None = None) -> list[Event]:
        _check_window(offset, limit)
        sql = (
            "SELECT name, content, group_id, time_raw, extra FROM events ORDER BY seq"
            " LIMIT ? OFFSET ?"
        )
        with self._reading() as conn:
            rows = conn.execute(sql, (-1 if limit is None else limit, offset)).fetchall()
        return [_event(*row) for row in rows]

    def requests(self) -> list[RequestRecord]:
        with self._reading() as conn:
            rows = conn.execute("SELECT record FROM requests ORDER BY seq").fetchall()
        return [json.loads(record) for (record,) in rows]

    def count(self) -> int:
        return self._scalar("SELECT count(*) FROM events")

    def clear(self) -> None:
        with self._lock:
            conn = self._open()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM events")
            conn.execute("DELETE FROM requests")
            conn.execute("COMMIT")
            self._latest_ms = INT_MIN

    # ----------------------------------------------------------------- EventStore

    def query(
        self,
        query: EventQuery,
        *,
        offset: int = 0,
        limit: int | None = None,
        now: float | None = None,
    ) -> list[StoredEvent]:
        """The visible events matching ``query``, newest first (event time, then id)."""
        _check_window(offset, limit)
        where, args = self._where(query, now)
        sql = _select(
            "seq, ifnull(name, ''), ifnull(content, ''), ifnull(group_id, 0), time_ms, stored_ms",
            where,
            "ORDER BY time_ms DESC, seq DESC LIMIT ? OFFSET ?",
        )
        with self._reading() as conn:
            rows = conn.execute(sql, [*args, -1 if limit is None else limit, offset]).fetchall()
        return [StoredEvent(str(seq), *rest) for seq, *rest in rows]

    def count_matching(self, query: EventQuery, *, now: float | None = None) -> int:
        where, args = self._where(query, now)
        return self._scalar(_select("count(*)", where), args)

    def count_by_name(
        self, query: EventQuery, *, now: float | None = None
    ) -> list[tuple[str, int, int]]:
        where, args = self._where(query, now)
        sql = _select("ifnull(name, ''), count(*), max(time_ms)", where, "GROUP BY 1 ORDER BY 1")
        with self._reading() as conn:
            return [(n, c, t) for n, c, t in conn.execute(sql, args).fetchall()]

    def histogram(
        self, query: EventQuery, *, width_ms: int, now: float | None = None
    ) -> list[tuple[int, int, int]]:
        """Buckets aligned to multiples of ``width_ms`` since the epoch (UTC), the first
        starting at ``since_ms`` and the last ending at ``until_ms + 1``: each is
        ``[start, end)``, every one listed, empty or not."""
        since, until = query.since_ms, query.until_ms
        if since is None or until is None:
            raise ConfigError("needs both since_ms and until_ms", option="query", value=query)
        if isinstance(width_ms, bool) or not isinstance(width_ms, int) or width_ms < 1:
            raise ConfigError("must be a whole number >= 1", option="width_ms", value=width_ms)
        if since > until:
            return []
        base = since // width_ms * width_ms
        n = (until - base) // width_ms + 1
        if n > _MAX_BUCKETS:
            raise ConfigError(
                f"makes {n} buckets of the range, over {_MAX_BUCKETS}: take wider ones",
                option="width_ms",
                value=width_ms,
            )
        where, args = self._where(query, now)
        sql = _select("(time_ms - ?) / ?, count(*)", where, "GROUP BY 1")
        with self._reading() as conn:
            counts = dict(conn.execute(sql, [base, width_ms, *args]).fetchall())
        return [
            (
                max(since, base + i * width_ms),
                min(until + 1, base + (i + 1) * width_ms),
                counts.get(i, 0),
            )
            for i in range(n)
        ]

    # ----------------------------------------------------------------- inside

    def _where(self, query: EventQuery, now: float | None) -> tuple[str, list[object]]:
        """The WHERE clause for ``query`` and its arguments: the clause is made of fixed
        fragments only (every value is a bound ``?``)."""
        visible = _ms(self.clock() if now is None else now) - _ms(self._delay)
        clauses: list[str] = ["1"]
        args: list[object] = []
        # Without a delay, a query after the latest add sees everything: no check, so the
        # time index alone can answer (with a delay, an add racing this query must stay hidden).
        if self._delay > 0 or visible < self._latest_ms:
            clauses.append("stored_ms <= ?")
            args.append(visible)
        if query.name is not None:
            clauses.append("name = ?")
            args.append(query.name)
        if query.event_id is not None:
            seq = query.event_id
            clauses.append("seq = ?")
            args.append(int(seq) if seq.isascii() and seq.isdigit() and len(seq) < 19 else -1)
        if query.group_id is not None:
            clauses.append("ifnull(group_id, 0) = ?")
            args.append(query.group_id)
        if query.since_ms is not None:
            clauses.append("time_ms >= ?")
            args.append(clamp(query.since_ms))
        if query.until_ms is not None:
            clauses.append("time_ms <= ?")
            args.append(clamp(query.until_ms))
        groups = [group for group in query.keywords if group]
        if groups:
            alternatives = []
            for group in groups:
                alternatives.append(" AND ".join(["instr(content, ?) > 0"] * len(group)))
                args.extend(group)
            clauses.append("((" + ") OR (".join(alternatives) + "))")
        return " AND ".join(clauses), args

    def _scalar(self, sql: str, args: Sequence[object] = ()) -> int:
        with self._reading() as conn:
            value = conn.execute(sql, args).fetchone()[0]
        return int(value)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path or ("" if self._temporary else ":memory:"),
                isolation_level=None,  # transactions are explicit
                check_same_thread=False,  # guarded by the lock or the pool
            )
            conn.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as exc:
            raise ConfigError(
                f"cannot open the database: {exc}", option="path", value=self.path
            ) from None
        return conn

    def _open_schema(self) -> None:
        conn = self._conn
        try:
            if self.path is not None:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigError(
                f"is not an emulator database ({exc})", option="path", value=self.path
            ) from None
        if app == 0 and tables == 0:
            conn.executescript(
                f"BEGIN; {_SCHEMA} PRAGMA application_id = {_APPLICATION_ID};"
                f" PRAGMA user_version = {_SCHEMA_VERSION}; COMMIT;"
            )
            return
        if app != _APPLICATION_ID or version != _SCHEMA_VERSION:
            conn.close()
            what = "another program" if app != _APPLICATION_ID else "another version"
            raise ConfigError(
                f"is a database of {what}, not this emulator's (schema {_SCHEMA_VERSION}): "
                "give a new file name",
                option="path",
                value=self.path,
            )

    def _open(self) -> sqlite3.Connection:
        if self._closed:
            raise ConfigError("this store is closed", option="store")
        return self._conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection to read with: the store's own under the lock in memory; in a
        file, an idle one from the pool (made when none is idle)."""
        if self.path is None:
            with self._lock:
                yield self._open()
            return
        with self._lock:
            self._open()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)


class MemoryStore(SqliteStore):
    """A :class:`SqliteStore` in memory (the emulator's default)."""

    __slots__ = ()

    def __init__(self, *, clock: Callable[[], float] = time.time, delay: float = 0.0) -> None:
        super().__init__(None, clock=clock, delay=delay)


def _select(columns: str, where: str, tail: str = "") -> str:
    """A SELECT over the events table; every part is one of this module's fixed fragments."""
    return " ".join(("SELECT", columns, "FROM events WHERE", where, tail))


def _close_all(conn: sqlite3.Connection, idle: list[sqlite3.Connection]) -> None:
    for each in (*idle, conn):
        each.close()
    idle.clear()


def _row(event: Mapping[str, Any], stored_ms: int) -> tuple[object, ...]:
    """One event as the events table's columns; any value a column cannot hold as
    given goes to ``extra`` (JSON), so :meth:`SqliteStore.events` returns it unchanged."""
    extra = {k: v for k, v in event.items() if k not in ("name", "content", "groupId", "time")}
    columns: dict[str, object] = {}
    for key, kinds in (("name", str), ("content", str), ("groupId", int), ("time", (str, int))):
        if key not in event:
            continue
        value = event[key]
        fits = isinstance(value, kinds) and not isinstance(value, bool)
        if fits and isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            fits = False
        if fits:
            columns[key] = value
        else:
            extra[key] = value
    time_ms = event_time_ms(event.get("time"))
    return (
        columns.get("name"),
        columns.get("content"),
        columns.get("groupId"),
        columns.get("time"),
        json.dumps(extra, ensure_ascii=False) if extra else None,
        stored_ms if time_ms is None else time_ms,
        stored_ms,
    )


def _event(
    name: str | None, content: str | None, group_id: int | None, time_raw: object, extra: str | None
) -> Event:
    event: Event = {}
    if name is not None:
        event["name"] = name
    if content is not None:
        event["content"] = content
    if group_id is not None:
        event["groupId"] = group_id
    if time_raw is not None:
        event["time"] = time_raw
    if extra is not None:
        event.update(json.loads(extra))
    return event


def _ms(seconds: float) -> int:
    return clamp(int(seconds * 1000 // 1))


def _check_delay(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 1e9:
        raise ConfigError("must be a number of seconds >= 0", option="delay", value=seconds)
    return float(seconds)


def _check_window(offset: int, limit: int | None) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ConfigError("must be a whole number >= 0", option="offset", value=offset)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError("must be a whole number >= 0 or None", option="limit", value=limit)
