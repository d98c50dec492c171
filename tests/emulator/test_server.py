"""The emulator: its checks through ``httpx.MockTransport``, then its server over real sockets.

Most tests drive :class:`Emulator` in-process (``handle`` or ``handle_request``) with
requests signed by the package's own :class:`CmsAuth` and injected clocks. The socket
tests serve on 127.0.0.1 and stop every server they start.
"""

from __future__ import annotations

import email.utils
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorResponse,
    EmulatorServer,
    demo_credentials,
    main,
    serve,
)
from cms_magic.errors import ConfigError
from cms_magic.protocol import MAX_BODY_BYTES, MAX_CLOCK_SKEW_SECONDS, UPLOAD_PATH
from cms_magic.signing import CmsAuth, format_date

REPO = Path(__file__).resolve().parents[2]
NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
SOURCE_IP = "192.0.2.1"
GOOD_BODY = b'[{"name":"Event_0","content":"123,abc","groupId":100}]'
REQUEST_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")

Pairs = list[tuple[str, str]]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_emulator(**kwargs: Any) -> Emulator:
    kwargs.setdefault("clock", lambda: NOW)
    kwargs.setdefault("monotonic", FakeClock())
    return Emulator(**kwargs)


def signed(
    body: bytes,
    *,
    credentials: Credentials | None = None,
    at: float = NOW,
    headers: dict[str, str] | None = None,
) -> Pairs:
    """The headers CmsAuth sends for ``body``, as (name, value) pairs."""
    creds = credentials or demo_credentials()
    request = httpx.Request(
        "POST", f"http://emulator.test{UPLOAD_PATH}", content=body, headers=headers
    )
    CmsAuth.from_credentials(creds, source_ip=SOURCE_IP, clock=lambda: at).sign(request)
    return request.headers.multi_items()


def replaced(pairs: Pairs, name: str, value: str | None) -> Pairs:
    """``pairs`` with header ``name`` set to ``value`` (dropped when ``None``)."""
    kept = [(n, v) for n, v in pairs if n.lower() != name.lower()]
    return kept if value is None else [*kept, (name, value)]


def post(emu: Emulator, body: bytes, pairs: Pairs | None = None) -> EmulatorResponse:
    return emu.handle("POST", UPLOAD_PATH, signed(body) if pairs is None else pairs, body)


def mock_client(
    emu: Emulator, credentials: Credentials | None = None, *, at: float = NOW
) -> httpx.Client:
    auth = CmsAuth.from_credentials(
        credentials or demo_credentials(), source_ip=SOURCE_IP, clock=lambda: at
    )
    return httpx.Client(
        transport=httpx.MockTransport(emu.handle_request),
        auth=auth,
        base_url="http://emulator.test",
    )


def upload(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(UPLOAD_PATH, content=body)


# --------------------------------------------------------------------------- accepted


def test_demo_credentials_are_the_published_pair() -> None:
    creds = demo_credentials()
    assert (creds.access_key_id, creds.access_key_secret) == (
        DEMO_ACCESS_KEY_ID,
        DEMO_ACCESS_KEY_SECRET,
    )
    assert creds.security_token is None
    assert creds.source == "cms_magic emulator demo credentials"
    assert Emulator().credentials == (creds,)


def test_good_request_is_accepted_stored_and_logged() -> None:
    emu = make_emulator()
    with mock_client(emu) as client:
        response = upload(client, GOOD_BODY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["date"] == format_date(NOW)
    payload = response.json()
    assert set(payload) == {"code", "msg", "requestId"}
    assert payload["code"] == "200"
    assert payload["msg"] == ""
    assert REQUEST_ID.match(payload["requestId"])
    assert emu.events() == [{"name": "Event_0", "content": "123,abc", "groupId": 100}]
    assert emu.requests() == [
        {
            "status": 200,
            "code": "200",
            "msg": "",
            "events": 1,
            "bytes": len(GOOD_BODY),
            "key_id": DEMO_ACCESS_KEY_ID,
            "time": "2023-11-14T22:13:20.000+00:00",
            "request_id": payload["requestId"],
            "fault": None,
        }
    ]


def test_the_documents_own_request_is_accepted() -> None:
    """The worked vector of protocol.md, sent with exactly its headers."""
    body = (
        b'[{"content":"123,abc","groupId":100,"name":"Event_0","time":"20171023T144439.948+0800"}]'
    )
    date = "Mon, 23 Oct 2017 06:51:11 GMT"
    emu = Emulator(
        Credentials("testak", "testsecret"),
        clock=lambda: email.utils.parsedate_to_datetime(date).timestamp(),
    )
    headers = [
        ("Authorization", "testak:BDD5DA3177AAAFA2A3643C1F52A5CF2DAE1E8CCD"),
        ("Content-Length", "88"),
        ("Content-MD5", "6FE653772E0204F86B484AF1392DD6E6"),
        ("Content-Type", "application/json"),
        ("Date", date),
        ("Host", "metrichub-cms-cn-hangzhou.aliyuncs.com"),
        ("x-cms-signature", "hmac-sha1"),
        ("x-cms-api-version", "1.0"),
        ("x-cms-ip", "30.27.84.196"),
        ("User-Agent", "cms-java-sdk-v-1.0"),
    ]
    response = emu.handle("POST", UPLOAD_PATH, headers, body)
    assert response.status == 200, response.json()
    assert emu.events()[0]["time"] == "20171023T144439.948+0800"


def test_several_keys_are_accepted() -> None:
    other = Credentials("LTAIsecondKey0001", "second-secret")
    emu = make_emulator(credentials=[demo_credentials(), other])
    for creds in (demo_credentials(), other):
        assert post(emu, GOOD_BODY, signed(GOOD_BODY, credentials=creds)).status == 200
    assert [r["key_id"] for r in emu.requests()] == [DEMO_ACCESS_KEY_ID, "LTAIsecondKey0001"]


# --------------------------------------------------------------------------- tampering


def test_body_changed_after_signing_fails_content_md5() -> None:
    emu = make_emulator()
    pairs = signed(GOOD_BODY)
    tampered = GOOD_BODY.replace(b"Event_0", b"Event_1")
    response = post(emu, tampered, pairs)
    assert response.status == 400
    assert response.json()["code"] == "400"
    assert "Content-MD5" in response.json()["msg"]
    assert emu.events() == []


def test_signed_header_changed_fails_signature_and_shows_the_string_to_sign() -> None:
    emu = make_emulator()
    pairs = replaced(signed(GOOD_BODY), "x-cms-ip", "192.0.2.2")
    response = post(emu, GOOD_BODY, pairs)
    assert response.status == 403
    msg = response.json()["msg"]
    assert response.json()["code"] == "403"
    assert "signature does not match" in msg
    assert "string to sign" in msg
    # the server's view, with the line breaks shown escaped, and no secret in it
    assert "\\nx-cms-api-version:1.0\\nx-cms-ip:192.0.2.2\\nx-cms-signature:hmac-sha1\\n" in msg
    assert msg.count("\n") == 0
    assert f"\\n{UPLOAD_PATH}'" in msg
    assert DEMO_ACCESS_KEY_SECRET not in msg
    assert emu.events() == []


def test_one_character_changed_in_the_signature_fails() -> None:
    emu = make_emulator()
    pairs = signed(GOOD_BODY)
    authorization = dict(pairs)["authorization"]
    flipped = authorization[:-1] + ("0" if authorization[-1] != "0" else "1")
    response = post(emu, GOOD_BODY, replaced(pairs, "Authorization", flipped))
    assert response.status == 403
    assert "signature does not match" in response.json()["msg"]


def test_wrong_secret_fails_signature() -> None:
    emu = make_emulator()
    wrong = Credentials(DEMO_ACCESS_KEY_ID, "not-the-secret")
    response = post(emu, GOOD_BODY, signed(GOOD_BODY, credentials=wrong))
    assert response.status == 403
    assert "signature does not match" in response.json()["msg"]


def test_unknown_key_is_refused() -> None:
    emu = make_emulator()
    stranger = Credentials("LTAIsomeoneElse01", "whatever")
    response = post(emu, GOOD_BODY, signed(GOOD_BODY, credentials=stranger))
    assert response.status == 403
    assert "unknown AccessKeyId 'LTAIsomeoneElse01'" in response.json()["msg"]
    assert emu.requests()[0]["key_id"] == "LTAIsomeoneElse01"


@pytest.mark.parametrize(
    ("offset", "status"),
    [
        (-(MAX_CLOCK_SKEW_SECONDS + 1), 403),
        (MAX_CLOCK_SKEW_SECONDS + 1, 403),
        (-(MAX_CLOCK_SKEW_SECONDS - 1), 200),
        (MAX_CLOCK_SKEW_SECONDS - 1, 200),
    ],
)
def test_date_must_be_near_the_server_clock(offset: int, status: int) -> None:
    emu = make_emulator()
    response = post(emu, GOOD_BODY, signed(GOOD_BODY, at=NOW + offset))
    assert response.status == status
    if status == 403:
        msg = response.json()["msg"]
        assert f"is {abs(offset)} s off the server clock" in msg
        assert format_date(NOW + offset) in msg


def test_stale_date_through_the_mock_transport() -> None:
    emu = make_emulator()
    with mock_client(emu, at=NOW - 3600) as client:
        response = upload(client, GOOD_BODY)
    assert response.status_code == 403
    assert "3600 s off the server clock" in response.json()["msg"]


def test_unparseable_date_is_a_syntax_error() -> None:
    emu = make_emulator()
    response = post(emu, GOOD_BODY, replaced(signed(GOOD_BODY), "Date", "yesterday"))
    assert response.status == 400
    assert "Date 'yesterday' is not an RFC 1123 date" in response.json()["msg"]


# --------------------------------------------------------------------------- route, size, headers


def test_wrong_path_is_404_and_wrong_method_405() -> None:
    emu = make_emulator()
    response = emu.handle("POST", "/metric/custom/upload", signed(GOOD_BODY), GOOD_BODY)
    assert (response.status, response.json()["code"]) == (404, "404")
    assert UPLOAD_PATH in response.json()["msg"]
    response = emu.handle("GET", UPLOAD_PATH, signed(GOOD_BODY), GOOD_BODY)
    assert (response.status, response.json()["code"]) == (405, "405")
    assert response.headers["Allow"] == "POST"
    assert "use POST" in response.json()["msg"]


def event_body_of_exactly(size: int) -> bytes:
    head, tail = b'[{"name":"big","content":"', b'"}]'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_body_size_limit_is_exact() -> None:
    emu = make_emulator()
    at_limit = event_body_of_exactly(MAX_BODY_BYTES)
    assert post(emu, at_limit).status == 200
    over = event_body_of_exactly(MAX_BODY_BYTES + 1)
    response = post(emu, over)
    assert response.status == 400
    assert f"over the limit of {MAX_BODY_BYTES} bytes" in response.json()["msg"]
    assert len(emu.events()) == 1


def test_body_size_limit_is_configurable() -> None:
    emu = make_emulator(max_body_bytes=len(GOOD_BODY) - 1)
    response = post(emu, GOOD_BODY)
    assert response.status == 400
    assert "over the limit" in response.json()["msg"]


@pytest.mark.parametrize(
    "header",
    [
        "Authorization",
        "Content-MD5",
        "Content-Type",
        "Date",
        "x-cms-signature",
        "x-cms-api-version",
        "x-cms-ip",
        "Content-Length",
    ],
)
def test_missing_required_header_is_named(header: str) -> None:
    emu = make_emulator()
    response = post(emu, GOOD_BODY, replaced(signed(GOOD_BODY), header, None))
    assert response.status == 400
    assert f"missing required header {header}" in response.json()["msg"]


def test_content_length_is_not_required_without_a_body() -> None:
    emu = make_emulator()
    response = post(emu, b"", replaced(signed(b""), "Content-Length", None))
    assert response.status == 400
    assert response.json()["msg"].startswith("body is not valid JSON")


@pytest.mark.parametrize(
    ("header", "value", "fragment"),
    [
        ("x-cms-signature", "hmac-sha256", "x-cms-signature must be 'hmac-sha1'"),
        ("x-cms-api-version", "2.0", "x-cms-api-version must be '1.0'"),
        ("Content-Type", "text/plain", "Content-Type must be 'application/json'"),
        ("Authorization", "no-colon-here", "Authorization must be '<AccessKeyId>:<Signature>'"),
        ("Content-Length", "12x", "Content-Length must be a byte count"),
        ("Content-Length", "3", "Content-Length is 3 but the body has"),
    ],
)
def test_wrong_header_values_are_named(header: str, value: str, fragment: str) -> None:
    emu = make_emulator()
    response = post(emu, GOOD_BODY, replaced(signed(GOOD_BODY), header, value))
    assert response.status == 400
    assert fragment in response.json()["msg"]


def test_content_md5_hints_at_case_and_base64() -> None:
    emu = make_emulator()
    pairs = signed(GOOD_BODY)
    md5 = dict(pairs)["content-md5"]
    lower = post(emu, GOOD_BODY, replaced(pairs, "Content-MD5", md5.lower()))
    assert "upper case" in lower.json()["msg"]
    b64 = post(emu, GOOD_BODY, replaced(pairs, "Content-MD5", "AAAAAAAAAAAAAAAAAAAAAA=="))
    assert "base64" in b64.json()["msg"]


# --------------------------------------------------------------------------- the body


BAD_BODIES = [
    (b"\xff\xfe[]", "body is not valid UTF-8"),
    (b"[{", "body is not valid JSON"),
    (b'[{"name":"a","content":"b","groupId":NaN}]', "NaN is not valid JSON"),
    (b'{"name":"a","content":"b"}', "body must be a JSON array of events, got an object"),
    (b"[]", "at least 1 event"),
    (b'[{"name":"a","content":"b"}, "x"]', "event 1: must be a JSON object, got a string 'x'"),
    (b'[{"content":"b"}]', "event 0: 'name' is required"),
    (b'[{"name":"","content":"b"}]', "event 0: 'name' must not be empty"),
    (b'[{"name":7,"content":"b"}]', "event 0: 'name' must be a string, got 7"),
    (b'[{"name":"a"}]', "event 0: 'content' is required"),
    (b'[{"name":"a","content":""}]', "event 0: 'content' must not be empty"),
    (b'[{"name":"a","content":null}]', "event 0: 'content' must be a string, got None"),
    (b'[{"name":"a","content":"b","groupId":"abc"}]', "'groupId' must be an integer >= 0"),
    (b'[{"name":"a","content":"b","groupId":true}]', "'groupId' must be an integer >= 0"),
    (b'[{"name":"a","content":"b","groupId":-1}]', "'groupId' must be an integer >= 0"),
    (b'[{"name":"a","content":"b","groupId":1.0}]', "'groupId' must be an integer >= 0"),
    (b'[{"name":"a","content":"b","time":"2017-10-23 14:44:39"}]', "'time' must be"),
    (b'[{"name":"a","content":"b","time":"20171332T144439.948+0800"}]', "'time' must be"),
    (b'[{"name":"a","content":"b","time":"20171023T250000.000+0800"}]', "'time' must be"),
    (b'[{"name":"a","content":"b","time":"20171023T144439.948+2500"}]', "'time' must be"),
    (b'[{"name":"a","content":"b","time":1.5}]', "'time' must be"),
    (b'[{"name":"a","content":"b","time":-5}]', "'time' must be"),
    (b'[{"name":"a","content":"b","time":""}]', "'time' must be"),
    (b'[{"name":"a","content":"b","level":"WARN"}]', "event 0: unknown field 'level'"),
]


@pytest.mark.parametrize(("body", "fragment"), BAD_BODIES)
def test_each_body_rule(body: bytes, fragment: str) -> None:
    emu = make_emulator()
    with mock_client(emu) as client:
        response = upload(client, body)
    assert response.status_code == 400
    assert response.json()["code"] == "400"
    assert fragment in response.json()["msg"]
    assert emu.events() == []
    assert emu.requests()[0]["status"] == 400


@pytest.mark.parametrize(
    "event",
    [
        {"name": "a", "content": "b"},
        {"name": "a", "content": "b", "groupId": 0},
        {"name": "a", "content": "b", "time": "20171023T144439.948-0330"},
        {"name": "a", "content": "b", "time": "1508741079948"},
        {"name": "a", "content": "b", "time": 1508741079948},
        {"name": "事件", "content": "内容 ✓", "groupId": 2**63 - 1},
    ],
)
def test_valid_events_are_accepted(event: dict[str, Any]) -> None:
    emu = make_emulator()
    body = json.dumps([event], ensure_ascii=False).encode("utf-8")
    with mock_client(emu) as client:
        response = upload(client, body)
    assert response.status_code == 200, response.json()
    assert emu.events() == [event]


def test_one_bad_event_refuses_the_whole_request_and_names_its_index() -> None:
    emu = make_emulator()
    events = [{"name": f"e{i}", "content": "c"} for i in range(5)]
    events[3]["groupId"] = "x"
    response = post(emu, json.dumps(events).encode())
    assert response.status == 400
    assert response.json()["msg"].startswith("event 3: 'groupId'")
    assert emu.events() == []
    assert emu.requests()[0]["events"] == 5


def test_long_values_are_cut_in_messages() -> None:
    emu = make_emulator()
    body = json.dumps([{"name": "a", "content": "b", "groupId": "9" * 1000}]).encode()
    msg = post(emu, body).json()["msg"]
    assert "'" + "9" * 79 in msg
    assert "9" * 81 not in msg
    assert "(1002 characters)" in msg


def test_event_count_limit() -> None:
    emu = make_emulator()
    hundred = json.dumps([{"name": "n", "content": str(i)} for i in range(100)]).encode()
    assert post(emu, hundred).status == 200
    too_many = json.dumps([{"name": "n", "content": str(i)} for i in range(101)]).encode()
    response = post(emu, too_many)
    assert response.status == 400
    assert "101 events, over the limit of 100" in response.json()["msg"]
    assert len(emu.events()) == 100


def test_poison_marker_refuses_the_request_holding_it() -> None:
    emu = make_emulator(poison_marker="<poison>")
    events = [{"name": "n", "content": f"row {i}"} for i in range(5)]
    events[2]["content"] = "row 2 <poison> here"
    response = post(emu, json.dumps(events).encode())
    assert response.status == 400
    assert response.json()["msg"] == "event 2: content contains the poison marker"
    assert emu.events() == []
    clean = json.dumps(events[:2] + events[3:]).encode()
    assert post(emu, clean).status == 200
    assert len(emu.events()) == 4


# --------------------------------------------------------------------------- STS


STS = Credentials("STS.NUgYrLnoC37mZZCNnAbez", "sts-secret", security_token="sts-token-value")


def test_sts_token_is_honoured() -> None:
    emu = make_emulator(credentials=STS)
    with mock_client(emu, STS) as client:
        assert upload(client, GOOD_BODY).status_code == 200


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "send its security token in x-cms-security-token"),
        ({"x-cms-security-token": "stale-token"}, "does not match the token"),
        (
            {"x-cms-security-token": "sts-token-value", "x-cms-caller-type": "user"},
            "x-cms-caller-type must be 'token'",
        ),
    ],
)
def test_sts_key_without_its_token_is_refused(headers: dict[str, str], fragment: str) -> None:
    emu = make_emulator(credentials=STS)
    no_token = Credentials(STS.access_key_id, STS.access_key_secret)  # signs what it is given
    pairs = signed(GOOD_BODY, credentials=no_token, headers=headers)
    response = post(emu, GOOD_BODY, pairs)
    assert response.status == 403
    assert fragment in response.json()["msg"]


# --------------------------------------------------------------------------- quota


def test_quota_throttles_then_refills() -> None:
    tick = FakeClock(100.0)
    emu = make_emulator(qps=4, monotonic=tick)
    with mock_client(emu) as client:
        assert [upload(client, GOOD_BODY).status_code for _ in range(4)] == [200] * 4
        throttled = upload(client, GOOD_BODY)
        assert throttled.status_code == 403
        assert throttled.headers["Retry-After"] == "1"
        msg = throttled.json()["msg"]
        assert "rate limit exceeded" in msg
        assert "throttl" in msg.lower()
        assert "at most 4 requests per second" in msg
        tick.now += 0.25  # one token's worth (exact in binary floating point)
        assert upload(client, GOOD_BODY).status_code == 200
        assert upload(client, GOOD_BODY).status_code == 403
        tick.now += 1.0
        assert [upload(client, GOOD_BODY).status_code for _ in range(5)] == [200] * 4 + [403]
    assert len(emu.events()) == 9


def test_quota_is_per_access_key() -> None:
    other = Credentials("LTAIsecondKey0001", "second-secret")
    emu = make_emulator(credentials=[demo_credentials(), other], qps=1)
    assert post(emu, GOOD_BODY).status == 200
    assert post(emu, GOOD_BODY).status == 403
    assert post(emu, GOOD_BODY, signed(GOOD_BODY, credentials=other)).status == 200


def test_refused_signatures_use_no_quota() -> None:
    emu = make_emulator(qps=1)
    bad = replaced(signed(GOOD_BODY), "x-cms-ip", "192.0.2.99")
    assert [post(emu, GOOD_BODY, bad).status for _ in range(5)] == [403] * 5
    assert post(emu, GOOD_BODY).status == 200


def test_qps_zero_turns_the_quota_off_and_set_qps_changes_it() -> None:
    emu = make_emulator(qps=0)
    assert {post(emu, GOOD_BODY).status for _ in range(50)} == {200}
    emu.set_qps(1)
    assert emu.qps == 1.0
    assert [post(emu, GOOD_BODY).status for _ in range(2)] == [200, 403]
    emu.set_qps(0)
    assert post(emu, GOOD_BODY).status == 200


def test_fractional_qps_allows_one_request_per_period() -> None:
    tick = FakeClock()
    emu = make_emulator(qps=0.5, monotonic=tick)
    assert [post(emu, GOOD_BODY).status for _ in range(2)] == [200, 403]
    tick.now += 2.0
    assert post(emu, GOOD_BODY).status == 200


# --------------------------------------------------------------------------- state and config


def test_every_request_is_logged_and_reset_forgets_everything() -> None:
    emu = make_emulator(qps=1)
    post(emu, GOOD_BODY)
    post(emu, GOOD_BODY, replaced(signed(GOOD_BODY), "Authorization", None))
    emu.handle("PUT", "/nowhere", [], b"")
    log = emu.requests()
    assert [(r["status"], r["key_id"]) for r in log] == [
        (200, DEMO_ACCESS_KEY_ID),
        (400, None),
        (404, None),
    ]
    assert log[1]["events"] == 1
    assert log[1]["bytes"] == len(GOOD_BODY)
    assert len({r["request_id"] for r in log}) == 3
    emu.reset()
    assert emu.events() == []
    assert emu.requests() == []
    assert post(emu, GOOD_BODY).status == 200  # the quota bucket is full again


def test_returned_state_is_a_copy() -> None:
    emu = make_emulator()
    post(emu, GOOD_BODY)
    emu.events()[0]["name"] = "changed"
    emu.requests().clear()
    assert emu.events()[0]["name"] == "Event_0"
    assert len(emu.requests()) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"credentials": []},
        {"credentials": ["LTAIplainString"]},
        {
            "credentials": [
                Credentials("LTAIsameKeyId0001", "one"),
                Credentials("LTAIsameKeyId0001", "two"),
            ]
        },
        {"qps": -1},
        {"max_body_bytes": 0},
        {"poison_marker": ""},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Emulator(**kwargs)


def test_set_qps_refuses_a_negative_rate() -> None:
    emu = Emulator()
    with pytest.raises(ConfigError, match=r"^qps=-0.5: must be a number >= 0 \(0 turns the quota off\)$"):
        emu.set_qps(-0.5)
    assert emu.qps == 20.0


def test_repr_masks_the_key_ids() -> None:
    text = repr(Emulator(Credentials("LTAI5tAbCdEfGh1234abcd", "hidden-secret-value")))
    assert "LTAI****abcd" in text
    assert "hidden" not in text


# --------------------------------------------------------------------------- the server


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with serve(qps=0) as emu:
        yield emu


def live_client(server: EmulatorServer) -> httpx.Client:
    auth = CmsAuth.from_credentials(server.credentials, source_ip=SOURCE_IP)
    return httpx.Client(base_url=server.url, auth=auth, timeout=10)


def raw_exchange(server: EmulatorServer, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes, then read until the server closes the connection."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_server_accepts_a_signed_upload(server: EmulatorServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
    assert server.credentials == demo_credentials()
    with live_client(server) as client:
        response = upload(client, GOOD_BODY)
    assert response.status_code == 200, response.text
    assert response.json()["code"] == "200"
    assert server.events() == [{"name": "Event_0", "content": "123,abc", "groupId": 100}]
    assert server.requests()[0]["status"] == 200


def test_admin_endpoints(server: EmulatorServer) -> None:
    with live_client(server) as client:
        assert client.get("/_emulator/health").json() == {"ok": True}
        upload(client, GOOD_BODY)
        upload(client, b"[]")
        events = client.get("/_emulator/events")
        assert events.headers["content-type"] == "application/json"
        assert events.json() == [{"name": "Event_0", "content": "123,abc", "groupId": 100}]
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
    assert server.requests() == []  # admin calls are not uploads


def test_oversized_body_is_refused_before_it_is_read(server: EmulatorServer) -> None:
    """Only the headers and a few bytes are sent: a server that waited for the body would
    hang until its 30 s request timeout; this one answers at once and closes."""
    declared = MAX_BODY_BYTES + 1
    request = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: emulator\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n[{{"
    ).encode()
    started = time.monotonic()
    received = raw_exchange(server, request)
    assert time.monotonic() - started < 2.5
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close" in head
    payload = json.loads(body)
    assert payload["code"] == "400"
    assert f"declares a body of {declared} bytes" in payload["msg"]
    assert server.requests()[-1]["bytes"] == declared


def test_oversized_body_sent_in_full_still_gets_its_400(server: EmulatorServer) -> None:
    with live_client(server) as client:
        response = upload(client, event_body_of_exactly(MAX_BODY_BYTES + 1))
    assert response.status_code == 400
    assert response.headers["connection"] == "close"
    assert "over the limit" in response.json()["msg"]


def test_expect_100_continue_is_not_given_for_an_oversized_body(server: EmulatorServer) -> None:
    request = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: emulator\r\nExpect: 100-continue\r\n"
        f"Content-Length: {MAX_BODY_BYTES * 4}\r\n\r\n"
    ).encode()
    received = raw_exchange(server, request)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"100 Continue" not in received


def test_chunked_bodies_are_refused_with_advice(server: EmulatorServer) -> None:
    request = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: emulator\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\n[]\r\n0\r\n\r\n"
    ).encode()
    received = raw_exchange(server, request)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"send the body with a Content-Length header" in received


def test_keep_alive_serves_50_requests_on_one_connection_quickly(server: EmulatorServer) -> None:
    with live_client(server) as client:
        upload(client, GOOD_BODY)  # warm up: connect once
        started = time.perf_counter()
        statuses = [upload(client, GOOD_BODY).status_code for _ in range(50)]
        elapsed = time.perf_counter() - started
    assert statuses == [200] * 50
    assert server.connections_accepted == 1
    assert len(server.events()) == 51
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
    with pytest.raises(RuntimeError, match="stopped"):
        emu.start()


def test_serve_passes_emulator_options() -> None:
    with serve(qps=7, poison_marker="!!", max_body_bytes=1000) as emu:
        assert emu.emulator.qps == 7.0
        assert emu.emulator.poison_marker == "!!"
        assert emu.emulator.max_body_bytes == 1000
        assert "running" in repr(emu)


# --------------------------------------------------------------------------- command line


def read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.mark.parametrize("user_keys", [False, True], ids=["demo-keys", "user-keys"])
def test_command_line_serves_until_sigterm(user_keys: bool) -> None:
    args = [sys.executable, "-m", "cms_magic.emulator", "--port", "0"]
    user_secret = "user-given-secret-value"
    if user_keys:
        args += ["--access-key-id", "LTAIuserGivenKey01", "--access-key-secret", user_secret]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            output = ""
            deadline = time.monotonic() + 20
            while "Press Ctrl-C" not in output:
                output += lines.get(timeout=max(0.1, deadline - time.monotonic()))
            match = re.search(r"http://127\.0\.0\.1:\d+", output)
            assert match, output
            health = httpx.get(f"{match.group(0)}/_emulator/health", timeout=5)
            assert health.json() == {"ok": True}
            if user_keys:
                assert user_secret not in output
                assert f"******** ({len(user_secret)} characters, as given)" in output
            else:
                assert DEMO_ACCESS_KEY_ID in output
                assert DEMO_ACCESS_KEY_SECRET in output
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
            assert time.monotonic() - started < 5
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=5)


def test_command_line_wants_both_halves_of_a_key_pair(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["--access-key-id", "LTAIuserGivenKey01"])
    assert excinfo.value.code == 2
    assert "--access-key-secret" in capsys.readouterr().err
