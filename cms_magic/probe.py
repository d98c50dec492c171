"""Reachability of the endpoints: DNS resolution and TCP connect time, measured concurrently.

:func:`probe` contacts nothing until it is called, and then only the targets it
is given (default: the public endpoint and every region's internal endpoint).
For each target it resolves the host name, then opens (and at once closes) a
TCP connection to the first address that answers, each step bounded by
``timeout`` seconds. No HTTP request is sent, so nothing is signed or uploaded.

An unreachable endpoint is a normal outcome, not an exception: its
:class:`ProbeResult` says ``reachable=False`` and why, in words such as
``"DNS: name not found"`` or ``"TCP: timed out after 2.0 s"``. Internal
endpoints answer only from inside Alibaba Cloud, so from elsewhere most of
them are expected to be unreachable.

:func:`probe_frame` returns the same as a DataFrame, reachable targets first,
fastest first. Both take an injectable ``resolver`` and ``connect``, so tests
point them at loopback servers without touching the network.

This module is part of the core: it imports neither IPython nor ipywidgets,
and pandas only in :func:`probe_frame`.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cms_magic.errors import ConfigError, TargetError
from cms_magic.regions import public_endpoint, regions

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PUBLIC_LABEL",
    "ProbeResult",
    "default_targets",
    "probe",
    "probe_frame",
]

#: The label of the public endpoint among the default targets.
PUBLIC_LABEL = "public"

#: ``resolver(host, port)`` returns the host's IP addresses (strings), best first;
#: it raises :class:`socket.gaierror` (or another :class:`OSError`) when it cannot.
Resolver = Callable[[str, int], Sequence[str]]
#: ``connect(address, port, timeout)`` opens and closes one TCP connection, or raises
#: :class:`OSError` (:class:`TimeoutError` for a timeout).
Connect = Callable[[str, int, float], None]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_DNS_REASONS = {
    socket.EAI_NONAME: "name not found",
    socket.EAI_AGAIN: "no answer from the DNS server (temporary failure)",
    socket.EAI_FAIL: "the DNS server failed",
}
_NODATA = getattr(socket, "EAI_NODATA", None)
if _NODATA is not None:
    _DNS_REASONS[_NODATA] = "the name has no address"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """How one target answered.

    ``dns_ms`` is the name resolution time (0 for an IP address), ``connect_ms`` the
    TCP connect time; ``latency_ms`` is their sum, ``None`` unless reachable.
    ``reason`` says why an unreachable target is unreachable.
    """

    label: str
    url: str
    host: str
    port: int
    reachable: bool
    address: str | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    reason: str | None = None

    @property
    def latency_ms(self) -> float | None:
        """DNS plus TCP connect time, for a reachable target."""
        if not self.reachable or self.connect_ms is None:
            return None
        return (self.dns_ms or 0.0) + self.connect_ms

    @property
    def status(self) -> str:
        """``"reachable"`` or ``"unreachable"``."""
        return "reachable" if self.reachable else "unreachable"

    def line(self) -> str:
        """One line for text output, e.g. ``cn-hangzhou  reachable  12.3 ms``."""
        if self.reachable:
            return f"{self.label}: reachable in {self.latency_ms:.1f} ms ({self.url})"
        return f"{self.label}: unreachable, {self.reason} ({self.url})"


def default_targets() -> list[tuple[str, str]]:
    """``(label, url)`` for the public endpoint (label ``"public"``), then each region's
    internal endpoint (label: the region id), in the catalog's order."""
    return [(PUBLIC_LABEL, public_endpoint())] + [(r.id, r.internal_endpoint) for r in regions()]


def probe(
    targets: Iterable[tuple[str, str]] | None = None,
    *,
    timeout: float = 2.0,
    resolver: Resolver | None = None,
    connect: Connect | None = None,
) -> list[ProbeResult]:
    """Probe every target at once; results sorted reachable first, fastest first.

    ``targets`` are ``(label, url)`` pairs (default: :func:`default_targets`). Each
    step (DNS, TCP connect) of each target gets at most ``timeout`` seconds, so the
    whole call returns within about ``2 * timeout`` seconds. Unreachable targets are
    results with a reason, never exceptions; a malformed URL is reported the same way.
    """
    if not timeout > 0:
        raise ConfigError("must be a number of seconds > 0", option="timeout", value=timeout)
    items = default_targets() if targets is None else list(targets)
    resolve = resolver if resolver is not None else _system_resolver
    dial = connect if connect is not None else _tcp_connect
    slots: list[ProbeResult | None] = [None] * len(items)

    def run(i: int, label: str, url: str) -> None:
        slots[i] = _probe_one(label, url, timeout, resolve, dial)

    threads = [
        threading.Thread(
            target=run, args=(i, label, url), name=f"cms_magic probe {label}", daemon=True
        )
        for i, (label, url) in enumerate(items)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2 * timeout + 0.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    results = [
        slot
        if slot is not None
        else _unreachable(label, url, f"no answer within {2 * timeout:.1f} s")
        for slot, (label, url) in zip(slots, items, strict=True)
    ]
    return sort_results(results)


def sort_results(results: Iterable[ProbeResult]) -> list[ProbeResult]:
    """Reachable first, by latency; then unreachable, in their given order."""
    listed = list(results)
    reachable = sorted((r for r in listed if r.reachable), key=lambda r: r.latency_ms or 0.0)
    return reachable + [r for r in listed if not r.reachable]


def probe_frame(
    targets: Iterable[tuple[str, str]] | None = None,
    *,
    timeout: float = 2.0,
    resolver: Resolver | None = None,
    connect: Connect | None = None,
    results: Sequence[ProbeResult] | None = None,
) -> pd.DataFrame:
    """:func:`probe` as a DataFrame, reachable targets first, fastest first.

    Columns: target, url, status (``"reachable"``/``"unreachable"``), latency_ms,
    dns_ms, connect_ms, address, reason. Pass ``results`` to tabulate results
    you already have instead of probing again.
    """
    import pandas as pd

    found = (
        sort_results(results)
        if results is not None
        else probe(targets, timeout=timeout, resolver=resolver, connect=connect)
    )
    columns = [
        "target",
        "url",
        "status",
        "latency_ms",
        "dns_ms",
        "connect_ms",
        "address",
        "reason",
    ]
    rows = [
        (
            r.label,
            r.url,
            r.status,
            r.latency_ms,
            r.dns_ms,
            r.connect_ms,
            r.address,
            r.reason,
        )
        for r in found
    ]
    frame: pd.DataFrame = pd.DataFrame(rows, columns=columns)
    for column in ("latency_ms", "dns_ms", "connect_ms"):
        frame[column] = frame[column].astype("Float64").round(1)
    return frame


# --------------------------------------------------------------------------- one target


def _unreachable(
    label: str,
    url: str,
    reason: str,
    *,
    host: str = "",
    port: int = 0,
    dns_ms: float | None = None,
) -> ProbeResult:
    return ProbeResult(
        label=label, url=url, host=host, port=port, reachable=False, dns_ms=dns_ms, reason=reason
    )


def _split(url: str) -> tuple[str, int]:
    """The host and port of an ``http(s)://host[:port]`` URL; TargetError if it has none."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise TargetError("the URL must start with http:// or https://", value=url)
    host = parts.hostname
    if not host:
        raise TargetError("the URL has no host", value=url)
    try:
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"the URL's port is not valid ({exc})") from None
    return host, port if port is not None else _DEFAULT_PORTS[scheme]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _probe_one(
    label: str, url: str, timeout: float, resolve: Resolver, dial: Connect
) -> ProbeResult:
    try:
        host, port = _split(url)
    except TargetError as exc:
        return _unreachable(label, url, f"bad URL: {exc}")

    # DNS, bounded: getaddrinfo cannot be interrupted, so it runs in a daemon thread.
    began = time.perf_counter()
    dns_ms = 0.0
    if _is_ip(host):
        addresses: list[str] = [host]
    else:
        answer: list[Sequence[str] | BaseException] = []

        def lookup() -> None:
            try:
                answer.append(resolve(host, port))
            except BaseException as exc:  # reported as a reason, never raised
                answer.append(exc)

        worker = threading.Thread(target=lookup, name=f"cms_magic dns {host}", daemon=True)
        worker.start()
        worker.join(timeout)
        if not answer:
            return _unreachable(
                label, url, f"DNS: timed out after {timeout:.1f} s", host=host, port=port
            )
        outcome = answer[0]
        if isinstance(outcome, BaseException):
            return _unreachable(label, url, _dns_reason(outcome), host=host, port=port)
        addresses = list(dict.fromkeys(outcome))
        if not addresses:
            return _unreachable(label, url, "DNS: the name has no address", host=host, port=port)
        dns_ms = (time.perf_counter() - began) * 1000

    # TCP: the first address that accepts a connection.
    reason = "TCP: no address to connect to"
    for address in addresses:
        began = time.perf_counter()
        try:
            dial(address, port, timeout)
        except OSError as exc:
            reason = _tcp_reason(exc, timeout)
            continue
        return ProbeResult(
            label=label,
            url=url,
            host=host,
            port=port,
            reachable=True,
            address=address,
            dns_ms=dns_ms,
            connect_ms=(time.perf_counter() - began) * 1000,
        )
    return _unreachable(label, url, reason, host=host, port=port, dns_ms=dns_ms)


def _dns_reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        known = _DNS_REASONS.get(exc.errno) if exc.errno is not None else None
        return f"DNS: {known or exc.strerror or 'lookup failed'}"
    if isinstance(exc, TimeoutError):
        return "DNS: timed out"
    if isinstance(exc, OSError):
        return f"DNS: {exc.strerror or type(exc).__name__}"
    return f"DNS: {type(exc).__name__}: {exc}"


def _tcp_reason(exc: OSError, timeout: float) -> str:
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return f"TCP: timed out after {timeout:.1f} s"
    if isinstance(exc, ConnectionRefusedError):
        return "TCP: connection refused"
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"TCP: {'network' if exc.errno == errno.ENETUNREACH else 'host'} unreachable"
    return f"TCP: {exc.strerror or type(exc).__name__}"


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _tcp_connect(address: str, port: int, timeout: float) -> None:
    with socket.create_connection((address, port), timeout=timeout):
        pass
