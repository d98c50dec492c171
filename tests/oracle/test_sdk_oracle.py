"""The official SDK (alibabacloud-cms20190101, the ``test`` extra) as an oracle (issue 15).

The SDK is pointed at a served emulator on loopback: ``Config(endpoint="127.0.0.1:PORT",
protocol="http")`` (a full endpoint is used as is, without the region's endpoint map, and
``protocol`` wins over the actions' ``HTTPS``). It signs ACS3-HMAC-SHA256 (its default
``signature_algorithm``) with static keys, so it reaches nothing but that port: no
credentials chain, no metadata service, no DNS. The one way it could leave loopback is an
``HTTP(S)_PROXY`` in the environment (darabonba reads it itself for every request): the
fixture removes those variables. The suite's network guard stays on.

Checked: the SDK puts events and reads them back (DescribeCustomEventAttribute / Count /
Histogram) from the emulator; events our sender uploaded are seen by the SDK, and events
the SDK put are seen by :func:`cms_magic.query_events`; and our ACS3 signer
(:func:`cms_magic.openapi.signing.acs3_headers`) gives the SDK's own Authorization for the
same request (the SDK's date and nonce fixed, its request captured just before it is sent).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import pandas as pd
import pytest

if not os.environ.get("CI"):  # the test extra has it; in CI a missing oracle fails
    pytest.importorskip("alibabacloud_cms20190101")

from alibabacloud_cms20190101 import models as cms_models  # type: ignore[import-untyped]
from alibabacloud_cms20190101.client import Client as SdkClient  # type: ignore[import-untyped]
from alibabacloud_tea_openapi import utils_models as openapi_models  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.exceptions import ClientException  # type: ignore[import-untyped]
from alibabacloud_tea_openapi.utils import Utils as SdkUtils  # type: ignore[import-untyped]
from darabonba.core import DaraCore  # type: ignore[import-untyped]

from cms_magic.credentials import Credentials
from cms_magic.emulator.service import demo_credentials
from cms_magic.openapi.signing import (
    acs3_headers,
    rpc_canonicalized_query_string,
    rpc_query,
    rpc_signature,
    rpc_string_to_sign,
)
from cms_magic.readback import count_events, event_histogram, query_events
from cms_magic.sending.client import Client

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """darabonba sends through ``HTTP(S)_PROXY`` when set: never here."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def sdk_client(url: str, keys: Credentials | None = None, **options: Any) -> SdkClient:
    """The official client on ``url`` (``http://127.0.0.1:PORT``), with static keys;
    ``signature_algorithm="v2"`` makes it sign RPC v2 (HMAC-SHA1) instead of ACS3."""
    keys = keys or demo_credentials()
    host = url.split("://", 1)[1].rstrip("/")
    config = openapi_models.Config(
        access_key_id=keys.access_key_id,
        access_key_secret=keys.access_key_secret.reveal(),
        security_token=None if keys.security_token is None else keys.security_token.reveal(),
        endpoint=host,
        protocol="http",
        region_id="cn-hangzhou",
        connect_timeout=2000,
        read_timeout=5000,
        **options,
    )
    return SdkClient(config)


def sdk_events(client: SdkClient, **filters: Any) -> list[Any]:
    """Every event the SDK reads, paged (100 a page) until a short page."""
    out: list[Any] = []
    page = 1
    while True:
        request = cms_models.DescribeCustomEventAttributeRequest(
            page_number=page, page_size=100, **filters
        )
        body = client.describe_custom_event_attribute(request).body
        assert body.code == "200", body.to_map()
        found = list(body.custom_events.custom_event or []) if body.custom_events else []
        out.extend(found)
        if len(found) < 100:
            return out
        page += 1


def _put_response(client: SdkClient, events: list[dict[str, str]]) -> Any:
    infos = [cms_models.PutCustomEventRequestEventInfo(**e) for e in events]
    return client.put_custom_event(cms_models.PutCustomEventRequest(event_info=infos))


def _put(client: SdkClient, events: list[dict[str, str]]) -> Any:
    return _put_response(client, events).body


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_the_sdk_puts_and_reads_back_from_the_emulator(make_emulator: Callable[..., Any]) -> None:
    server = make_emulator()
    sdk = sdk_client(server.url)
    when = datetime(2026, 3, 29, 0, 59, 59, 123000, tzinfo=timezone.utc)
    body = _put(
        sdk,
        [
            {"event_name": "oracle", "content": "first", "group_id": "7", "time": "1774745999123"},
            {"event_name": "oracle", "content": "错误 发生 second"},
            {"event_name": "other", "content": "third", "time": "20260329T015959.123+0100"},
        ],
    )
    assert body.code == "200", body.to_map()

    events = sdk_events(sdk, name="oracle")
    assert sorted(e.content for e in events) == ["first", "错误 发生 second"]
    first = next(e for e in events if e.content == "first")
    assert (first.group_id, first.time) == ("7", str(_ms(when)))
    assert all(e.id for e in events)
    assert [e.content for e in sdk_events(sdk, search_keywords="错误")] == ["错误 发生 second"]
    assert [e.content for e in sdk_events(sdk, group_id="7")] == ["first"]

    counts = sdk.describe_custom_event_count(cms_models.DescribeCustomEventCountRequest()).body
    by_name = {c.name: c.num for c in counts.custom_event_counts.custom_event_count}
    assert by_name == {"oracle": 2, "other": 1}

    start, end = _ms(when - timedelta(hours=1)), _ms(when + timedelta(minutes=1))
    histogram = sdk.describe_custom_event_histogram(
        cms_models.DescribeCustomEventHistogramRequest(
            name="other", start_time=str(start), end_time=str(end)
        )
    ).body
    buckets = histogram.event_histograms.event_histogram
    assert sum(b.count for b in buckets) == 1
    (hit,) = [b for b in buckets if b.count]
    assert hit.start_time <= _ms(when) <= hit.end_time


def test_our_uploads_are_seen_by_the_sdk_and_its_puts_by_us(
    make_emulator: Callable[..., Any],
) -> None:
    server = make_emulator()
    sdk = sdk_client(server.url)
    rows = 250  # three SDK pages
    base = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    frame = pd.DataFrame(
        {
            "name": "ours",
            "content": [f"ours-{i:04d} 内容" for i in range(rows)],
            "group_id": [i % 3 for i in range(rows)],
            "time": [base + timedelta(seconds=i) for i in range(rows)],
        }
    )
    sender = Client(server.url, credentials=demo_credentials(), qps=0)
    result = sender.send(
        frame, progress=False, name_col="name", group_id_col="group_id", time_col="time"
    )
    assert result.counts()["accepted"] == rows, result.summary()

    seen = sdk_events(sdk, name="ours")
    assert sorted(e.content for e in seen) == sorted(frame["content"])
    by_content = {e.content: e for e in seen}
    for i in (0, 1, rows - 1):
        event = by_content[f"ours-{i:04d} 内容"]
        assert int(event.time) == _ms(base + timedelta(seconds=i))
        assert event.group_id == str(i % 3)

    body = _put(
        sdk,
        [
            {"event_name": "theirs", "content": f"theirs-{i}", "time": str(_ms(base) + i)}
            for i in range(50)
        ],
    )
    assert body.code == "200"
    ours = query_events("theirs", endpoint=server.url, credentials=demo_credentials(), since=base)
    assert sorted(ours["content"]) == sorted(f"theirs-{i}" for i in range(50))
    assert ours["time"].min() == pd.Timestamp(base)
    assert count_events("theirs", endpoint=server.url, credentials=demo_credentials()) == 50
    histogram = event_histogram(
        "theirs",
        since=base - timedelta(minutes=1),
        until=base + timedelta(minutes=1),
        endpoint=server.url,
        credentials=demo_credentials(),
    )
    assert int(histogram["count"].sum()) == 50
    # And the SDK's own view of both writers agrees with ours.
    assert {e.id for e in sdk_events(sdk, name="theirs")} == set(ours["id"])


# ------------------------------------------------------------------ signatures


class _Captured:
    def __init__(self) -> None:
        self.requests: list[Any] = []


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> _Captured:
    """The SDK's requests as it is about to send them (then sent for real)."""
    record = _Captured()
    send = DaraCore.do_action

    def do_action(request: Any, runtime_option: Any = None) -> Any:
        record.requests.append(
            _snapshot(request)
        )  # before the HTTP layer touches the body or headers
        return send(request, runtime_option)

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(do_action))
    return record


def _snapshot(request: Any) -> dict[str, Any]:
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    return {
        "method": request.method,
        "pathname": request.pathname,
        "query": dict(request.query or {}),
        "headers": dict(request.headers),
        "body": body or b"",
    }


def _ours(seen: dict[str, Any], keys: Credentials) -> str:
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    rebuilt = acs3_headers(
        seen["method"],
        headers["host"],
        seen["pathname"],
        seen["query"],
        {k: v for k, v in headers.items() if k != "authorization"},
        seen["body"],
        keys,
        action=headers["x-acs-action"],
        version=headers["x-acs-version"],
        date=headers["x-acs-date"],
        nonce=headers["x-acs-signature-nonce"],
    )
    return rebuilt["authorization"]


SIGNED_CALLS: list[tuple[str, Callable[[SdkClient], Any]]] = [
    (
        "put, CJK and spaces",
        lambda c: _put_response(
            c,
            [
                {"event_name": "sig test", "content": "a+b c/d ~*' 错误", "group_id": "12"},
                {"event_name": "sig", "content": "x" * 300, "time": "20260329T015959.123+0100"},
            ],
        ),
    ),
    (
        "attribute, every filter",
        lambda c: c.describe_custom_event_attribute(
            cms_models.DescribeCustomEventAttributeRequest(
                name="sig test",
                group_id="12",
                search_keywords="错误 and a+b",
                start_time="1700000000000",
                end_time="1900000000000",
                page_number=1,
                page_size=50,
            )
        ),
    ),
    (
        "count",
        lambda c: c.describe_custom_event_count(
            cms_models.DescribeCustomEventCountRequest(name="sig", event_id="e-1")
        ),
    ),
    (
        "histogram",
        lambda c: c.describe_custom_event_histogram(
            cms_models.DescribeCustomEventHistogramRequest(name="sig", level="INFO")
        ),
    ),
]


@pytest.mark.parametrize(("what", "call"), SIGNED_CALLS, ids=[w for w, _ in SIGNED_CALLS])
def test_our_signer_gives_the_sdks_authorization(
    what: str,
    call: Callable[[SdkClient], Any],
    make_emulator: Callable[..., Any],
    captured: _Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Date and nonce fixed in the SDK: the captured request is signed again by us, and the
    emulator's check accepted the SDK's (the call succeeded)."""
    server = make_emulator()
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    monkeypatch.setattr(SdkUtils, "get_timestamp", staticmethod(lambda: date))
    monkeypatch.setattr(SdkUtils, "get_nonce", staticmethod(lambda: f"oracle-nonce-{what}"))
    keys = demo_credentials()
    answer = call(sdk_client(server.url, keys))
    assert answer.body.code == "200"
    (seen,) = captured.requests
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert (headers["x-acs-date"], headers["x-acs-signature-nonce"]) == (
        date,
        f"oracle-nonce-{what}",
    )
    assert _ours(seen, keys) == headers["authorization"]


@pytest.mark.parametrize(("what", "call"), SIGNED_CALLS, ids=[w for w, _ in SIGNED_CALLS])
def test_our_rpc_v2_signature_is_the_sdks(
    what: str,
    call: Callable[[SdkClient], Any],
    make_emulator: Callable[..., Any],
    captured: _Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``signature_algorithm="v2"``: the SDK signs the query (and any form body) with
    HMAC-SHA1; our RPC v2 steps over the same parameters give its ``Signature``, and our
    one-call builder the same query; the emulator accepted the SDK's."""
    server = make_emulator()
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    monkeypatch.setattr(SdkUtils, "get_timestamp", staticmethod(lambda: date))
    monkeypatch.setattr(SdkUtils, "get_nonce", staticmethod(lambda: f"oracle-rpc-{what}"))
    keys = demo_credentials()
    answer = call(sdk_client(server.url, keys, signature_algorithm="v2"))
    assert answer.body.code == "200"
    (seen,) = captured.requests
    params = {k: str(v) for k, v in seen["query"].items() if v is not None}
    params.update(parse_qsl(seen["body"].decode("utf-8"), keep_blank_values=True))
    theirs = params.pop("Signature")
    assert (params["Timestamp"], params["SignatureNonce"]) == (date, f"oracle-rpc-{what}")
    to_sign = rpc_string_to_sign(seen["method"], rpc_canonicalized_query_string(params))
    assert rpc_signature(keys.access_key_secret, to_sign) == theirs
    common = {"Action", "Format", "Version", "Timestamp", "SignatureNonce", "SignatureMethod"}
    common |= {"SignatureVersion", "AccessKeyId"}
    own = {k: v for k, v in params.items() if k not in common}
    built = rpc_query(
        seen["method"],
        own,
        keys,
        action=params["Action"],
        version=params["Version"],
        date=date,
        nonce=params["SignatureNonce"],
        response_format=params["Format"],
    )
    assert built["Signature"] == theirs


def test_our_signer_matches_the_sdk_with_a_security_token() -> None:
    """An STS triple: the SDK's pure step (``Utils.get_authorization``) over a request it
    built, no network; the token header is signed by both."""
    from darabonba.request import DaraRequest  # type: ignore[import-untyped]

    keys = Credentials("STS.oracleKeyId", "oracle-secret", "oracle-token/with+chars==")
    request = DaraRequest()
    request.method = "POST"
    request.pathname = "/"
    request.query = {"Name": "sig test", "SearchKeywords": "a or 错误", "PageSize": "7"}
    payload = SdkUtils.hash(b"", "ACS3-HMAC-SHA256").hex()
    request.headers = {
        "host": "metrics.cn-hangzhou.aliyuncs.com",
        "x-acs-version": "2019-01-01",
        "x-acs-action": "DescribeCustomEventAttribute",
        "user-agent": "AlibabaCloud (oracle) Python/3.11",
        "x-acs-date": "2026-12-01T10:00:00Z",
        "x-acs-signature-nonce": "fixed-nonce-0001",
        "accept": "application/json",
        "x-acs-content-sha256": payload,
        "x-acs-accesskey-id": keys.access_key_id,
        "x-acs-security-token": "oracle-token/with+chars==",
    }
    theirs = SdkUtils.get_authorization(
        request, "ACS3-HMAC-SHA256", payload, keys.access_key_id, "oracle-secret"
    )
    seen = {
        "method": "POST",
        "pathname": "/",
        "query": request.query,
        "headers": request.headers,
        "body": b"",
    }
    assert _ours(seen, keys) == theirs


def test_the_sdk_is_refused_with_a_wrong_secret(make_emulator: Callable[..., Any]) -> None:
    """The emulator really checks what the SDK signs."""
    server = make_emulator()
    keys = demo_credentials()
    wrong = Credentials(keys.access_key_id, "not-the-secret")
    with pytest.raises(ClientException, match=r"(?i)signature") as caught:
        sdk_events(sdk_client(server.url, wrong), name="x")
    assert caught.value.status_code in (400, 403)
