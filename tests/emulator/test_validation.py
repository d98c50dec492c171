"""The emulator's own checks (:mod:`cms_magic.emulator.validation`): each rule as the client
meets it (a request signed by the package's CmsAuth with one thing changed), then the
check functions on their own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
from cms_magic.emulator.validation import (
    Refusal,
    authorization_key_id,
    check_date,
    check_key,
    check_route,
    count_events,
    declared_length,
    event_problem,
    header_fields,
    parse_events,
    show,
    throttled,
    valid_time,
)
from cms_magic.protocol import (
    EVENT_FIELDS,
    GROUP_ID_MAX,
    MAX_BODY_BYTES,
    MAX_CLOCK_SKEW_SECONDS,
    MAX_EVENTS_PER_REQUEST,
    UPLOAD_PATH,
)
from cms_magic.signing import format_date
from tests.emulator._client import (
    GOOD_BODY,
    NOW,
    event_body_of_exactly,
    make_emulator,
    mock_client,
    post,
    replaced,
    signed,
    upload,
)

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


# --------------------------------------------------------------------------- size and headers


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


# --------------------------------------------------------------------------- the functions alone


def test_the_limits_are_the_protocols() -> None:
    assert event_problem({"name": "a", "content": "b", "groupId": GROUP_ID_MAX}) is None
    assert "'groupId'" in str(
        event_problem({"name": "a", "content": "b", "groupId": GROUP_ID_MAX + 1})
    )
    for field in EVENT_FIELDS:
        assert field in str(event_problem({"name": "a", "content": "b", "zzz": 1}))
    most = [{"name": "n", "content": "c"}] * MAX_EVENTS_PER_REQUEST
    assert len(parse_events(json.dumps(most).encode(), None)) == MAX_EVENTS_PER_REQUEST
    with pytest.raises(Refusal) as excinfo:
        parse_events(json.dumps([*most, most[0]]).encode(), None)
    assert (excinfo.value.status, excinfo.value.events) == (400, MAX_EVENTS_PER_REQUEST + 1)


@pytest.mark.parametrize(
    ("body", "fragment", "count"),
    [
        (b"[" * 100_000, "nested too deeply", 0),
        (b"[" + b"9" * 5000 + b"]", "body is not valid JSON", 0),  # past int's digit limit
        (b'[{"name":"a","content":"b","groupId":Infinity}]', "Infinity is not valid JSON", 1),
    ],
)
def test_bodies_python_would_choke_on_are_refused(body: bytes, fragment: str, count: int) -> None:
    with pytest.raises(Refusal, match=fragment) as excinfo:
        parse_events(body, None)
    assert excinfo.value.status == 400
    assert count_events(body) == count  # what the log says the body held


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("20171023T144439.948+0800", True),
        ("20240229T000000.000+0000", True),
        ("20230229T000000.000+0000", False),  # not a leap year
        ("20171023T144439.94+0800", False),
        ("２０１７", False),  # digits, but not ASCII ones
        ("1508741079948", True),
        (1508741079948, True),
        (0, True),
        (-1, False),
        (True, False),
        (1.0, False),
        (None, False),
    ],
)
def test_valid_time(value: object, valid: bool) -> None:
    assert valid_time(value) is valid


def test_show_quotes_strings_and_cuts_long_values() -> None:
    assert show("a'b") == repr("a'b")
    assert show(None) == "None"
    assert show({"k": [1, "事"]}) == '{"k":[1,"事"]}'
    assert show(object.__new__(object)).startswith("<object object")
    long = show("x" * 200)
    assert long == f"{repr('x' * 200)[:80]}... (202 characters)"


def test_headers_read_as_the_signer_reads_them() -> None:
    fields = header_fields([("Date", " one "), ("DATE", "two"), ("X-Cms-Ip", "1.2.3.4")])
    assert fields == {"date": "two", "x-cms-ip": "1.2.3.4"}
    assert authorization_key_id({"authorization": "LTAIkey:SIG"}) == "LTAIkey"
    assert authorization_key_id({"authorization": "no-colon"}) is None
    assert authorization_key_id({"authorization": ":SIG"}) is None
    assert authorization_key_id({}) is None


@pytest.mark.parametrize(
    ("raw", "length"),
    [("12", 12), (" 7 ", 7), ("1e3", None), ("-1", None), (None, None), ("٣", None)],
)
def test_declared_length(raw: str | None, length: int | None) -> None:
    assert declared_length(raw) == length


def test_check_route_keeps_the_query() -> None:
    assert check_route("POST", f"{UPLOAD_PATH}?a=1") == (UPLOAD_PATH, "a=1")
    with pytest.raises(Refusal) as excinfo:
        check_route("DELETE", UPLOAD_PATH)
    assert (excinfo.value.status, excinfo.value.headers) == (405, {"Allow": "POST"})


def test_check_date_at_the_edge_of_the_skew() -> None:
    date = format_date(NOW)
    check_date(date, now=NOW + 10, max_skew_seconds=10)
    with pytest.raises(Refusal) as excinfo:
        check_date(date, now=NOW + 11, max_skew_seconds=10)
    assert excinfo.value.status == 403
    assert "behind the server time" in excinfo.value.msg
    assert "at most 10 s either way" in excinfo.value.msg
    check_date(date.replace("GMT", "-0000"), now=NOW, max_skew_seconds=0)  # UTC, source unknown


def test_check_key_names_the_accepted_keys_masked() -> None:
    keys = [Credentials("LTAI5tAbCdEfGh1234abcd", "s1"), Credentials(DEMO_ACCESS_KEY_ID, "s2")]
    assert check_key(DEMO_ACCESS_KEY_ID, {}, keys) is keys[1]
    with pytest.raises(Refusal) as excinfo:
        check_key("LTAIstranger", {}, keys)
    assert excinfo.value.msg == (
        "unknown AccessKeyId 'LTAIstranger' (this emulator accepts LTAI****abcd, LTAI****Demo)"
    )


def test_throttled_says_when_to_retry() -> None:
    refusal = throttled(2.5, "LTAIkey")
    assert (refusal.status, refusal.headers) == (403, {"Retry-After": "1"})
    assert refusal.msg.startswith(
        "Throttling: rate limit exceeded, at most 2.5 requests per second"
    )


def test_poison_marker_is_looked_for_only_in_valid_events() -> None:
    with pytest.raises(Refusal, match="event 0: 'name' is required"):
        parse_events(b'[{"content":"<p>"}]', "<p>")
    assert parse_events(b'[{"name":"<p>","content":"c"}]', "<p>") == [
        {"name": "<p>", "content": "c"}
    ]
