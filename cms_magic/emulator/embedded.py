"""The process's own emulator, what ``local`` means: started on first use, stopped at reset.

It lives in one :func:`cms_magic._state.slot`, so :func:`cms_magic._state.reset`
(the test suite's autouse fixture, or a user wanting a fresh start) stops it
along with every other piece of process-wide state.
"""

from __future__ import annotations

from typing import Final

from cms_magic import _state
from cms_magic.emulator.server import EmulatorServer, serve
from cms_magic.emulator.store import SqliteStore

__all__ = ["embedded", "embedded_running", "stop_embedded"]


def _stop(server: EmulatorServer) -> None:
    server.stop()
    store = server.emulator.store
    if isinstance(store, SqliteStore):
        store.close()


_EMBEDDED: Final[_state.Slot[EmulatorServer]] = _state.slot("embedded emulator", close=_stop)


def embedded(
    *, sts_lifetime: float | None = None, metadata_v1: bool | None = None
) -> EmulatorServer:
    """The process-wide emulator for demos and notebooks, started on first use.

    It listens on 127.0.0.1 (a free port), accepts the demo credentials and
    enforces the default quota. The magic's ``--endpoint local`` and the
    panel's "local emulator" target use it; it is never chosen silently for
    a real endpoint. The same server is returned until it is stopped
    (:func:`stop_embedded` or :func:`cms_magic._state.reset`).

    It serves STS, a credentials URI and instance metadata too
    (:attr:`~EmulatorServer.sts_url`, :attr:`~EmulatorServer.credentials_uri`,
    :attr:`~EmulatorServer.metadata_url`). ``sts_lifetime`` (seconds, default 3600) and
    ``metadata_v1``, when given, apply to the server from now on, whether it was
    running or just started: credentials minted from then on live that long.
    """
    server = _EMBEDDED.get_or_create(_start)
    if sts_lifetime is not None:
        server.sts_lifetime = sts_lifetime
    if metadata_v1 is not None:
        server.metadata_v1 = metadata_v1
    return server


def _start() -> EmulatorServer:
    # Events go to a private SQLite file (deleted when closed): the kernel keeps only the
    # page cache, not every event as Python objects (~500 bytes each before).
    return serve(store=SqliteStore(temporary=True))


def embedded_running() -> EmulatorServer | None:
    """The embedded emulator if it is running, else None (never starts it)."""
    return _EMBEDDED.get()


def stop_embedded() -> bool:
    """Stop the embedded emulator; False if it was not running."""
    server = _EMBEDDED.pop()
    if server is None:
        return False
    _stop(server)
    return True
