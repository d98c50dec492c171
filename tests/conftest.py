"""What every test shares: a loopback-only network guard, a reset of process-wide state,
the emulator fixtures (``emulator``, ``make_emulator``) and a fake clock.

The guard is an audit hook (PEP 578) on ``socket.connect`` and
``socket.getaddrinfo``: any connection to, or name lookup of, an address that is
not loopback raises at once and fails the test at teardown, even if the code
under test swallowed the error. Tests that need a "remote" name give the code a
fake resolver or transport instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cms_magic import _state

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


class NetworkGuardError(OSError):
    """A test tried to reach beyond loopback."""


_violations: list[str] = []
_violations_lock = threading.Lock()


def _is_loopback_host(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard, no lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    text = host.strip("[]").split("%", 1)[0]
    if text.lower() in _LOOPBACK_NAMES or text == "":
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return  # unix sockets, netlink...
        host = address[0] if isinstance(address, tuple) else address
    else:
        return
    if _is_loopback_host(host):
        return
    message = f"{event} to {host!r}: tests may only reach loopback addresses"
    with _violations_lock:
        _violations.append(message)
    raise NetworkGuardError(message)


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _network_guard() -> Iterator[None]:
    with _violations_lock:
        _violations.clear()
    yield
    with _violations_lock:
        found = list(_violations)
        _violations.clear()
    if found:
        pytest.fail("non-loopback network use: " + "; ".join(found), pytrace=False)


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    """Every test starts and ends without a latest result, shared quotas or an embedded emulator."""
    _state.reset()
    yield
    _state.reset()


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A fresh emulator on 127.0.0.1 with no quota (``qps=0``); stopped after the test."""
    from cms_magic.emulator import serve

    with serve(qps=0) as server:
        yield server


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Any]]:
    """A factory of fresh emulators: ``make_emulator(**kw)`` starts ``serve(qps=0, **kw)``
    on 127.0.0.1 and returns the server; every one is stopped after the test.

    For the credential endpoints: ``make_emulator(sts_lifetime=10)`` mints 10-second
    credentials (``server.sts_url``, ``server.credentials_uri``, ``server.metadata_url``;
    ``server.minted`` counts the calls), ``metadata_v1=True`` lets the metadata answer
    without a token, ``clock=`` (epoch seconds) moves expiry without waiting.
    """
    from cms_magic.emulator import serve

    servers: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("qps", 0)
        server = serve(**kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


class FakeClock:
    """A clock that moves only when told to: ``clock()`` reads it, ``advance(s)`` moves it,
    and ``await clock.sleep(s)`` advances it instead of waiting."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _quota_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host-wide quota files of this test session: never the user's, never another run's."""
    monkeypatch.setenv("CMS_MAGIC_QUOTA_DIR", str(tmp_path_factory.getbasetemp() / "quota"))
