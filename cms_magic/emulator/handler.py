"""One HTTP/1.1 request on a connection of :class:`~cms_magic.emulator.server.EmulatorServer`.

:class:`RequestHandler` reads a request whose head has already arrived, picks its route
(:meth:`Routes.route <cms_magic.emulator.routes.Routes.route>`), reads the body within the
limits (a body too large, or framed in a way the emulator does not read, is refused before
it is read), asks the route's handler, acts out injected connection faults and writes the
whole answer in one ``sendall``. The admin endpoints are answered here
(:func:`~cms_magic.emulator.admin.admin_answer`, with the server's admin token).
"""

from __future__ import annotations

import contextlib
import http
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Final, Protocol, cast

from cms_magic.emulator.admin import admin_answer
from cms_magic.emulator.connections import Connection
from cms_magic.emulator.routes import Route, Routes
from cms_magic.emulator.service import Emulator, EmulatorResponse, json_response
from cms_magic.emulator.validation import declared_length, header_pairs, show, too_large

__all__ = [
    "SERVER_VERSION",
    "RequestHandler",
    "ServerLike",
    "head_bytes",
    "head_too_large",
    "too_many_connections",
]


class ServerLike(Protocol):
    """What a request needs of its server (:class:`~cms_magic.emulator.server.EmulatorServer`)."""

    @property
    def emulator(self) -> Emulator: ...
    @property
    def routes(self) -> Routes: ...
    @property
    def stopping(self) -> threading.Event: ...
    @property
    def admin_token(self) -> str: ...


_LINGER_SECONDS: Final = 2.0
_LINGER_MAX_BYTES: Final = 16 * 1024 * 1024
_ADMIN_MAX_BODY: Final = 64 * 1024
SERVER_VERSION: Final = "cms_magic-emulator"


class RequestHandler(BaseHTTPRequestHandler):
    """One request of a keep-alive HTTP/1.1 connection; each response is one ``sendall``.

    Made per request by :meth:`EmulatorServer._handle_connection` (not by socketserver):
    the connection's head has already arrived, so reading it never waits on the client.
    """

    protocol_version = "HTTP/1.1"
    server_version = SERVER_VERSION
    server: ServerLike  # type: ignore[assignment]

    def __init__(self, connection: Connection, server: ServerLike) -> None:
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
        route = self.server.routes.route(self.command, self.path, self.headers.items())
        if route == "admin":
            self._admin()
        else:
            self._service(route)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    # ----------------------------------------------------------------- the service

    def _service(self, route: Route) -> None:
        """Read the body (within the limits) and answer by the route's handler."""
        emulator = self.server.emulator
        routes = self.server.routes
        headers = self.headers.items()
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            msg = (
                f"Transfer-Encoding {encoding.strip()!r} is not supported: "
                "send the body with a Content-Length header"
            )
            self._refuse_unread(routes.reject(route, 400, msg, headers=headers))
            return
        raw_length = self.headers.get("Content-Length")
        length = 0 if raw_length is None else declared_length(raw_length)
        if length is None:
            msg = f"header Content-Length must be a byte count, got {show(raw_length)}"
            self._refuse_unread(routes.reject(route, 400, msg, headers=headers))
            return
        if length > emulator.max_body_bytes:
            msg = too_large(length, emulator.max_body_bytes, declared=True)
            self._refuse_unread(routes.reject(route, 400, msg, headers=headers, nbytes=length))
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return
        answer = routes.answer(route, self.command, self.path, headers, body)
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
        head = head_bytes(answer, close=self.close_connection)
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


def head_bytes(answer: EmulatorResponse, *, close: bool) -> bytes:
    """The status line and headers of ``answer`` (``Connection: close`` if ``close``)."""
    lines = [f"HTTP/1.1 {answer.status} {http.HTTPStatus(answer.status).phrase}"]
    lines.append(f"Server: {SERVER_VERSION}")
    lines.extend(f"{name}: {value}" for name, value in answer.headers.items())
    lines.append(f"Content-Length: {len(answer.body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def too_many_connections() -> bytes:
    msg = "too many connections to this emulator at once; retry after 1 s"
    answer = json_response(503, {"code": "503", "msg": msg}, time.time())
    answer.headers["Retry-After"] = "1"
    return head_bytes(answer, close=True) + answer.body


def head_too_large() -> bytes:
    msg = "the request head is over 65536 bytes: send fewer or shorter headers"
    answer = json_response(431, {"code": "431", "msg": msg}, time.time())
    return head_bytes(answer, close=True) + answer.body
