"""The upload handler (:mod:`cms_magic.emulator.service`): what it accepts, stores and logs,
its quota, its settings, the store it writes to, and injected faults through
``httpx.MockTransport``. The rules each check applies are in ``test_validation.py``.
"""

from __future__ import annotations

import email.utils
from typing import Any

import httpx
import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    Faults,
    demo_credentials,
)
from cms_magic.emulator.faults import MALFORMED_BODIES
from cms_magic.emulator.store import MemoryStore
from cms_magic.errors import ConfigError
from cms_magic.protocol import UPLOAD_PATH
from cms_magic.signing import format_date
from tests.conftest import FakeClock
from tests.emulator._client import (
    GOOD_BODY,
    GOOD_EVENT,
    NOW,
    REQUEST_ID,
    make_emulator,
    mock_client,
    post,
    replaced,
    signed,
    upload,
)

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
    assert emu.events() == [GOOD_EVENT]
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


def test_wrong_path_is_404_and_wrong_method_405() -> None:
    emu = make_emulator()
    response = emu.handle("POST", "/metric/custom/upload", signed(GOOD_BODY), GOOD_BODY)
    assert (response.status, response.json()["code"]) == (404, "404")
    assert UPLOAD_PATH in response.json()["msg"]
    response = emu.handle("GET", UPLOAD_PATH, signed(GOOD_BODY), GOOD_BODY)
    assert (response.status, response.json()["code"]) == (405, "405")
    assert response.headers["Allow"] == "POST"
    assert "use POST" in response.json()["msg"]


# --------------------------------------------------------------------------- quota


def test_quota_throttles_then_refills(clock: FakeClock) -> None:
    emu = make_emulator(qps=4, monotonic=clock)
    with mock_client(emu) as client:
        assert [upload(client, GOOD_BODY).status_code for _ in range(4)] == [200] * 4
        throttled = upload(client, GOOD_BODY)
        assert throttled.status_code == 403
        assert throttled.headers["Retry-After"] == "1"
        msg = throttled.json()["msg"]
        assert "rate limit exceeded" in msg
        assert "throttl" in msg.lower()
        assert "at most 4 requests per second" in msg
        clock.advance(0.25)  # one token's worth (exact in binary floating point)
        assert upload(client, GOOD_BODY).status_code == 200
        assert upload(client, GOOD_BODY).status_code == 403
        clock.advance(1.0)
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


def test_fractional_qps_allows_one_request_per_period(clock: FakeClock) -> None:
    emu = make_emulator(qps=0.5, monotonic=clock)
    assert [post(emu, GOOD_BODY).status for _ in range(2)] == [200, 403]
    clock.advance(2.0)
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
    ("kwargs", "option"),
    [
        ({"credentials": []}, "credentials"),
        ({"credentials": ["LTAIplainString"]}, "credentials"),
        (
            {
                "credentials": [
                    Credentials("LTAIsameKeyId0001", "one"),
                    Credentials("LTAIsameKeyId0001", "two"),
                ]
            },
            "credentials",
        ),
        ({"qps": -1}, "qps"),
        ({"qps": "20"}, "qps"),
        ({"qps": True}, "qps"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"max_body_bytes": 1.5}, "max_body_bytes"),
        ({"max_skew_seconds": -1}, "max_skew_seconds"),
        ({"poison_marker": ""}, "poison_marker"),
        ({"poison_marker": 5}, "poison_marker"),
    ],
)
def test_bad_configuration_is_refused_naming_the_option(
    kwargs: dict[str, Any], option: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        Emulator(**kwargs)
    assert excinfo.value.option == option
    assert str(excinfo.value).startswith(option)


def test_a_key_given_twice_is_named_masked_without_its_secrets() -> None:
    twice = [Credentials("LTAIsameKeyId0001", "secret-one"), Credentials("LTAIsameKeyId0001", "x")]
    with pytest.raises(ConfigError, match="given twice") as excinfo:
        Emulator(twice)
    assert "LTAI****0001" in str(excinfo.value)
    assert "secret-one" not in str(excinfo.value)


def test_set_qps_refuses_a_negative_rate() -> None:
    emu = Emulator()
    with pytest.raises(
        ConfigError, match=r"^qps=-0.5: must be a number >= 0 \(0 turns the quota off\)$"
    ) as excinfo:
        emu.set_qps(-0.5)
    assert (excinfo.value.option, excinfo.value.value) == ("qps", -0.5)
    assert emu.qps == 20.0


def test_repr_masks_the_key_ids() -> None:
    text = repr(Emulator(Credentials("LTAI5tAbCdEfGh1234abcd", "hidden-secret-value")))
    assert "LTAI****abcd" in text
    assert "hidden" not in text


def test_the_log_time_is_the_clock_and_date_header_too(clock: FakeClock) -> None:
    emu = make_emulator(clock=clock)
    clock.advance(0.5)
    response = post(emu, GOOD_BODY)
    assert response.status == 200
    assert response.headers["Date"] == format_date(NOW + 0.5)
    assert emu.requests()[0]["time"] == "2023-11-14T22:13:20.500+00:00"


# --------------------------------------------------------------------------- the store


def test_events_and_the_log_go_to_the_store_given() -> None:
    store = MemoryStore()
    emu = make_emulator(store=store)
    assert emu.store is store
    post(emu, GOOD_BODY)
    post(emu, b"[]")
    assert store.events() == [GOOD_EVENT]
    assert store.count() == 1
    assert [r["status"] for r in store.requests()] == [200, 400]
    emu.reset()
    assert (store.count(), store.requests()) == (0, [])


def test_a_counting_store_sees_every_request_once() -> None:
    """The shape the benchmark's emulator uses: count, keep nothing."""

    class Counting(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.statuses: list[int] = []
            self.accepted = 0

        def add(self, events: Any, *, request: Any) -> None:
            self.statuses.append(request["status"])
            self.accepted += len(events)

    store = Counting()
    emu = make_emulator(store=store)
    for body in (GOOD_BODY, GOOD_BODY, b"[]"):
        post(emu, body)
    emu.handle("GET", "/nowhere", [], b"")
    assert store.statuses == [200, 200, 400, 404]
    assert store.accepted == 2
    assert emu.events() == []


# --------------------------------------------------------------------------- injected faults


@pytest.mark.parametrize(
    ("fault", "status", "stored"),
    [("error_500", 500, 0), ("error_503", 503, 0), ("malformed", 200, 1)],
)
def test_injected_answers(fault: str, status: int, stored: int) -> None:
    emu = make_emulator(faults=Faults.from_dict({fault: 1.0}))
    with mock_client(emu) as client:
        response = upload(client, GOOD_BODY)
    assert response.status_code == status
    if fault == "malformed":
        assert response.content in MALFORMED_BODIES
    else:
        assert response.json()["msg"].startswith("injected fault: ")
    assert len(emu.events()) == stored
    record = emu.requests()[0]
    assert (record["status"], record["events"], record["key_id"]) == (status, 1, DEMO_ACCESS_KEY_ID)
    assert record["fault"] == fault


def test_a_malformed_answer_is_logged_as_such() -> None:
    """The log once said ``fault: None`` for an answer it had mangled (and for 500s, 503s)."""
    emu = make_emulator(faults=Faults(malformed=1.0))
    assert post(emu, GOOD_BODY).fault == "malformed"
    assert emu.requests()[0]["fault"] == "malformed"


@pytest.mark.parametrize(
    ("fault", "error", "stored"),
    [
        ("reset_before", httpx.RemoteProtocolError, 0),
        ("reset_after", httpx.RemoteProtocolError, 1),
        ("delay", httpx.ReadTimeout, 1),
    ],
)
def test_transport_faults_become_the_errors_httpx_raises(
    fault: str, error: type[Exception], stored: int
) -> None:
    emu = make_emulator(faults=Faults.from_dict({fault: 1.0}))
    with mock_client(emu) as client, pytest.raises(error):
        upload(client, GOOD_BODY)
    assert len(emu.events()) == stored
    assert emu.requests()[0]["fault"] == fault


def test_faults_are_drawn_only_for_uploads() -> None:
    emu = make_emulator(faults=Faults(error_500=1.0))
    assert emu.handle("GET", "/elsewhere", [], b"").status == 404
    assert post(emu, GOOD_BODY).status == 500


def test_set_faults_restarts_the_draws_from_the_seed() -> None:
    faults = Faults(seed=11, error_503=0.5)
    emu = make_emulator(qps=0, faults=faults)
    first = [post(emu, GOOD_BODY).status for _ in range(30)]
    emu.set_faults(faults)
    assert [post(emu, GOOD_BODY).status for _ in range(30)] == first
    assert set(first) == {200, 503}
    assert emu.faults is faults


def test_the_faults_poison_marker_adds_to_the_emulators() -> None:
    emu = make_emulator(poison_marker="<own>", faults=Faults(poison_marker="<fault>"))
    body = b'[{"name":"a","content":"x <fault> y"}]'
    assert post(emu, body).json()["msg"] == "event 0: content contains the poison marker"
    emu.set_faults(Faults())
    assert post(emu, b'[{"name":"a","content":"<own>"}]').status == 400
    assert post(emu, body).status == 200


def test_reject_logs_a_request_refused_unread() -> None:
    emu = make_emulator()
    answer = emu.reject(400, "too big", headers=signed(GOOD_BODY), nbytes=10**9)
    assert (answer.status, answer.json()["msg"]) == (400, "too big")
    record = emu.requests()[0]
    assert (record["bytes"], record["events"], record["key_id"]) == (10**9, 0, DEMO_ACCESS_KEY_ID)
