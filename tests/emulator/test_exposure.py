"""Issue 12, the emulator under hostile conditions: what it shows, where it listens, how many
threads a crowd of slow clients costs, and who may use the admin endpoints.

Every socket here is loopback (the suite's network guard forbids anything else); the
non-loopback bind is tested as the pure check :func:`check_bind_host` and by refusing
before any bind.
"""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Iterator

import httpx
import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.emulator import EmulatorServer, cli, serve
from cms_magic.emulator.server import ADMIN_TOKEN_HEADER, RemoteBindWarning, check_bind_host
from cms_magic.emulator.validation import TOKEN_MARKER
from cms_magic.errors import ConfigError
from cms_magic.protocol import UPLOAD_PATH
from cms_magic.signing import CmsAuth
from tests.emulator._client import GOOD_BODY, SOURCE_IP, signed

TOKEN = "CAIS-sts-token-0123456789-very-secret"
STS = Credentials("STS.emulatorKey01", "sts-secret-value", security_token=TOKEN)


def wait_until(condition: object, *, within: float, what: str) -> float:
    """Poll ``condition()`` until true; the seconds it took (fails after ``within``)."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > within:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.01)  # polling a condition with a deadline, not standing in for one
    return time.monotonic() - started


def test_the_request_log_over_http_holds_no_token() -> None:
    with serve(credentials=[STS], qps=0) as server:
        wrong = Credentials(STS.access_key_id, "not-the-secret", security_token=TOKEN)
        auth = CmsAuth.from_credentials(wrong, source_ip=SOURCE_IP)
        with httpx.Client(base_url=server.url, timeout=5) as client:
            refused = client.post(UPLOAD_PATH, content=GOOD_BODY, auth=auth)
            log = client.get(
                "/_emulator/requests", headers={ADMIN_TOKEN_HEADER: server.admin_token}
            )
    assert refused.status_code == 403
    assert TOKEN not in refused.text
    assert log.status_code == 200
    assert TOKEN not in log.text
    assert TOKEN_MARKER in log.text


# --------------------------------------------------------------------------- 2. where it listens


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_opt_in(host: str) -> None:
    assert check_bind_host(host, allow_remote=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.0.2.10", "example.test"])
def test_other_hosts_are_refused_without_the_opt_in(host: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        check_bind_host(host, allow_remote=False)
    error = excinfo.value
    assert error.option == "host"
    assert error.value == host
    assert "loopback" in str(error)
    assert "allow_remote=True" in str(error)


def test_the_opt_in_allows_them_with_a_warning() -> None:
    warning = check_bind_host("0.0.0.0", allow_remote=True)
    assert warning is not None
    assert "0.0.0.0" in warning
    assert "other hosts" in warning


def test_serve_refuses_a_non_loopback_host_before_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_bind(self: object) -> None:
        raise AssertionError("bound a socket")

    monkeypatch.setattr(EmulatorServer, "server_bind", no_bind)
    with pytest.raises(ConfigError, match=r"host='0\.0\.0\.0'.*allow_remote=True"):
        serve("0.0.0.0")


def test_serve_with_the_opt_in_warns_before_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    class Bound(Exception):
        pass

    def stop_at_bind(self: object) -> None:
        raise Bound

    monkeypatch.setattr(EmulatorServer, "server_bind", stop_at_bind)
    with pytest.warns(RemoteBindWarning, match="other hosts can reach"), pytest.raises(Bound):
        serve("0.0.0.0", allow_remote=True)


def test_serve_on_loopback_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RemoteBindWarning)
        with serve(allow_remote=True) as server:
            assert server.url.startswith("http://127.0.0.1:")


def test_the_cli_refuses_a_non_loopback_host_without_allow_remote(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(EmulatorServer, "server_bind", lambda self: pytest.fail("bound"))
    assert cli.main(["--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err
    assert "0.0.0.0" in err
    assert "loopback" in err


# --------------------------------------------------------------------------- 3. slow clients


@pytest.fixture
def capped() -> Iterator[EmulatorServer]:
    with serve(qps=0, max_handlers=8, header_timeout=3.0) as server:
        yield server


def connect(server: EmulatorServer) -> socket.socket:
    host, port = server.server_address[:2]
    return socket.create_connection((str(host), int(port)), timeout=5)


def test_slow_header_clients_cost_no_thread_each(capped: EmulatorServer) -> None:
    before = threading.active_count()
    slow: list[socket.socket] = []
    try:
        for _ in range(100):
            sock = connect(capped)
            sock.sendall(b"POST /event/custom/upload HTTP/1.1\r\nHost: x\r\n")  # never finished
            slow.append(sock)
        wait_until(
            lambda: capped.connections_accepted >= 100, within=5, what="100 connections accepted"
        )
        assert threading.active_count() <= before + 8 + 1  # the handlers, and the one reader
        started = time.monotonic()
        auth = CmsAuth.from_credentials(capped.credentials, source_ip=SOURCE_IP)
        with httpx.Client(base_url=capped.url, auth=auth, timeout=5) as client:
            answers = [client.post(UPLOAD_PATH, content=GOOD_BODY) for _ in range(20)]
        assert [a.status_code for a in answers] == [200] * 20
        assert time.monotonic() - started < 2.0  # well inside the 3 s header deadline
        assert threading.active_count() <= before + 8 + 1
    finally:
        for sock in slow:
            sock.close()


def test_a_client_that_never_finishes_its_head_is_closed_at_the_deadline() -> None:
    with serve(qps=0, header_timeout=0.5) as server:
        sock = connect(server)
        started = time.monotonic()
        with sock:
            for _ in range(3):  # a trickle does not extend the deadline
                sock.sendall(b"P")
            sock.settimeout(5)
            assert sock.recv(1024) == b""
        took = time.monotonic() - started
    assert 0.4 < took < 2.0, took


def test_connections_over_the_cap_are_refused_at_once() -> None:
    with serve(qps=0, max_connections=4, header_timeout=5.0) as server:
        held = [connect(server) for _ in range(4)]
        try:
            wait_until(lambda: server.connections_open == 4, within=5, what="4 open")
            started = time.monotonic()
            with connect(server) as extra:
                extra.settimeout(5)
                received = b""
                while chunk := extra.recv(65536):
                    received += chunk
            took = time.monotonic() - started
            assert received.startswith(b"HTTP/1.1 503 ")
            assert b"Retry-After: 1" in received
            assert b"too many connections" in received
            assert took < 1.0
        finally:
            for sock in held:
                sock.close()
        wait_until(lambda: server.connections_open == 0, within=5, what="all closed")
        auth = CmsAuth.from_credentials(server.credentials, source_ip=SOURCE_IP)
        with httpx.Client(base_url=server.url, auth=auth, timeout=5) as client:
            assert client.post(UPLOAD_PATH, content=GOOD_BODY).status_code == 200


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_handlers", 0), ("max_connections", 0), ("header_timeout", 0), ("max_handlers", 1.5)],
)
def test_the_caps_are_checked(option: str, value: object) -> None:
    with pytest.raises(ConfigError) as excinfo:
        EmulatorServer(**{option: value})  # type: ignore[arg-type]
    assert excinfo.value.option == option


# --------------------------------------------------------------------------- 4. admin endpoints


ADMIN_CALLS = [
    ("GET", "/_emulator/events"),
    ("GET", "/_emulator/requests"),
    ("GET", "/_emulator/faults"),
    ("POST", "/_emulator/faults"),
    ("POST", "/_emulator/reset"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
def test_admin_endpoints_refuse_anonymous_callers(
    emulator: EmulatorServer, method: str, path: str
) -> None:
    emulator.emulator.handle(
        "POST", UPLOAD_PATH, signed(GOOD_BODY, at=time.time()), GOOD_BODY
    )  # one stored event that must not be read or reset
    with httpx.Client(base_url=emulator.url, timeout=5) as anonymous:
        answer = anonymous.request(method, path, json={"error_500": 1.0})
        wrong = anonymous.request(method, path, headers={ADMIN_TOKEN_HEADER: "guess"})
    assert answer.status_code == 401
    assert ADMIN_TOKEN_HEADER in answer.json()["msg"]
    assert wrong.status_code == 403
    assert len(emulator.events()) == 1
    assert emulator.emulator.faults.error_500 == 0.0


def test_admin_endpoints_answer_the_admin_token(emulator: EmulatorServer) -> None:
    headers = {ADMIN_TOKEN_HEADER: emulator.admin_token}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=5) as admin:
        assert admin.get("/_emulator/events").json() == []
        assert admin.post("/_emulator/faults", json={"error_503": 0.5}).status_code == 200
        assert admin.get("/_emulator/faults").json()["error_503"] == 0.5
        assert admin.post("/_emulator/reset").json() == {"ok": True}


def test_admin_endpoints_answer_a_request_signed_with_an_accepted_key(
    emulator: EmulatorServer,
) -> None:
    auth = CmsAuth.from_credentials(emulator.credentials, source_ip=SOURCE_IP)
    with httpx.Client(base_url=emulator.url, auth=auth, timeout=5) as signed_admin:
        assert signed_admin.get("/_emulator/requests").status_code == 200
        assert signed_admin.post("/_emulator/faults", json={"error_500": 0.1}).status_code == 200
    assert emulator.emulator.faults.error_500 == 0.1
    stranger = CmsAuth("LTAIstranger", "not-accepted", source_ip=SOURCE_IP)
    with httpx.Client(base_url=emulator.url, auth=stranger, timeout=5) as other:
        refused = other.get("/_emulator/events")
    assert refused.status_code == 403
    assert "unknown AccessKeyId" in refused.json()["msg"]


def test_health_stays_open(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.url, timeout=5) as anonymous:
        assert anonymous.get("/_emulator/health").json() == {"ok": True}


def test_the_admin_token_is_random_and_kept_out_of_reprs(emulator: EmulatorServer) -> None:
    token = emulator.admin_token
    assert isinstance(token, str)
    assert len(token) >= 32
    with serve() as other:
        assert other.admin_token != token
    assert token not in repr(emulator)
    assert token not in repr(emulator.emulator)


def test_the_cli_banner_prints_the_admin_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[EmulatorServer] = []
    real_serve = serve

    def serve_and_stop(*args: object, **kwargs: object) -> EmulatorServer:
        server = real_serve(*args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    monkeypatch.setattr("cms_magic.emulator.cli.serve", serve_and_stop)
    monkeypatch.setattr(cli, "_stop_on_signals", _stop_at_once)
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert f"{ADMIN_TOKEN_HEADER}: {started[0].admin_token}" in out


def _stop_at_once(stop: threading.Event) -> object:
    stop.set()
    return lambda: None
