"""The emulator served over HTTP/1.1 on 127.0.0.1, in a thread: :class:`EmulatorServer`.

:func:`serve` starts one around a new :class:`~cms_magic.emulator.service.Emulator`
(the handler, which does all the checking); ``python -m cms_magic.emulator`` runs
one until Ctrl-C (:mod:`cms_magic.emulator.cli`). The server adds only what
sockets need: keep-alive, one ``sendall`` per response, refusing a body too
large to read before reading it, acting out injected connection resets and
delays, and the admin endpoints under :data:`ADMIN_PREFIX`::

    GET  /_emulator/health     {"ok": true}
    GET  /_emulator/events     the accepted events
    GET  /_emulator/requests   the request log
    POST /_emulator/reset      forget both, refill the quota
    GET  /_emulator/faults     the faults in force
    POST /_emulator/faults     set them (a JSON object, see Faults)
"""

from __future__ import annotations

import contextlib
import http
import importlib
import json
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

from cms_magic.credentials.static import Credentials
from cms_magic.emulator.faults import Faults
from cms_magic.emulator.service import Emulator, EmulatorResponse, demo_credentials, json_response
from cms_magic.emulator.store import Event, RequestRecord
from cms_magic.emulator.validation import declared_length, show, too_large
from cms_magic.errors import CmsError, ConfigError
from cms_magic.protocol import DEFAULT_QPS

__all__ = [
    "ADMIN_PREFIX",
    "EmulatorServer",
    "EmulatorStoppedError",
    "demo_credentials",
    "serve",
]

#: Paths under this prefix are the server's admin endpoints, not part of the service.
ADMIN_PREFIX: Final = "/_emulator/"

#: After refusing a body unread, read and discard at most this much for this long, so
#: the client sees the 400 instead of a connection reset.
_LINGER_SECONDS: Final = 2.0
_LINGER_MAX_BYTES: Final = 16 * 1024 * 1024
_ADMIN_MAX_BODY: Final = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive front of :class:`Emulator`; each response is one ``sendall``."""

    protocol_version = "HTTP/1.1"
    server_version = "cms_magic-emulator"
    timeout = 30  # seconds; slow or half-open clients are dropped
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

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
        now = emulator.clock()
        raw_length = self.headers.get("Content-Length")
        length = 0 if raw_length is None else declared_length(raw_length)
        if (
            length is None
            or length > _ADMIN_MAX_BODY
            or self.headers.get("Transfer-Encoding") is not None
        ):
            msg = "admin endpoints take no body (or a small one with a Content-Length)"
            self._refuse_unread(json_response(400, {"code": "400", "msg": msg}, now))
            return
        payload = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path == "/_emulator/faults" and self.command == "POST":
            try:
                faults = Faults.from_dict(json.loads(payload or b"{}"))
            except (ValueError, ConfigError) as exc:  # not JSON, or faults that cannot work
                self._send(json_response(400, {"code": "400", "msg": str(exc)}, now))
                return
            emulator.set_faults(faults)
            self._send(json_response(200, faults.to_dict(), now))
            return
        routes: dict[str, tuple[str, Callable[[], object]]] = {
            "/_emulator/health": ("GET", lambda: {"ok": True}),
            "/_emulator/events": ("GET", emulator.events),
            "/_emulator/requests": ("GET", emulator.requests),
            "/_emulator/reset": ("POST", lambda: _reset(emulator)),
            "/_emulator/faults": ("GET", emulator.faults.to_dict),
        }
        route = routes.get(path)
        if route is None:
            known = ", ".join(f"{m} {p}" for p, (m, _) in routes.items())
            msg = f"no admin endpoint {path!r}; the admin endpoints are: {known}"
            self._send(json_response(404, {"code": "404", "msg": msg}, now))
            return
        method, action = route
        if self.command != method and not (self.command == "HEAD" and method == "GET"):
            msg = f"use {method} {path}, not {self.command}"
            answer = json_response(405, {"code": "405", "msg": msg}, now)
            answer.headers["Allow"] = method
            self._send(answer)
            return
        self._send(json_response(200, action(), now))

    # ----------------------------------------------------------------- writing

    def _send(self, answer: EmulatorResponse, *, close: bool = False) -> None:
        """Write the complete response (status line, headers, body) in one ``sendall``."""
        if close:
            self.close_connection = True
        lines = [f"{self.protocol_version} {answer.status} {http.HTTPStatus(answer.status).phrase}"]
        lines.append(f"Server: {self.server_version}")
        lines.extend(f"{name}: {value}" for name, value in answer.headers.items())
        lines.append(f"Content-Length: {len(answer.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
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


def _reset(emulator: Emulator) -> dict[str, bool]:
    emulator.reset()
    return {"ok": True}


class EmulatorStoppedError(CmsError, RuntimeError):
    """:meth:`EmulatorServer.start` on a server that was stopped (a server runs once)."""


class EmulatorServer(ThreadingHTTPServer):
    """An :class:`Emulator` served over HTTP/1.1 on ``host:port`` (port 0: any free one).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    Besides the upload path it answers admin endpoints: ``GET /_emulator/events``,
    ``GET /_emulator/requests``, ``POST /_emulator/reset``, ``GET /_emulator/health`` and
    ``GET|POST /_emulator/faults``.
    ``request_timeout`` drops a connection that stays silent that long.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        emulator: Emulator | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self.emulator = emulator if emulator is not None else Emulator()
        self.request_timeout = request_timeout
        self._state_lock = threading.Lock()
        self._open_connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        self._connections_accepted = 0
        self._thread: threading.Thread | None = None
        self._stopped = False
        #: Set by :meth:`stop`; injected delays end early when it is set.
        self.stopping = threading.Event()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._thread else "not started"
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
    def connections_accepted(self) -> int:
        """How many TCP connections the server has accepted so far."""
        with self._state_lock:
            return self._connections_accepted

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
        """Serve in a daemon thread; returns ``self``. Starting twice is harmless."""
        with self._state_lock:
            if self._stopped:
                raise EmulatorStoppedError(
                    "this EmulatorServer was stopped", hint="start a new one with serve()"
                )
            if self._thread is not None:
                return self
            self._thread = threading.Thread(
                target=self.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"cms_magic emulator {self.url}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and open connections, join the threads. Idempotent."""
        with self._state_lock:
            if self._stopped:
                return
            self._stopped = True
            self.stopping.set()
            thread = self._thread
        if thread is not None:
            self.shutdown()
            thread.join()
        self.server_close()
        with self._state_lock:
            connections = list(self._open_connections)
            handlers = list(self._handler_threads)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        for handler in handlers:
            handler.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- socketserver hooks

    def server_bind(self) -> None:
        """Bind without :func:`socket.getfqdn`, which can stall on a DNS lookup."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host.decode("ascii") if isinstance(host, bytes) else str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection with TCP_NODELAY (else each response waits ~40 ms for an ACK)."""
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._state_lock:
            self._connections_accepted += 1
            self._open_connections.add(connection)
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Handle the connection in a daemon thread that :meth:`stop` can join."""
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="cms_magic emulator connection",
            daemon=True,
        )
        with self._state_lock:
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()]
            self._handler_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._state_lock:
            self._open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else as the stdlib does."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    credentials: Credentials | Iterable[Credentials] | None = None,
    qps: float = DEFAULT_QPS,
    request_timeout: float = 30.0,
    **emulator_kwargs: Any,
) -> EmulatorServer:
    """Start an emulator on ``host:port`` in a daemon thread and return its server.

    ``with serve() as emu:`` stops it on exit. Other keyword arguments go to
    :class:`Emulator` (``clock``, ``monotonic``, ``max_body_bytes``, ...).
    """
    emulator = Emulator(credentials, qps=qps, **emulator_kwargs)
    server = EmulatorServer(host, port, emulator=emulator, request_timeout=request_timeout)
    return server.start()


# --------------------------------------------------------------------------- moved names

#: Names that moved to :mod:`cms_magic.emulator.embedded`, still readable here until
#: every caller imports them from :mod:`cms_magic.emulator`. Looked up on first use:
#: ``embedded`` builds on this module, so importing it here would be a cycle.
_MOVED: Final = {
    "embedded": "cms_magic.emulator.embedded",
    "embedded_running": "cms_magic.emulator.embedded",
    "stop_embedded": "cms_magic.emulator.embedded",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
