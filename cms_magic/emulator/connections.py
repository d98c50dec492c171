"""How the emulator's server holds connections: one reader thread, a bounded pool of handlers.

A thread per connection lets any process on the machine make the emulator start a
thread per socket it opens (800 slow clients were 802 threads). Here a connection
costs a socket and a small buffer until its request head has fully arrived:

- one *reader* thread (:class:`ConnectionHub`) accepts connections and reads
  request heads with a selector, never blocking on a client; a head must arrive
  within ``header_timeout`` (and an idle keep-alive connection may wait at most
  ``idle_timeout`` for its next one), else the connection is closed;
- a complete head goes to a pool of at most ``max_handlers`` threads, started
  only when needed, which read the body (within ``idle_timeout`` in all) and
  answer; a keep-alive connection then goes back to the reader;
- at most ``max_connections`` connections are open at once: one more is answered
  ``503`` with ``Retry-After: 1`` and closed, without being read.

The request itself is handled by whatever ``handle`` the owner gives: a function
of a :class:`Connection` that says whether to keep it open.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = ["Connection", "ConnectionHub", "HeadReader"]

#: A request head (request line and headers) longer than this is refused with 431.
MAX_HEAD_BYTES: Final = 64 * 1024
_RECV_BYTES: Final = 65536
_HEAD_ENDS: Final = (b"\r\n\r\n", b"\n\n")


class HeadReader:
    """The file a request handler reads: the buffered bytes first, then the socket.

    ``readline`` and ``read`` are what :class:`http.server.BaseHTTPRequestHandler`
    needs. Bytes beyond the current request (a pipelined next one) stay buffered
    for the next handler. A ``read`` that needs the socket ends within ``timeout``
    seconds in all, however slowly the client trickles (``TimeoutError``).
    """

    __slots__ = ("buffer", "sock", "timeout")

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buffer = bytearray()

    def head_complete(self) -> bool:
        return any(end in self.buffer for end in _HEAD_ENDS)

    def readline(self, limit: int = -1) -> bytes:
        deadline = time.monotonic() + self.timeout
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0 and (limit < 0 or end < limit):
                return self._take(end + 1)
            if limit >= 0 and len(self.buffer) >= limit:
                return self._take(limit)
            if not self._fill(deadline):
                return self._take(len(self.buffer))

    def read(self, size: int = -1) -> bytes:
        deadline = time.monotonic() + self.timeout
        while size < 0 or len(self.buffer) < size:
            if not self._fill(deadline):
                break
        return self._take(len(self.buffer) if size < 0 else min(size, len(self.buffer)))

    def _take(self, n: int) -> bytes:
        taken = bytes(self.buffer[:n])
        del self.buffer[:n]
        return taken

    def _fill(self, deadline: float) -> bool:
        """Receive more; False at the end of the stream. ``TimeoutError`` past ``deadline``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the client sent too slowly")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(_RECV_BYTES)
        self.buffer += chunk
        return bool(chunk)


class SocketWriter:
    """The file a request handler writes: every write is one ``sendall``."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> int:
        self.sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""


class Connection:
    """One accepted connection: its socket, peer address, reader and reading deadline."""

    __slots__ = ("address", "deadline", "idle", "reader", "sock", "writer")

    def __init__(self, sock: socket.socket, address: Any, timeout: float) -> None:
        self.sock = sock
        self.address = address
        self.reader = HeadReader(sock, timeout)
        self.writer = SocketWriter(sock)
        self.deadline = 0.0
        self.idle = True  # no byte of the next head has arrived yet


class ConnectionHub:
    """Accept on ``listener``, read heads in one thread, hand complete ones to ``handle``.

    ``handle(connection)`` runs in a pool thread and returns True to keep the
    connection open for another request. ``refusal`` is the raw answer sent to a
    connection over ``max_connections``.
    """

    def __init__(
        self,
        listener: socket.socket,
        handle: Callable[[Connection], bool],
        *,
        refusal: Callable[[], bytes],
        max_handlers: int,
        max_connections: int,
        header_timeout: float,
        idle_timeout: float,
        too_large_head: Callable[[], bytes],
        name: str,
    ) -> None:
        self._listener = listener
        self._handle = handle
        self._refusal = refusal
        self._too_large_head = too_large_head
        self.max_handlers = max_handlers
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self._name = name
        self._lock = threading.Lock()
        self._open: set[Connection] = set()
        self._accepted = 0
        self._work: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._handlers: list[threading.Thread] = []
        self._free_handlers = 0  # started handlers not busy with a connection
        self._queued = 0  # connections put on the work queue and not yet taken
        self._returned: collections.deque[Connection] = collections.deque()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None

    # ----------------------------------------------------------------- counts

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._open)

    @property
    def handler_threads(self) -> int:
        with self._lock:
            return len(self._handlers)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._reader = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._reader.start()

    def stop(self) -> None:
        """Stop accepting, close every connection, end and join every thread."""
        self._stopping.set()
        self._wake()
        if self._reader is not None:
            self._reader.join()
        with self._lock:
            connections = list(self._open)
            handlers = list(self._handlers)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.sock.shutdown(socket.SHUT_RDWR)
        for _ in handlers:
            self._work.put(None)
        for handler in handlers:
            handler.join(timeout=5)
        for connection in connections:
            self._close(connection)
        self._wake_read.close()
        self._wake_write.close()

    # ----------------------------------------------------------------- the reader thread

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        selector.register(self._wake_read, selectors.EVENT_READ, None)
        waiting: set[Connection] = set()
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                timeout = min((c.deadline for c in waiting), default=now + 0.5) - now
                for key, _ in selector.select(max(0.0, min(timeout, 0.5))):
                    if key.fileobj is self._listener:
                        self._accept(selector, waiting)
                    elif key.fileobj is self._wake_read:
                        with contextlib.suppress(OSError):
                            self._wake_read.recv(4096)
                    else:
                        self._receive(key.data, selector, waiting)
                while self._returned:
                    self._wait_for_head(self._returned.popleft(), selector, waiting)
                now = time.monotonic()
                for connection in [c for c in waiting if c.deadline <= now]:
                    self._drop(connection, selector, waiting)
        finally:
            for connection in waiting:
                self._drop(connection, selector, set())
            selector.close()

    def _accept(self, selector: selectors.BaseSelector, waiting: set[Connection]) -> None:
        for _ in range(64):  # a burst at a time, then serve the others
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the listener was closed, or out of descriptors
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._accepted += 1
                full = len(self._open) >= self.max_connections
                connection = Connection(sock, address, self.idle_timeout)
                if not full:
                    self._open.add(connection)
            if full:
                _refuse(sock, self._refusal())
                continue
            connection.deadline = time.monotonic() + min(self.header_timeout, self.idle_timeout)
            connection.idle = False
            waiting.add(connection)
            selector.register(sock, selectors.EVENT_READ, connection)

    def _receive(
        self, connection: Connection, selector: selectors.BaseSelector, waiting: set[Connection]
    ) -> None:
        try:
            connection.sock.settimeout(0)
            chunk = connection.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._drop(connection, selector, waiting)
            return
        connection.reader.buffer += chunk
        if connection.idle:  # the first byte of a head: it must be complete soon
            connection.idle = False
            connection.deadline = min(connection.deadline, time.monotonic() + self.header_timeout)
        if connection.reader.head_complete():
            selector.unregister(connection.sock)
            waiting.discard(connection)
            self._dispatch(connection)
        elif len(connection.reader.buffer) > MAX_HEAD_BYTES:
            selector.unregister(connection.sock)
            waiting.discard(connection)
            _refuse(connection.sock, self._too_large_head())
            self._forget(connection)

    def _wait_for_head(
        self, connection: Connection, selector: selectors.BaseSelector, waiting: set[Connection]
    ) -> None:
        """A connection back from its handler: wait for its next head (or handle it now)."""
        if self._stopping.is_set():
            self._close(connection)
            return
        if connection.reader.head_complete():  # pipelined: already here
            self._dispatch(connection)
            return
        now = time.monotonic()
        connection.idle = not connection.reader.buffer
        connection.deadline = now + self.idle_timeout
        if not connection.idle:
            connection.deadline = min(connection.deadline, now + self.header_timeout)
        waiting.add(connection)
        selector.register(connection.sock, selectors.EVENT_READ, connection)

    def _drop(
        self, connection: Connection, selector: selectors.BaseSelector, waiting: set[Connection]
    ) -> None:
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(connection.sock)
        waiting.discard(connection)
        self._close(connection)

    # ----------------------------------------------------------------- the handlers

    def _dispatch(self, connection: Connection) -> None:
        """Queue ``connection`` for a handler; start one if none is free and the cap allows."""
        with self._lock:
            if self._free_handlers <= self._queued and len(self._handlers) < self.max_handlers:
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name} handler", daemon=True
                )
                self._handlers.append(thread)
                self._free_handlers += 1  # counted free from the start: it will take this one
                thread.start()
            self._queued += 1
        self._work.put(connection)

    def _serve(self) -> None:
        while True:
            connection = self._work.get()
            if connection is None:
                return
            with self._lock:
                self._free_handlers -= 1
                self._queued -= 1
            keep = False
            try:
                connection.sock.settimeout(self.idle_timeout)
                keep = self._handle(connection)
            except Exception:  # the client went away (OSError); the owner reports the rest
                keep = False
            finally:
                with self._lock:
                    self._free_handlers += 1  # before the connection can come back
                if keep and not self._stopping.is_set():
                    self._returned.append(connection)
                    self._wake()
                else:
                    self._close(connection)

    # ----------------------------------------------------------------- helpers

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake is pending anyway) or closed
            self._wake_write.send(b"\0")

    def _forget(self, connection: Connection) -> None:
        with self._lock:
            self._open.discard(connection)

    def _close(self, connection: Connection) -> None:
        self._forget(connection)
        with contextlib.suppress(OSError):
            connection.sock.close()


def _refuse(sock: socket.socket, answer: bytes) -> None:
    """Send ``answer`` if the socket takes it at once, then close without reading."""
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        sock.send(answer)
        sock.shutdown(socket.SHUT_WR)
    with contextlib.suppress(OSError):
        sock.close()
