"""The emulator served over HTTP/1.1 on loopback, in threads: :class:`EmulatorServer`.

:func:`serve` starts one around a new :class:`~cms_magic.emulator.service.Emulator`
(the handler, which does all the checking); ``python -m cms_magic.emulator`` runs
one until Ctrl-C (:mod:`cms_magic.emulator.cli`). The server adds only what
sockets need: keep-alive, one ``sendall`` per response, refusing a body too
large to read before reading it, acting out injected connection resets and
delays, and the admin endpoints under :data:`ADMIN_PREFIX`
(:mod:`cms_magic.emulator.admin`: all but health want the admin token or a signature).

What a crowd of clients may cost is bounded (:mod:`cms_magic.emulator.connections`):
at most ``max_handlers`` threads handle requests, a connection holds none while its
request head arrives, a head must arrive within ``header_timeout``, and at most
``max_connections`` connections are open. It listens on loopback unless
``allow_remote=True`` (:func:`check_bind_host`).
"""

from __future__ import annotations

import contextlib
import http
import socket
import struct
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import urlsplit

from cms_magic.credentials.static import Credentials
from cms_magic.emulator.admin import ADMIN_PREFIX, ADMIN_TOKEN_HEADER, admin_answer, new_admin_token
from cms_magic.emulator.binding import (
    RemoteBindWarning,
    check_bind_host,
    check_count,
    check_seconds,
)
from cms_magic.emulator.connections import Connection, ConnectionHub
from cms_magic.emulator.service import Emulator, EmulatorResponse, demo_credentials, json_response
from cms_magic.emulator.store import Event, RequestRecord
from cms_magic.emulator.validation import declared_length, header_pairs, show, too_large
from cms_magic.errors import EmulatorStoppedError
from cms_magic.protocol import DEFAULT_QPS

__all__ = [
    "ADMIN_PREFIX",
    "ADMIN_TOKEN_HEADER",
    "EmulatorServer",
    "EmulatorStoppedError",
    "RemoteBindWarning",
    "check_bind_host",
    "demo_credentials",
    "serve",
]

#: After refusing a body unread, read and discard at most this much for this long, so
#: the client sees the 400 instead of a connection reset.
_LINGER_SECONDS: Final = 2.0
_LINGER_MAX_BYTES: Final = 16 * 1024 * 1024
_ADMIN_MAX_BODY: Final = 64 * 1024
_SERVER_VERSION: Final = "cms_magic-emulator"


class _Handler(BaseHTTPRequestHandler):
    """One request of a keep-alive HTTP/1.1 connection; each response is one ``sendall``.

    Made per request by :meth:`EmulatorServer._handle_connection` (not by socketserver):
    the connection's head has already arrived, so reading it never waits on the client.
    """

    protocol_version = "HTTP/1.1"
    server_version = _SERVER_VERSION
    server: EmulatorServer  # type: ignore[assignment]

    def __init__(self, connection: Connection, server: EmulatorServer) -> None:
        # Not BaseRequestHandler.__init__, which would handle the connection to its end.
        self.server = server
        self.request = self.connection = connection.sock
        self.client_address = connection.address
        self.rfile = cast(Any, connection.reader)
        self.wfile = cast(Any, connection.writer)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the emulator's own log is :meth:`Emulator.requests`."""

    def handle_expect_100(self) -> bool:
        """Say ``100 Continue`` only for a body the emulator will read."""
        length = declared_length(self.headers.get("Content-Length"))
        if length is not None and length <= self.server.emulator.max_body_bytes:
            self.connection.sendall(f"{self.protocol_version} 100 Continue\r\n\r\n".encode())
        return True

    def _dispatch(self) -> None:
        if urlsplit(self.path).path.startswith(ADMIN_PREFIX):
            self._admin()
        else:
            self._upload()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    # ----------------------------------------------------------------- upload

    def _upload(self) -> None:
        emulator = self.server.emulator
        headers = self.headers.items()
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            msg = (
                f"Transfer-Encoding {encoding.strip()!r} is not supported: "
                "send the body with a Content-Length header"
            )
            self._refuse_unread(emulator.reject(400, msg, headers=headers))
            return
        raw_length = self.headers.get("Content-Length")
        length = 0 if raw_length is None else declared_length(raw_length)
        if length is None:
            msg = f"header Content-Length must be a byte count, got {show(raw_length)}"
            self._refuse_unread(emulator.reject(400, msg, headers=headers))
            return
        if length > emulator.max_body_bytes:
            msg = too_large(length, emulator.max_body_bytes, declared=True)
            self._refuse_unread(emulator.reject(400, msg, headers=headers, nbytes=length))
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return
        answer = emulator.handle(self.command, self.path, headers, body)
        if answer.fault in ("reset_before", "reset_after"):
            self._reset_connection()
            return
        if answer.fault == "delay":
            self.server.stopping.wait(emulator.faults.delay_seconds)
        self._send(answer)

    def _reset_connection(self) -> None:
        """Drop the connection with a TCP reset, sending no answer (an injected fault)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    # ----------------------------------------------------------------- admin

    def _admin(self) -> None:
        emulator = self.server.emulator
        raw_length = self.headers.get("Content-Length")
        length = 0 if raw_length is None else declared_length(raw_length)
        if (
            length is None
            or length > _ADMIN_MAX_BODY
            or self.headers.get("Transfer-Encoding") is not None
        ):
            msg = "admin endpoints take no body (or a small one with a Content-Length)"
            self._refuse_unread(json_response(400, {"code": "400", "msg": msg}, emulator.clock()))
            return
        payload = self.rfile.read(length) if length else b""
        if len(payload) < length:  # the client went away mid-body
            self.close_connection = True
            return
        answer = admin_answer(
            emulator,
            self.command,
            self.path,
            header_pairs(self.headers.items()),
            payload,
            admin_token=self.server.admin_token,
        )
        self._send(answer)

    # ----------------------------------------------------------------- writing

    def _send(self, answer: EmulatorResponse, *, close: bool = False) -> None:
        """Write the complete response (status line, headers, body) in one ``sendall``."""
        if close:
            self.close_connection = True
        head = _head_bytes(answer, close=self.close_connection)
        self.connection.sendall(head if self.command == "HEAD" else head + answer.body)

    def _refuse_unread(self, answer: EmulatorResponse) -> None:
        """Answer without reading the body, then close after a short lingering drain.

        Closing a socket with unread input makes the kernel send a reset, which can
        reach the client before it reads the answer; draining (and discarding) what
        the client still sends, for a bounded time, lets it see the 400.
        """
        self._send(answer, close=True)
        connection = self.connection
        deadline = time.monotonic() + _LINGER_SECONDS
        drained = 0
        try:
            connection.shutdown(socket.SHUT_WR)
            while drained < _LINGER_MAX_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                connection.settimeout(remaining)
                chunk = connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass


def _head_bytes(answer: EmulatorResponse, *, close: bool) -> bytes:
    """The status line and headers of ``answer`` (``Connection: close`` if ``close``)."""
    lines = [f"HTTP/1.1 {answer.status} {http.HTTPStatus(answer.status).phrase}"]
    lines.append(f"Server: {_SERVER_VERSION}")
    lines.extend(f"{name}: {value}" for name, value in answer.headers.items())
    lines.append(f"Content-Length: {len(answer.body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class EmulatorServer:
    """An :class:`Emulator` served over HTTP/1.1 on ``host:port`` (port 0: any free one).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    Besides the upload path it answers admin endpoints (:mod:`cms_magic.emulator.admin`):
    ``GET /_emulator/health`` for anyone; ``GET /_emulator/events``,
    ``GET /_emulator/requests``, ``POST /_emulator/reset`` and ``GET|POST /_emulator/faults``
    for a caller that sends :attr:`admin_token` in header ``x-emulator-admin-token`` or
    signs the request with an accepted key.

    Limits: ``max_handlers`` threads handle requests (started as needed); at most
    ``max_connections`` connections are open (one more is answered 503 and closed);
    a request head must arrive within ``header_timeout`` seconds; an idle keep-alive
    connection, or a body, may take ``request_timeout``. ``host`` must be loopback
    unless ``allow_remote`` (:func:`check_bind_host`; a :class:`RemoteBindWarning` then).
    """

    request_queue_size = 128

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        emulator: Emulator | None = None,
        request_timeout: float = 30.0,
        header_timeout: float = 10.0,
        max_handlers: int = 64,
        max_connections: int = 256,
        allow_remote: bool = False,
    ) -> None:
        warning = check_bind_host(host, allow_remote=allow_remote)
        check_count("max_handlers", max_handlers)
        check_count("max_connections", max_connections)
        check_seconds("header_timeout", header_timeout)
        check_seconds("request_timeout", request_timeout)
        self.emulator = emulator if emulator is not None else Emulator()
        self.request_timeout = request_timeout
        self.header_timeout = header_timeout
        self._admin_token = new_admin_token()
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False
        #: Set by :meth:`stop`; injected delays end early when it is set.
        self.stopping = threading.Event()
        if warning is not None:
            warnings.warn(warning, RemoteBindWarning, stacklevel=2)
        bind_host = host.strip().strip("[]")
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.server_address: tuple[Any, ...] = (bind_host, port)
        try:
            self.server_bind()
            self.socket.listen(self.request_queue_size)
        except BaseException:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self._hub = ConnectionHub(
            self.socket,
            self._handle_connection,
            refusal=_too_many_connections,
            too_large_head=_head_too_large,
            max_handlers=max_handlers,
            max_connections=max_connections,
            header_timeout=header_timeout,
            idle_timeout=request_timeout,
            name=f"cms_magic emulator {self.url}",
        )

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._started else "not started"
        return f"EmulatorServer({self.url!r}, {state})"

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self.server_address[:2]
        host = host.decode("ascii") if isinstance(host, bytes) else str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def credentials(self) -> Credentials:
        """The first AccessKey pair the emulator accepts."""
        return self.emulator.credentials[0]

    @property
    def admin_token(self) -> str:
        """The token the admin endpoints want in ``x-emulator-admin-token`` (new per server)."""
        return self._admin_token

    @property
    def max_handlers(self) -> int:
        """At most this many threads handle requests."""
        return self._hub.max_handlers

    @property
    def max_connections(self) -> int:
        """At most this many connections are open at once."""
        return self._hub.max_connections

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the server has accepted so far (refused ones too)."""
        return self._hub.accepted

    @property
    def connections_open(self) -> int:
        """How many connections are open now."""
        return self._hub.open

    @property
    def handler_threads(self) -> int:
        """How many handler threads have been started (at most :attr:`max_handlers`)."""
        return self._hub.handler_threads

    def events(self) -> list[Event]:
        """The accepted events; see :meth:`Emulator.events`."""
        return self.emulator.events()

    def requests(self) -> list[RequestRecord]:
        """The request log; see :meth:`Emulator.requests`."""
        return self.emulator.requests()

    def reset(self) -> None:
        """Forget events and requests, refill quotas; see :meth:`Emulator.reset`."""
        self.emulator.reset()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> EmulatorServer:
        """Serve in daemon threads; returns ``self``. Starting twice is harmless."""
        with self._state_lock:
            if self._stopped:
                raise EmulatorStoppedError(
                    "this EmulatorServer was stopped", hint="start a new one with serve()"
                )
            if not self._started:
                self._started = True
                self._hub.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and open connections, join the threads. Idempotent."""
        with self._state_lock:
            if self._stopped:
                return
            self._stopped = True
            self.stopping.set()
        self._hub.stop()  # also when never started: it holds a wake-up socket pair
        self.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- sockets

    def server_bind(self) -> None:
        """Bind ``server_address`` (no :func:`socket.getfqdn`, which can stall on DNS)."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_close(self) -> None:
        """Close the listening socket."""
        self.socket.close()

    def fileno(self) -> int:
        return self.socket.fileno()

    def _handle_connection(self, connection: Connection) -> bool:
        """Handle the request whose head has arrived; True to keep the connection open."""
        handler = _Handler(connection, self)
        try:
            handler.handle_one_request()
        except OSError:  # the client went away
            return False
        except Exception:
            print(f"cms_magic emulator: error handling a request from {connection.address}")
            traceback.print_exc(file=sys.stderr)
            return False
        return not handler.close_connection


def _too_many_connections() -> bytes:
    msg = "too many connections to this emulator at once; retry after 1 s"
    answer = json_response(503, {"code": "503", "msg": msg}, time.time())
    answer.headers["Retry-After"] = "1"
    return _head_bytes(answer, close=True) + answer.body


def _head_too_large() -> bytes:
    msg = "the request head is over 65536 bytes: send fewer or shorter headers"
    answer = json_response(431, {"code": "431", "msg": msg}, time.time())
    return _head_bytes(answer, close=True) + answer.body


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    credentials: Credentials | Iterable[Credentials] | None = None,
    qps: float = DEFAULT_QPS,
    request_timeout: float = 30.0,
    header_timeout: float = 10.0,
    max_handlers: int = 64,
    max_connections: int = 256,
    allow_remote: bool = False,
    **emulator_kwargs: Any,
) -> EmulatorServer:
    """Start an emulator on ``host:port`` in daemon threads and return its server.

    ``with serve() as emu:`` stops it on exit. ``host`` must be loopback unless
    ``allow_remote=True`` (then a :class:`RemoteBindWarning`). The limits are
    :class:`EmulatorServer`'s. Other keyword arguments go to :class:`Emulator`
    (``clock``, ``monotonic``, ``max_body_bytes``, ...).
    """
    check_bind_host(host, allow_remote=allow_remote)  # before building anything
    emulator = Emulator(credentials, qps=qps, **emulator_kwargs)
    server = EmulatorServer(
        host,
        port,
        emulator=emulator,
        request_timeout=request_timeout,
        header_timeout=header_timeout,
        max_handlers=max_handlers,
        max_connections=max_connections,
        allow_remote=allow_remote,
    )
    return server.start()
