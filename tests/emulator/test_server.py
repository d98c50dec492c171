"""The server (:mod:`cms_magic.emulator.server`): the handler over real loopback sockets,
the admin endpoints, refusing bodies unread, keep-alive, timeouts and stopping.

Tests use the shared ``emulator`` fixture (``serve(qps=0)`` on 127.0.0.1, stopped after
the test) unless they need a server of their own.
"""

from __future__ import annotations

import json
import re
import socket
import time

import httpx
import pytest

from cms_magic.emulator import EmulatorServer, Faults, demo_credentials, serve
from cms_magic.emulator.server import ADMIN_TOKEN_HEADER, EmulatorStoppedError
from cms_magic.errors import CmsError
from cms_magic.protocol import MAX_BODY_BYTES, UPLOAD_PATH
from cms_magic.signing import CmsAuth
from tests.emulator._client import GOOD_BODY, GOOD_EVENT, SOURCE_IP, event_body_of_exactly, upload


def live_client(server: EmulatorServer) -> httpx.Client:
    auth = CmsAuth.from_credentials(server.credentials, source_ip=SOURCE_IP)
    return httpx.Client(base_url=server.url, auth=auth, timeout=10)


def admin_client(server: EmulatorServer) -> httpx.Client:
    """A client of the admin endpoints, showing the server's admin token."""
    return httpx.Client(
        base_url=server.url, headers={ADMIN_TOKEN_HEADER: server.admin_token}, timeout=10
    )


def raw_exchange(server: EmulatorServer, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes, then read until the server closes the connection."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_server_accepts_a_signed_upload(emulator: EmulatorServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.url)
    assert emulator.credentials == demo_credentials()
    with live_client(emulator) as client:
        response = upload(client, GOOD_BODY)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == "200"
    assert emulator.events() == [GOOD_EVENT]
    assert emulator.requests()[0]["status"] == 200


def test_admin_endpoints(emulator: EmulatorServer) -> None:
    with live_client(emulator) as client:
        assert client.get("/_emulator/health").json() == {"ok": True}
        upload(client, GOOD_BODY)
        upload(client, b"[]")
        events = client.get("/_emulator/events")
        assert events.headers["content-type"] == "application/json"
        assert events.json() == [GOOD_EVENT]
        requests = client.get("/_emulator/requests").json()
        assert [r["status"] for r in requests] == [200, 400]
        assert client.post("/_emulator/reset").json() == {"ok": True}
        assert client.get("/_emulator/events").json() == []
        assert client.get("/_emulator/requests").json() == []
        wrong_method = client.get("/_emulator/reset")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "POST"
        unknown = client.get("/_emulator/nothing")
        assert unknown.status_code == 404
        assert "/_emulator/health" in unknown.json()["msg"]
    assert emulator.requests() == []  # admin calls are not uploads


def test_oversized_body_is_refused_before_it_is_read(emulator: EmulatorServer) -> None:
    """Only the headers and a few bytes are sent: a server that waited for the body would
    hang until its 30 s request timeout; this one answers at once and closes."""
    declared = MAX_BODY_BYTES + 1
    request = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: emulator\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n[{{"
    ).encode()
    started = time.monotonic()
    received = raw_exchange(emulator, request)
    assert time.monotonic() - started < 2.5
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close" in head
    payload = json.loads(body)
    assert payload["code"] == "400"
    assert f"declares a body of {declared} bytes" in payload["msg"]
    assert emulator.requests()[-1]["bytes"] == declared


def test_oversized_body_sent_in_full_still_gets_its_400(emulator: EmulatorServer) -> None:
    with live_client(emulator) as client:
        response = upload(client, event_body_of_exactly(MAX_BODY_BYTES + 1))
    assert response.status_code == 400
    assert response.headers["connection"] == "close"
    assert "over the limit" in response.json()["msg"]


def test_expect_100_continue_is_not_given_for_an_oversized_body(emulator: EmulatorServer) -> None:
    request = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: emulator\r\nExpect: 100-continue\r\n"
        f"Content-Length: {MAX_BODY_BYTES * 4}\r\n\r\n"
    ).encode()
    received = raw_exchange(emulator, request)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"100 Continue" not in received


def test_chunked_bodies_are_refused_with_advice(emulator: EmulatorServer) -> None:
    request = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: emulator\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\n[]\r\n0\r\n\r\n"
    ).encode()
    received = raw_exchange(emulator, request)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"send the body with a Content-Length header" in received


def test_keep_alive_serves_50_requests_on_one_connection_quickly(emulator: EmulatorServer) -> None:
    with live_client(emulator) as client:
        upload(client, GOOD_BODY)  # warm up: connect once
        started = time.perf_counter()
        statuses = [upload(client, GOOD_BODY).status_code for _ in range(50)]
        elapsed = time.perf_counter() - started
    assert statuses == [200] * 50
    assert emulator.connections_accepted == 1
    assert len(emulator.events()) == 51
    # Without TCP_NODELAY and single-write responses this takes ~50 * 43 ms.
    assert elapsed < 1.5, f"50 keep-alive requests took {elapsed:.2f} s"


def test_half_open_clients_are_dropped() -> None:
    with EmulatorServer(request_timeout=0.3) as emu:
        started = time.monotonic()
        received = raw_exchange(emu, b"POST /event/custom/upload HTTP/1.1\r\nHost: x")
        assert received == b""
        assert time.monotonic() - started < 3


def test_stop_closes_idle_keep_alive_connections() -> None:
    emu = serve(qps=0)
    try:
        with live_client(emu) as client:
            assert upload(client, GOOD_BODY).status_code == 200
            started = time.monotonic()
            emu.stop()
            assert time.monotonic() - started < 3
    finally:
        emu.stop()
    with pytest.raises(EmulatorStoppedError, match="stopped") as excinfo:
        emu.start()
    assert isinstance(excinfo.value, CmsError)
    assert isinstance(excinfo.value, RuntimeError)  # what it raised before it carried fields


def test_serve_passes_emulator_options() -> None:
    with serve(qps=7, poison_marker="!!", max_body_bytes=1000) as emu:
        assert emu.emulator.qps == 7.0
        assert emu.emulator.poison_marker == "!!"
        assert emu.emulator.max_body_bytes == 1000
        assert "running" in repr(emu)


def test_admin_faults_are_set_read_and_refused_with_the_field_named(
    emulator: EmulatorServer,
) -> None:
    with admin_client(emulator) as admin:
        set_to = admin.post("/_emulator/faults", json={"seed": 4, "error_503": 0.25})
        assert set_to.status_code == 200
        assert set_to.json()["error_503"] == 0.25
        assert admin.get("/_emulator/faults").json() == set_to.json()
        assert emulator.emulator.faults.error_503 == 0.25
        for body, msg in [
            ({"error_500": 1.5}, "error_500=1.5: must be a rate from 0 to 1"),
            ({"poison_marker": 5}, "poison_marker=5: must be a non-empty string or None"),
            ({"explode": 1}, "unknown fault(s) explode; known: "),
            ([1, 2], "faults must be a JSON object"),
        ]:
            refused = admin.post("/_emulator/faults", json=body)
            assert refused.status_code == 400
            assert refused.json()["msg"].startswith(msg)
        not_json = admin.post("/_emulator/faults", content=b"{")
        assert not_json.status_code == 400
        assert admin.get("/_emulator/faults").json() == set_to.json()  # unchanged


def test_admin_head_and_bodies(emulator: EmulatorServer) -> None:
    with admin_client(emulator) as admin:
        head = admin.head("/_emulator/health")
        assert head.status_code == 200
        assert head.content == b""
        too_big = admin.post("/_emulator/reset", content=b"x" * (64 * 1024 + 1))
        assert too_big.status_code == 400
        assert "admin endpoints take no body" in too_big.json()["msg"]


def test_a_reset_drops_the_connection_and_a_delay_holds_the_answer(
    emulator: EmulatorServer,
) -> None:
    with httpx.Client(base_url=emulator.url, timeout=5) as client:
        emulator.emulator.set_faults(Faults(reset_after=1.0))
        auth = CmsAuth.from_credentials(emulator.credentials, source_ip=SOURCE_IP)
        # a TCP reset: seen as a reset read or as a connection closed without an answer
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.post(UPLOAD_PATH, content=GOOD_BODY, auth=auth)
        assert len(emulator.events()) == 1  # stored, but never answered
        emulator.emulator.set_faults(Faults(delay=1.0, delay_seconds=60))
        with pytest.raises(httpx.ReadTimeout):
            client.post(UPLOAD_PATH, content=GOOD_BODY, auth=auth, timeout=0.2)
    started = time.monotonic()
    emulator.stop()  # ends the held answer at once
    assert time.monotonic() - started < 3
