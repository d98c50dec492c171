"""The hostile server itself: each mode does what it says, within its bounds."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from .hostile import MODES, HostileServer, gzip_bomb, hostile_server

TOKEN = "hostile-sts-token-value-0001"
HEADERS = {
    "Content-Type": "application/json",
    "Authorization": "LTAIhostiletest01:0123456789ABCDEF",
    "x-cms-security-token": TOKEN,
    "x-cms-signature": "hmac-sha1",
    "Date": "Mon, 23 Oct 2017 06:51:11 GMT",
}


def body(*contents: str) -> bytes:
    return json.dumps([{"name": "t", "content": c} for c in contents]).encode()


def post(server: HostileServer, content: bytes = b"", timeout: float = 5.0) -> httpx.Response:
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        return client.post(
            server.url + "/event/custom/upload", content=content or body("a"), headers=HEADERS
        )


def raw_request(content: bytes) -> bytes:
    head = f"POST /event/custom/upload HTTP/1.1\r\nHost: x\r\nContent-Length: {len(content)}\r\n"
    return head.encode() + b"x-cms-security-token: " + TOKEN.encode() + b"\r\n\r\n" + content


@pytest.fixture
def connect() -> Iterator[Callable[[HostileServer], socket.socket]]:
    opened: list[socket.socket] = []

    def make(server: HostileServer) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        opened.append(sock)
        return sock

    yield make
    for sock in opened:
        sock.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll a condition another thread makes true, up to ``timeout`` seconds."""
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            return False
        threading.Event().wait(0.005)
    return True


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_ok_stores_and_logs() -> None:
    with hostile_server("ok") as server:
        answer = post(server, body("a", "b"))
        assert answer.status_code == 200
        assert answer.json()["code"] == "200"
        assert [(s.request, s.event["content"]) for s in server.stored()] == [(1, "a"), (1, "b")]
        assert server.wait_idle()
        (entry,) = server.log()
        assert (entry.request, entry.mode, entry.status, entry.stored) == (1, "ok", 200, 2)
        assert entry.ended
        assert entry.headers["x-cms-security-token"] == TOKEN


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        HostileServer("explode")
    with pytest.raises(ValueError, match="mixed_pool"):
        HostileServer("mixed", mixed_pool=("ok", "mixed"))


def test_modes_switch_per_test_and_keep_the_log() -> None:
    with hostile_server("http_401") as server:
        assert post(server).status_code == 401
        server.set_mode("ok")
        assert post(server).status_code == 200
        assert server.wait_idle()  # the answer is written before the log entry is closed
        assert [(r.mode, r.status, r.stored) for r in server.log()] == [
            ("http_401", 401, 0),
            ("ok", 200, 1),
        ]


def test_trickle_status_sends_the_status_line_byte_by_byte(
    connect: Callable[[HostileServer], socket.socket],
) -> None:
    with hostile_server("trickle_status", interval=0.05) as server:
        sock = connect(server)
        began = time.monotonic()
        sock.sendall(raw_request(body("a")))
        rest = sock.recv(100)
        reads = 1
        while b'"code":"200"' not in rest:
            chunk = sock.recv(4096)
            assert chunk
            rest += chunk
            reads += 1
        # The server sleeps after each of the 17 bytes of its status line: however late
        # this thread reads, the answer cannot come whole at once, nor sooner than that.
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
        assert reads > 1
        assert time.monotonic() - began >= 17 * 0.05
        assert len(server.stored()) == 1


def test_trickle_body_sends_a_chunked_body_byte_by_byte() -> None:
    with hostile_server("trickle_body", interval=0.02) as server:
        began = time.monotonic()
        answer = post(server)
        assert answer.headers["transfer-encoding"] == "chunked"
        assert answer.json() == {"code": "200", "msg": ""}
        assert time.monotonic() - began >= 22 * 0.02
        assert len(server.stored()) == 1


def test_trickle_stops_when_the_client_hangs_up(
    connect: Callable[[HostileServer], socket.socket],
) -> None:
    with hostile_server("trickle_body", interval=0.5) as server:
        sock = connect(server)
        sock.sendall(raw_request(body("a")))
        assert read_head(sock).startswith(b"HTTP/1.1 200")
        sock.close()
        assert wait_until(lambda: server.log()[0].client_hung_up)
        assert server.log()[0].held < 2.0


def test_huge_body_declares_2_gib_and_stops_when_the_client_hangs_up(
    connect: Callable[[HostileServer], socket.socket],
) -> None:
    with hostile_server("huge_body") as server:
        sock = connect(server)
        sock.sendall(raw_request(body("a")))
        head = read_head(sock)
        assert b"Content-Length: 2147483648" in head
        got = len(head)
        while got < 64 * 1024:
            got += len(sock.recv(65536))
        sock.close()
        assert wait_until(lambda: server.log()[0].client_hung_up)
        assert server.log()[0].sent_bytes < server.huge_cap
        assert len(server.stored()) == 1


def test_huge_body_is_capped(connect: Callable[[HostileServer], socket.socket]) -> None:
    with hostile_server("huge_body", huge_cap=300_000) as server:
        sock = connect(server)
        sock.sendall(raw_request(body("a")))
        got = 0
        while chunk := sock.recv(65536):
            got += len(chunk)
        assert 300_000 <= got < 300_000 + 70_000
        entry = server.log()[0]
        assert not entry.client_hung_up
        assert entry.sent_bytes >= 300_000


def test_gzip_bomb_is_small_and_inflates_to_what_was_asked() -> None:
    with hostile_server("gzip_bomb", bomb_bytes=1_000_000) as server:
        with httpx.Client(timeout=5, trust_env=False) as client:
            answer = client.post(server.url + "/event/custom/upload", content=body("a"))
        assert answer.headers["content-encoding"] == "gzip"
        assert int(answer.headers["content-length"]) < 10_000
        assert len(answer.content) == 1_000_000 + len(b'{"code":"200","msg":""}')
        assert answer.json()["code"] == "200"
        assert len(server.stored()) == 1
    default = gzip_bomb(HostileServer().bomb_bytes)
    assert len(default) < 1_000_000
    inflate = zlib.decompressobj(31)
    inflated = sum(
        len(inflate.decompress(default[i : i + 65536])) for i in range(0, len(default), 65536)
    )
    assert inflated >= 200 * 1024 * 1024


def test_echo_headers_echoes_the_token_and_stores_nothing() -> None:
    with hostile_server("echo_headers") as server:
        answer = post(server)
        assert answer.status_code == 403
        msg = answer.json()["msg"]
        assert f"x-cms-security-token: {TOKEN}" in msg
        assert HEADERS["Authorization"] in msg
        assert server.stored() == []


def test_signature_refusal_is_the_services_kind() -> None:
    with hostile_server("http_403_signature") as server:
        answer = post(server)
        assert answer.status_code == 403
        payload = answer.json()
        assert payload["code"] == "403"
        assert "string to sign" in payload["msg"]
        assert f"x-cms-security-token:{TOKEN}" in payload["msg"]
        assert server.stored() == []


@pytest.mark.parametrize("status", [500, 502, 504])
def test_store_then_5xx(status: int) -> None:
    with hostile_server(f"store_then_{status}") as server:
        assert post(server, body("a", "b")).status_code == status
        assert len(server.stored()) == 2
        assert server.log()[0].stored == 2


def test_close_after_headers_stores_then_closes(
    connect: Callable[[HostileServer], socket.socket],
) -> None:
    with hostile_server("close_after_headers") as server:
        sock = connect(server)
        sock.sendall(raw_request(body("a")))
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert data.endswith(b"\r\n\r\n")  # the head alone: the promised body never comes
        assert len(server.stored()) == 1


@pytest.mark.parametrize(
    ("mode", "status", "code", "msg"),
    [
        ("http_401", 401, "401", "Unauthorized"),
        ("http_403_throttling_empty_msg", 403, "Throttling.User", ""),
    ],
)
def test_json_refusals_store_nothing(mode: str, status: int, code: str, msg: str) -> None:
    with hostile_server(mode) as server:
        answer = post(server)
        assert answer.status_code == status
        assert (answer.json()["code"], answer.json()["msg"]) == (code, msg)
        assert server.stored() == []


def test_413_above_the_byte_limit_only() -> None:
    with hostile_server("http_413", max_body=200) as server:
        assert post(server, body(*"abcdefghij")).status_code == 413
        assert server.stored() == []
        assert post(server, body("a")).status_code == 200
        assert len(server.stored()) == 1
        assert [r.mode for r in server.log()] == ["http_413", "ok"]


def test_429_plain_text() -> None:
    with hostile_server("http_429_plain") as server:
        answer = post(server)
        assert answer.status_code == 429
        assert answer.headers["content-type"] == "text/plain"
        assert answer.text == "Too Many Requests\n"
        assert server.stored() == []


def test_retry_after_negative_on_429_and_503() -> None:
    with hostile_server("retry_after_negative") as server:
        answers = [post(server) for _ in range(2)]
        assert [a.status_code for a in answers] == [429, 503]
        assert {a.headers["retry-after"] for a in answers} == {"-5"}
        assert server.stored() == []


def test_fail_first_counts_per_body() -> None:
    with hostile_server("store_then_500", fail_first=2) as server:
        first, second = body("a"), body("b")
        statuses = [
            post(server, b).status_code for b in (first, second, first, first, second, second)
        ]
        assert statuses == [500, 500, 500, 200, 500, 200]
        assert [r.mode for r in server.log()].count("ok") == 2


def test_mixed_is_drawn_from_the_seed_the_body_and_its_attempt() -> None:
    bodies = [body(f"r{i}") for i in range(12)]
    pool = ("ok", "http_401", "store_then_500", "http_429_plain")

    def modes(seed: int) -> list[str]:
        with hostile_server("mixed", seed=seed, mixed_pool=pool) as server:
            for b in [*bodies, *reversed(bodies)]:
                post(server, b)
            log = server.log()
        return [r.mode for r in sorted(log, key=lambda r: (r.body_sha1, r.request))]

    first = modes(1)
    assert first == modes(1)
    assert first != modes(2)
    assert set(first) <= set(pool)
    assert len(set(first)) > 1


def test_every_mode_answers_within_bounds() -> None:
    quick = {"interval": 0.01, "huge_cap": 200_000, "bomb_bytes": 100_000}
    for mode in MODES:
        with hostile_server(mode, **quick) as server:
            # close_after_headers, huge_body: the answer is broken on purpose
            with contextlib.suppress(httpx.HTTPError):
                post(server, timeout=3.0)
            assert len(server.log()) == 1, mode


def test_stop_ends_an_answer_in_flight_and_the_server_stops_itself(
    connect: Callable[[HostileServer], socket.socket],
) -> None:
    server = HostileServer("trickle_status", interval=1.0).start()
    sock = connect(server)
    sock.sendall(raw_request(body("a")))
    assert sock.recv(1) == b"H"
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 3
    assert sock.recv(100) == b""  # closed by the server
    short = HostileServer(lifetime=0.2).start()
    assert wait_until(lambda: not short.running)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", short.port), timeout=1).close()
    short.stop()
