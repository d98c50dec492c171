"""The emulator served over HTTP/1.1 on loopback, in threads: :class:`EmulatorServer`.

:func:`serve` starts one around a new :class:`~cms_magic.emulator.service.Emulator`
(the handler, which does all the checking); ``python -m cms_magic.emulator`` runs
one until Ctrl-C (:mod:`cms_magic.emulator.cli`). The server adds only what
sockets need: keep-alive, one ``sendall`` per response, refusing a body too
large to read before reading it, acting out injected connection resets and
delays, and the admin endpoints under :data:`ADMIN_PREFIX`
(:mod:`cms_magic.emulator.admin`: all but health want the admin token or a signature).

One port serves every route (:mod:`cms_magic.emulator.routes`): the upload path, the
admin endpoints, and what credential sources need on loopback, minting into one registry
that the upload check shares:

- STS at :attr:`EmulatorServer.sts_url` (``GET|POST /`` with ``Action=AssumeRole`` /
  ``AssumeRoleWithOIDC`` or ``x-acs-action``; other OpenAPI actions are registered with
  :meth:`EmulatorServer.register`): :mod:`cms_magic.emulator.sts`;
- a credentials URI at :attr:`EmulatorServer.credentials_uri` (``GET /credentials``) and
  ECS instance metadata under :attr:`EmulatorServer.metadata_url` (``/latest/...``, IMDSv2;
  v1 only with ``metadata_v1=True``): :mod:`cms_magic.emulator.endpoints`.

Minted credentials live ``sts_lifetime`` seconds (default 3600);
:attr:`EmulatorServer.minted` says what was minted and how many calls were answered.

What a crowd of clients may cost is bounded (:mod:`cms_magic.emulator.connections`):
at most ``max_handlers`` threads handle requests, a connection holds none while its
request head arrives, a head must arrive within ``header_timeout``, and at most
``max_connections`` connections are open. It listens on loopback unless
``allow_remote=True`` (:func:`check_bind_host`).
"""

from __future__ import annotations

import socket
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from cms_magic.credentials.static import Credentials
from cms_magic.emulator.admin import ADMIN_PREFIX, ADMIN_TOKEN_HEADER, new_admin_token
from cms_magic.emulator.binding import (
    RemoteBindWarning,
    check_bind_host,
    check_count,
    check_seconds,
)
from cms_magic.emulator.connections import Connection, ConnectionHub
from cms_magic.emulator.endpoints import CREDENTIALS_URI_PATH
from cms_magic.emulator.handler import RequestHandler, head_too_large, too_many_connections
from cms_magic.emulator.minted import DEFAULT_LIFETIME_SECONDS, MintedRegistry
from cms_magic.emulator.openapi import Handler
from cms_magic.emulator.routes import DEFAULT_METADATA_ROLE, MintedCounts, Routes
from cms_magic.emulator.service import Emulator, demo_credentials
from cms_magic.emulator.store import Event, RequestRecord
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

    Credentials: :attr:`sts_url`, :attr:`credentials_uri` and :attr:`metadata_url` are
    served on the same port; what they mint lives ``sts_lifetime`` seconds (also
    :attr:`sts_lifetime`, settable); ``metadata_v1`` lets the metadata answer without an
    IMDSv2 token; ``metadata_role`` is the instance's RAM role; :attr:`minted` counts.
    The handlers are :attr:`routes` (``routes.sts``, ``routes.credentials_uri``,
    ``routes.metadata``, each with ``calls``, ``refused`` and ``fail_with``).
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
        sts_lifetime: float = DEFAULT_LIFETIME_SECONDS,
        metadata_v1: bool = False,
        metadata_role: str = DEFAULT_METADATA_ROLE,
    ) -> None:
        warning = check_bind_host(host, allow_remote=allow_remote)
        check_count("max_handlers", max_handlers)
        check_count("max_connections", max_connections)
        check_seconds("header_timeout", header_timeout)
        check_seconds("request_timeout", request_timeout)
        self.emulator = emulator if emulator is not None else Emulator()
        self.routes = Routes(
            self.emulator,
            sts_lifetime=sts_lifetime,
            metadata_v1=metadata_v1,
            metadata_role=metadata_role,
        )
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
            refusal=too_many_connections,
            too_large_head=head_too_large,
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

    # ----------------------------------------------------------------- credential endpoints

    @property
    def sts_url(self) -> str:
        """STS's endpoint on this port (``AssumeRole``, ``AssumeRoleWithOIDC``): the value for
        ``sts_endpoint=`` or ``CMS_MAGIC_STS_ENDPOINT``, e.g. ``http://127.0.0.1:54321``."""
        return self.url

    @property
    def credentials_uri(self) -> str:
        """The credentials URI (``GET``), for ``ALIBABA_CLOUD_CREDENTIALS_URI``."""
        return self.url + CREDENTIALS_URI_PATH

    @property
    def metadata_url(self) -> str:
        """The instance metadata's base URL (``/latest/...`` under it), for the ECS RAM
        role source's metadata base."""
        return self.url

    @property
    def registry(self) -> MintedRegistry:
        """Every temporary key minted here (shared by STS, URI, metadata and uploads)."""
        return self.emulator.registry

    @property
    def minted(self) -> MintedCounts:
        """What was minted so far and how many STS, URI and metadata calls were answered."""
        return self.routes.minted()

    @property
    def sts_lifetime(self) -> float:
        """Seconds that credentials minted from now on live (STS, URI and metadata)."""
        return self.routes.lifetime

    @sts_lifetime.setter
    def sts_lifetime(self, seconds: float) -> None:
        self.routes.set_lifetime(seconds)

    @property
    def metadata_v1(self) -> bool:
        """Whether the instance metadata answers without an IMDSv2 token (settable)."""
        return self.routes.metadata.allow_v1

    @metadata_v1.setter
    def metadata_v1(self, allow: bool) -> None:
        self.routes.metadata.allow_v1 = bool(allow)

    def register(self, handler: Handler, *actions: str) -> None:
        """Answer these OpenAPI actions (``GET|POST /``) with ``handler`` from now on;
        :meth:`Routes.register_signed <cms_magic.emulator.routes.Routes.register_signed>`
        verifies the signature first."""
        self.routes.register(handler, *actions)

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
        """Forget events and requests, refill quotas; see :meth:`Emulator.reset`.

        Minted credentials stay valid (a send signed with them goes on working) and the
        credential calls stay counted (:attr:`minted`)."""
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
        handler = RequestHandler(connection, self)
        try:
            handler.handle_one_request()
        except OSError:  # the client went away
            return False
        except Exception:
            print(f"cms_magic emulator: error handling a request from {connection.address}")
            traceback.print_exc(file=sys.stderr)
            return False
        return not handler.close_connection


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
    sts_lifetime: float = DEFAULT_LIFETIME_SECONDS,
    metadata_v1: bool = False,
    metadata_role: str = DEFAULT_METADATA_ROLE,
    **emulator_kwargs: Any,
) -> EmulatorServer:
    """Start an emulator on ``host:port`` in daemon threads and return its server.

    ``with serve() as emu:`` stops it on exit. ``host`` must be loopback unless
    ``allow_remote=True`` (then a :class:`RemoteBindWarning`). The limits are
    :class:`EmulatorServer`'s, as are ``sts_lifetime`` (seconds minted credentials live),
    ``metadata_v1`` and ``metadata_role``. Other keyword arguments go to :class:`Emulator`
    (``clock``, ``monotonic``, ``max_body_bytes``, ``registry``, ...).
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
        sts_lifetime=sts_lifetime,
        metadata_v1=metadata_v1,
        metadata_role=metadata_role,
    )
    return server.start()
