"""The endpoint probe: DNS + TCP connect timing, against loopback servers only.

No test here contacts anything but 127.0.0.1: names are resolved by injected
resolvers, and the default targets are only listed, never probed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from cms_magic import probe as probe_module
from cms_magic.errors import ConfigError
from cms_magic.probe import (
    PUBLIC_LABEL,
    ProbeResult,
    default_targets,
    probe,
    probe_frame,
    sort_results,
)
from cms_magic.regions import public_endpoint, regions


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port that accepts TCP connections (the backlog is enough)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def fake_resolver(table: dict[str, list[str]]) -> probe_module.Resolver:
    """Resolve names from ``table``; anything else is 'name not found'."""

    def resolve(host: str, port: int) -> Sequence[str]:
        if host in table:
            return table[host]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    return resolve


def test_default_targets_are_the_public_endpoint_and_every_internal_one() -> None:
    targets = default_targets()
    assert targets[0] == (PUBLIC_LABEL, public_endpoint())
    assert targets[1:] == [(r.id, r.internal_endpoint) for r in regions()]
    assert len(targets) == 18


def test_a_listening_port_is_reachable(listening: int) -> None:
    [result] = probe([("here", f"http://127.0.0.1:{listening}")], timeout=2.0)
    assert result.reachable
    assert result.status == "reachable"
    assert result.reason is None
    assert result.address == "127.0.0.1"
    assert result.port == listening
    assert result.dns_ms == 0.0  # an IP address needs no lookup
    assert result.connect_ms is not None
    assert result.latency_ms == result.connect_ms
    assert 0 <= result.connect_ms < 2000
    assert result.line().startswith("here: reachable in ")


def test_a_closed_port_is_unreachable_with_a_reason(closed_port: int) -> None:
    [result] = probe([("gone", f"http://127.0.0.1:{closed_port}")], timeout=2.0)
    assert not result.reachable
    assert result.status == "unreachable"
    assert result.reason == "TCP: connection refused"
    assert result.latency_ms is None
    assert "unreachable, TCP: connection refused" in result.line()


def test_an_unresolvable_name_reads_as_dns_not_found(listening: int) -> None:
    resolver = fake_resolver({"metrichub-cn-hangzhou.aliyun.com": ["127.0.0.1"]})
    results = probe(
        [
            ("nowhere", "http://no-such-host.invalid"),
            ("cn-hangzhou", f"http://metrichub-cn-hangzhou.aliyun.com:{listening}"),
        ],
        resolver=resolver,
    )
    by_label = {r.label: r for r in results}
    assert by_label["nowhere"].reason == "DNS: name not found"
    assert by_label["nowhere"].host == "no-such-host.invalid"
    assert by_label["nowhere"].port == 80
    found = by_label["cn-hangzhou"]
    assert found.reachable
    assert found.address == "127.0.0.1"
    assert found.dns_ms is not None
    assert found.dns_ms >= 0


def test_dns_and_tcp_timeouts_are_reasons_not_exceptions() -> None:
    release = threading.Event()

    def slow_resolver(host: str, port: int) -> Sequence[str]:
        release.wait(5)
        return ["127.0.0.1"]

    def hanging_connect(address: str, port: int, timeout: float) -> None:
        raise TimeoutError("timed out")

    try:
        began = time.monotonic()
        [dns] = probe([("slow", "https://slow.example")], timeout=0.2, resolver=slow_resolver)
        assert time.monotonic() - began < 2
    finally:
        release.set()
    assert dns.reason == "DNS: timed out after 0.2 s"
    assert dns.port == 443
    [tcp] = probe([("hang", "http://127.0.0.1:9")], timeout=0.5, connect=hanging_connect)
    assert tcp.reason == "TCP: timed out after 0.5 s"


def test_other_failures_are_described() -> None:
    def broken_resolver(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    def unreachable(address: str, port: int, timeout: float) -> None:
        raise OSError(101, "Network is unreachable")

    [dns] = probe([("x", "http://x.example")], resolver=broken_resolver)
    assert dns.reason == "DNS: no answer from the DNS server (temporary failure)"
    [empty] = probe([("x", "http://x.example")], resolver=lambda host, port: [])
    assert empty.reason == "DNS: the name has no address"
    [net] = probe([("x", "http://10.0.0.1")], connect=unreachable)
    assert net.reason == "TCP: network unreachable"
    [bad] = probe([("bad", "ftp://host")])
    assert bad.reason == "bad URL: the URL must start with http:// or https://"
    [no_host] = probe([("bad", "http://")])
    assert no_host.reason == "bad URL: the URL has no host"


def test_the_next_address_is_tried_when_the_first_refuses(listening: int, closed_port: int) -> None:
    tried: list[tuple[str, int]] = []

    def connect(address: str, port: int, timeout: float) -> None:
        tried.append((address, port))
        if address == "127.0.0.2":
            raise ConnectionRefusedError(111, "Connection refused")
        with socket.create_connection((address, port), timeout=timeout):
            pass

    [result] = probe(
        [("two", f"http://two.example:{listening}")],
        resolver=fake_resolver({"two.example": ["127.0.0.2", "127.0.0.1", "127.0.0.1"]}),
        connect=connect,
    )
    assert result.reachable
    assert result.address == "127.0.0.1"
    assert tried == [("127.0.0.2", listening), ("127.0.0.1", listening)]  # duplicates dropped


def test_targets_are_probed_concurrently() -> None:
    def slow_connect(address: str, port: int, timeout: float) -> None:
        time.sleep(0.3)

    targets = [(f"t{i}", f"http://127.0.0.1:{1000 + i}") for i in range(8)]
    began = time.monotonic()
    results = probe(targets, connect=slow_connect)
    assert time.monotonic() - began < 1.5  # 8 x 0.3 s one after another would be 2.4 s
    assert all(r.reachable for r in results)


def test_results_sort_reachable_first_fastest_first() -> None:
    def result(label: str, connect_ms: float | None) -> ProbeResult:
        return ProbeResult(
            label,
            f"http://{label}",
            label,
            80,
            reachable=connect_ms is not None,
            dns_ms=0.0,
            connect_ms=connect_ms,
            reason=None if connect_ms is not None else "TCP: connection refused",
        )

    ordered = sort_results(
        [result("down1", None), result("slow", 50.0), result("down2", None), result("fast", 5.0)]
    )
    assert [r.label for r in ordered] == ["fast", "slow", "down1", "down2"]


def test_probe_frame(listening: int, closed_port: int) -> None:
    frame = probe_frame(
        [
            ("closed", f"http://127.0.0.1:{closed_port}"),
            ("missing", "http://missing.invalid"),
            ("open", f"http://127.0.0.1:{listening}"),
        ],
        resolver=fake_resolver({}),
    )
    assert list(frame.columns) == [
        "target",
        "url",
        "status",
        "latency_ms",
        "dns_ms",
        "connect_ms",
        "address",
        "reason",
    ]
    assert list(frame["target"]) == ["open", "closed", "missing"]
    assert list(frame["status"]) == ["reachable", "unreachable", "unreachable"]
    assert list(frame["reason"].iloc[1:]) == ["TCP: connection refused", "DNS: name not found"]
    assert frame["latency_ms"].iloc[0] >= 0
    assert frame["latency_ms"].isna().tolist() == [False, True, True]
    again = probe_frame(results=[])
    assert again.empty


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError) as caught:
        probe([], timeout=0)
    assert (caught.value.option, caught.value.value) == ("timeout", 0)
    assert str(caught.value) == "timeout=0: must be a number of seconds > 0"


def test_importing_the_probe_contacts_nothing_and_stays_light() -> None:
    code = (
        "import socket\n"
        "calls = []\n"
        "socket.getaddrinfo = lambda *a, **k: calls.append(a)\n"
        "socket.create_connection = lambda *a, **k: calls.append(a)\n"
        "import cms_magic.probe, sys\n"
        "assert calls == [], calls\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    roots = set(out.split())
    assert not roots & {"IPython", "ipywidgets", "pandas"}
