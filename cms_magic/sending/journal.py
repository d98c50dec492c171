"""The journal of a long send: a SQLite file that knows, after a crash at any instant,
which rows were accepted, which were in flight and which were never sent.

**What it holds.** :meth:`Journal.open` makes (or opens) the file for one send: its
target (the URL and a digest of the quota key: never a secret, never even the whole key
id) and its data (the row count, the batching options and, batch by batch, a digest of
each batch's rows and request body: the :class:`Fingerprinter`'s :class:`BatchPrint`).
While the send runs, the run writes:

- :meth:`Journal.plan` for each chunk's batches as they are planned; on a resumed
  journal this *checks* the batches the journal knows, and raises
  :class:`JournalMismatchError` at the first one whose rows or events differ;
- :meth:`Journal.sending` just before a request goes out (committed when it returns);
- :meth:`Journal.settled` when its rows are settled by the answer (or by the end of the
  retries), and :meth:`Journal.rejected` for rows rejected before any request.

Every record is its own transaction in WAL mode with ``synchronous=NORMAL``: a record
is in the operating system's hands when the call returns, so a ``kill -9`` at any
instant loses nothing written, and the file is never corrupt (SQLite's WAL). Only an OS
crash or power loss can lose the last records (a request sent just before one may then
be sent again on resume); ``durable=True`` fsyncs every record (``synchronous=FULL``),
about 7x the cost (benchmarks/bench_journal.py: 39 against 276 us a request). A request
written ``SENDING`` whose answer was lost with the process is *in flight*: its rows are
``unknown``, never silently resent. Each answer is committed at once too (not held back
to share the next request's commit), so after a crash only the requests really in flight
are unknown.

**Threads.** One journal is safe from any thread (one lock around its connection); the
run calls the per-request methods from its event loop thread, where a record costs about
11 microseconds (one commit, no fsync), and may call :meth:`Journal.plan` and
:meth:`Journal.rejected` from the producer's worker thread (where the fingerprint's
hashing runs too). Only one process at a time may have a journal open for writing: a
second :meth:`Journal.open` raises :class:`JournalError` (an ``fcntl`` lock on
``PATH-lock``, an empty file left next to the journal); :func:`read_journal` reads a
journal while a send writes it.

**Resuming.** :meth:`Journal.open` on an existing journal reads its
:class:`JournalState` (:attr:`Journal.initial`): one byte of status per row (the
:mod:`cms_magic.results` codes) and one in-flight flag. The run gives the settled rows
to its result (:meth:`JournalState.groups`), sends only the rows not sent
(:meth:`JournalState.to_send`) and reports in-flight and unknown rows ``unknown``. So
that nothing is sent before the data is known to be the same, a resumed run holds back
the batches numbered up to :attr:`JournalState.frontier` until :meth:`Journal.plan` has
checked that one. :func:`read_journal` gives a journal's state as a text summary and a
DataFrame.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Final

import numpy as np

from cms_magic.batching import Batch
from cms_magic.results import CODES, REJECTED, Status
from cms_magic.sending import journal_store as store
from cms_magic.sending.journal_state import JournalReport, JournalState, read_journal, read_state
from cms_magic.sending.journal_store import (
    JournalError,
    JournalMismatchError,
    JournalTarget,
    pack_positions,
    transaction,
)

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "BatchPrint",
    "Fingerprinter",
    "Journal",
    "JournalError",
    "JournalMismatchError",
    "JournalReport",
    "JournalState",
    "JournalTarget",
    "read_journal",
]

_DIGEST_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class BatchPrint:
    """One planned batch's fingerprint: its number, its rows (packed) and a digest of the
    rows and of the request body (the encoded events, in order)."""

    number: int
    rows: bytes
    digest: bytes


class Fingerprinter:
    """Fingerprints a send's data as the run plans it, chunk by chunk.

    :meth:`prints` digests each batch (SHA-256 of its packed rows and its body, cut to
    16 bytes: about 0.1 s per million rows of 200 bytes, in the producer's thread, where
    hashlib releases the GIL); :meth:`digest` is the whole data's so far (complete once
    every chunk is fed). ``layout`` are the options that decide where batches start:
    the same data with other options plans other batches, so a journal records them.
    """

    __slots__ = ("_whole", "layout")

    def __init__(self, *, chunk_rows: int, max_events: int, max_bytes: int) -> None:
        self.layout = {"chunk_rows": chunk_rows, "max_events": max_events, "max_bytes": max_bytes}
        self._whole = hashlib.sha256(json.dumps(self.layout, sort_keys=True).encode())

    def prints(self, batches: Sequence[Batch]) -> list[BatchPrint]:
        """The fingerprints of one chunk's batches, in order (feed every chunk, in order)."""
        out = []
        for batch in batches:
            rows = pack_positions(batch.positions)
            digest = hashlib.sha256(rows)
            digest.update(batch.body)
            print_ = BatchPrint(batch.number, rows, digest.digest()[:_DIGEST_BYTES])
            self._whole.update(print_.digest)
            out.append(print_)
        return out

    def digest(self) -> str:
        """The hex digest of the layout and of every batch fed so far."""
        return self._whole.hexdigest()


def _lock(path: str) -> IO[bytes] | None:
    """An exclusive ``fcntl`` lock on ``PATH-lock`` for as long as the journal is open
    (the kernel drops it with the process); None where ``fcntl`` does not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no inter-process guard
        return None
    handle = open(path + "-lock", "ab")  # noqa: SIM115 - held open while the journal is
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise JournalError(
            path,
            "is in use by another send (open in this or another process)",
            hint="wait for that send to end, or give another journal path",
        ) from None
    return handle


class Journal:
    """The write side of one journal; make it with :meth:`open`, end it with :meth:`close`."""

    def __init__(
        self,
        path: str,
        conn: sqlite3.Connection,
        lock: IO[bytes] | None,
        *,
        total: int,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self.total = total
        self.clock = clock
        self._conn: sqlite3.Connection | None = conn
        self._lock_file = lock
        self._lock = threading.Lock()
        self.frontier = -1
        #: The journal's state when it was opened (all ``NOT_SENT`` for a new journal).
        self.initial: JournalState = self._read_state()
        self.frontier = self.initial.frontier
        self._checked = -1  # the last batch number this run planned
        #: Whether the journal had records of an earlier run (a resume).
        self.resumed = self.initial.runs > 0
        self._write("INSERT INTO log (kind, at) VALUES (?, ?)", (store.OPENED, self.clock()))

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        fingerprint: Fingerprinter,
        target: JournalTarget,
        total: int,
        durable: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> Journal:
        """Create the journal at ``path``, or open it to resume; refuse one made for other
        data (``total``, the batching options of ``fingerprint``) or another ``target``
        with :class:`JournalMismatchError`. ``durable``: fsync every record."""
        import sqlite3

        where = os.path.abspath(os.fspath(path))
        try:
            lock = _lock(where)
        except OSError as exc:
            raise JournalError(where, f"cannot be opened ({exc.strerror or exc})") from None
        try:
            existed = os.path.exists(where) and os.path.getsize(where) > 0
            conn = store.connect(where, create=True, durable=durable)
            try:
                if existed:
                    store.check(where, conn, fingerprint.layout, target, total)
                else:
                    store.create(conn, fingerprint.layout, target, total, clock())
                return cls(where, conn, lock, total=total, clock=clock)
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as exc:
            _release(lock)
            raise JournalError(where, f"is not a usable cms_magic journal ({exc})") from None
        except OSError as exc:
            _release(lock)
            raise JournalError(where, f"cannot be opened ({exc.strerror or exc})") from None
        except BaseException:
            _release(lock)
            raise

    # ------------------------------------------------------------------ records

    def plan(self, prints: Sequence[BatchPrint]) -> None:
        """Record planned batches; a batch the journal knows already must be the same
        (rows and events), else :class:`JournalMismatchError` and nothing is recorded."""
        if not prints:
            return
        with self._lock:
            conn = self._live()
            first, last = prints[0].number, prints[-1].number
            known = {
                number: (bytes(rows), bytes(digest))
                for number, rows, digest in conn.execute(
                    "SELECT batch, rows, digest FROM plan WHERE batch BETWEEN ? AND ?",
                    (min(first, last), max(first, last)),
                )
            }
            new = []
            for print_ in prints:
                seen = known.get(print_.number)
                if seen is None:
                    new.append((print_.number, print_.rows, print_.digest))
                elif seen != (print_.rows, print_.digest):
                    raise _data_differs(self.path, print_, seen[0])
            if new:
                self._run(lambda c: c.executemany("INSERT INTO plan VALUES (?, ?, ?)", new))
            self.frontier = max(self.frontier, last)
            self._checked = max(self._checked, first, last)

    @property
    def verified(self) -> bool:
        """Whether this run has planned (so checked) every batch the journal knew when it
        was opened: until then a resumed run sends none of them."""
        return self._checked >= self.initial.frontier

    def end_of_plan(self) -> None:
        """The run planned its last chunk: a journal that knows more batches than this send
        has was made for other data (:class:`JournalMismatchError`)."""
        if not self.verified:
            raise JournalMismatchError(
                self.path,
                "data",
                f"it planned {self.initial.frontier + 1:,} batches, this send "
                f"{self._checked + 1:,}",
            )

    def sending(
        self,
        batch: int,
        positions: Sequence[int] | np.ndarray[Any, Any],
        *,
        attempt: int,
        digest: bytes | None = None,
    ) -> None:
        """Record that a request for ``positions`` of ``batch`` is about to go out (call it
        right before posting; it is committed when this returns). ``digest``: the body's
        MD5 (the request's ``Content-MD5``, decoded)."""
        self._write(
            "INSERT INTO log (kind, batch, rows, attempt, digest, at) VALUES (?, ?, ?, ?, ?, ?)",
            (store.SENDING, batch, pack_positions(positions), attempt, digest, self.clock()),
        )

    def settled(
        self,
        positions: Sequence[int] | np.ndarray[Any, Any],
        status: Status,
        reason: str | None,
        *,
        batch: int,
        request_id: str | None = None,
    ) -> None:
        """Record the final status of rows of ``batch`` (as ``ResultBuilder.settle``)."""
        if status == "dry_run":
            raise ValueError("a dry run is not journaled")
        self._write(
            "INSERT INTO log (kind, batch, rows, status, request_id, reason, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                store.SETTLED,
                batch,
                pack_positions(positions),
                CODES[status],
                request_id,
                reason,
                self.clock(),
            ),
        )

    def rejected(self, rejected: Mapping[int, str]) -> None:
        """Record rows rejected before any request (as ``ResultBuilder.reject``); rows the
        journal had rejected already when opened are not written again."""
        where = np.fromiter(rejected, dtype=np.int64, count=len(rejected))
        if len(where):
            where = np.sort(where[self.initial.status[where] != REJECTED])
        if not len(where):
            return
        reasons = json.dumps([rejected[p] for p in where.tolist()], ensure_ascii=False)
        self._write(
            "INSERT INTO log (kind, rows, reason, at) VALUES (?, ?, ?, ?)",
            (store.REJECTED_ROWS, pack_positions(where), reasons, self.clock()),
        )

    def state(self) -> JournalState:
        """The journal's state now (replays the log: ~0.1 s per million rows)."""
        with self._lock:
            return self._read_state()

    def close(self) -> None:
        """Write that the run ended and close the file (idempotent)."""
        with self._lock:
            conn = self._conn
            if conn is None:
                return
            try:
                conn.execute(
                    "INSERT INTO log (kind, at) VALUES (?, ?)", (store.CLOSED, self.clock())
                )
            finally:
                self._conn = None
                conn.close()
                _release(self._lock_file)
                self._lock_file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<Journal {self.path} ({state}, {self.total:,} rows)>"

    # ------------------------------------------------------------------ internals

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(self.path, "is closed")
        return self._conn

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        """One INSERT: in autocommit mode, its own transaction, committed on return."""
        import sqlite3

        with self._lock:
            conn = self._live()
            try:
                conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise JournalError(self.path, f"cannot be written ({exc})") from None

    def _run(self, action: Callable[[sqlite3.Connection], object]) -> None:
        """One write, its own transaction (lock held); a failure is a :class:`JournalError`."""
        import sqlite3

        conn = self._live()
        try:
            with transaction(conn):
                action(conn)
        except sqlite3.Error as exc:
            raise JournalError(self.path, f"cannot be written ({exc})") from None

    def _read_state(self) -> JournalState:
        return read_state(self.path, self._live())[0]


def _release(lock: IO[bytes] | None) -> None:
    if lock is not None:
        lock.close()  # closing the file drops the flock


def _data_differs(path: str, print_: BatchPrint, rows_was: bytes) -> JournalMismatchError:
    rows = store.unpack_positions(print_.rows)
    span = f"rows {rows[0]:,}-{rows[-1]:,}" if len(rows) else "no rows"
    what = "other rows" if rows_was != print_.rows else "other events"
    return JournalMismatchError(
        path,
        "data",
        f"batch {print_.number} ({span}) holds {what} than this send's",
        batch=print_.number,
    )
