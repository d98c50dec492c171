"""The OpenAPI client over httpx.MockTransport: every request's ACS3 signature is rebuilt with
the signing module's own steps; answers follow api-shapes.md; errors are typed, name the
RAM action, back off on throttling within a bound, and never show a secret."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from cms_magic.credentials.refreshing import RefreshingCredentials, Triple
from cms_magic.credentials.static import Credentials
from cms_magic.errors import CmsError
from cms_magic.openapi import signing
from cms_magic.openapi.client import (
    CMS_VERSION,
    OpenApiClient,
    acall,
    call,
    retry_after_seconds,
)
from cms_magic.openapi.errors import (
    OpenApiAuthError,
    OpenApiConnectionError,
    OpenApiError,
    OpenApiPermissionError,
    OpenApiServerError,
    OpenApiThrottledError,
)
from cms_magic.sending.retry import RetryPolicy
from tests.conftest import FakeClock
from tests.credentials.test_locals import renderings

KEY_ID = "LTAI5tClientTest0000abcd"
SECRET = "OPENAPI-CLIENT-SECRET-CANARY-77c1"
TOKEN = "OPENAPI-CLIENT-TOKEN-CANARY-3f90"
ENDPOINT = "https://metrics.cn-hangzhou.aliyuncs.com"

Reply = Callable[["Seen"], httpx.Response]

_AUTH = re.compile(
    r"^ACS3-HMAC-SHA256 Credential=(?P<id>[^,]+),SignedHeaders=(?P<signed>[^,]+),"
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)


@dataclass
class Seen:
    """One request as the fake service saw it (its signature already verified)."""

    method: str
    action: str
    version: str
    params: dict[str, str]
    headers: httpx.Headers
    key_id: str


def verify_acs3(request: httpx.Request, secrets: dict[str, str]) -> Seen:
    """Rebuild the request's ACS3 signature from the wire with the signing module's steps;
    raise AssertionError when it does not match."""
    auth = request.headers.get("authorization", "")
    match = _AUTH.match(auth)
    assert match, f"not an ACS3 Authorization: {auth[:40]!r}"
    key_id, signed = match["id"], match["signed"].split(";")
    assert key_id in secrets, key_id
    required = {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"}
    assert required | {"x-acs-content-sha256"} <= set(signed), signed
    body = request.content
    assert request.headers["x-acs-content-sha256"] == signing.hashed_payload(body)
    raw_query = urlsplit(str(request.url)).query
    query = parse_qsl(raw_query, keep_blank_values=True)
    text, signed_names = signing.canonical_headers(
        [(name, request.headers[name]) for name in signed]
    )
    canonical = signing.canonical_request(
        request.method,
        signing.canonical_uri(request.url.path),
        signing.canonical_query_string(query),
        text,
        signed_names,
        signing.hashed_payload(body),
    )
    expected = signing.signature(secrets[key_id], signing.string_to_sign(canonical))
    assert match["sig"] == expected, "signature does not match"
    assert "+" not in raw_query, "space must go as %20"
    return Seen(
        request.method,
        request.headers["x-acs-action"],
        request.headers["x-acs-version"],
        dict(query),
        request.headers,
        key_id,
    )


@dataclass
class FakeOpenApi:
    """A MockTransport handler: verifies each request, records it, answers with ``reply``."""

    reply: Reply
    # Not in the repr: a traceback's locals show the fake, and these hold the canaries.
    secrets: dict[str, str] = field(default_factory=lambda: {KEY_ID: SECRET}, repr=False)
    seen: list[Seen] = field(default_factory=list, repr=False)
    nonces: set[str] = field(default_factory=set)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        seen = verify_acs3(request, self.secrets)
        nonce = request.headers["x-acs-signature-nonce"]
        assert nonce not in self.nonces, "a nonce was reused"
        self.nonces.add(nonce)
        self.seen.append(seen)
        return self.reply(seen)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def answer(
    body: dict[str, Any], status: int = 200, *, retry_after: str | None = None
) -> httpx.Response:
    headers = {} if retry_after is None else {"x-acs-retry-after": retry_after}
    return httpx.Response(status, json=body, headers=headers)


def error(
    code: str, message: str, status: int, *, retry_after: str | None = None
) -> httpx.Response:
    body = {"Code": code, "Message": message, "RequestId": "REQ-1"}
    return answer(body, status, retry_after=retry_after)


OK = {"Code": "200", "Message": "", "RequestId": "R", "Success": True}


def client(
    fake: FakeOpenApi,
    clock: FakeClock,
    *,
    credentials: Any = None,
    retry: RetryPolicy | None = None,
    **options: Any,
) -> OpenApiClient:
    return OpenApiClient(
        options.pop("endpoint", ENDPOINT),
        credentials or Credentials(KEY_ID, SECRET),
        transport=fake.transport,
        clock=clock,
        monotonic=clock,
        sleep=clock.sleep,
        random=lambda: 0.5,
        retry=retry or RetryPolicy(max_attempts=4, max_time=30.0),
        **options,
    )


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


# ---- requests ----------------------------------------------------------------------------


def test_a_call_is_an_acs3_signed_post_with_the_parameters_in_the_query(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: answer(OK))
    params = {"Name": "deploy failed 中文 +*~/", "GroupId": 7, "Empty": "", "Unset": None}
    got = run(client(fake, clock).acall("DescribeCustomEventCount", params))
    assert got == OK
    (seen,) = fake.seen
    assert (seen.method, seen.action, seen.version) == (
        "POST",
        "DescribeCustomEventCount",
        CMS_VERSION,
    )
    assert seen.params == {"Name": "deploy failed 中文 +*~/", "GroupId": "7", "Empty": ""}
    assert seen.headers["host"] == "metrics.cn-hangzhou.aliyuncs.com"
    assert seen.headers["x-acs-date"] == signing.format_date(clock.now)
    assert seen.headers["accept"] == "application/json"
    assert "Action" not in seen.params
    assert "x-acs-security-token" not in seen.headers


def test_get_and_a_port_and_sts_credentials_are_signed_too(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: answer(OK))
    sts = Credentials(KEY_ID, SECRET, security_token=TOKEN)
    c = client(fake, clock, credentials=sts, method="GET", endpoint="http://127.0.0.1:8123")
    run(c.acall("DescribeCustomEventAttribute", {"PageNumber": 1}))
    (seen,) = fake.seen
    assert seen.method == "GET"
    assert seen.headers["host"] == "127.0.0.1:8123"
    assert seen.headers["x-acs-security-token"] == TOKEN
    assert seen.headers["x-acs-accesskey-id"] == KEY_ID


def test_the_synchronous_call_and_the_one_shot_functions(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: answer({**OK, "Echo": seen.params}))
    assert client(fake, clock).call("A", {"X": "1"})["Echo"] == {"X": "1"}
    creds = Credentials(KEY_ID, SECRET)
    got = call("B", {"Y": 2}, endpoint=ENDPOINT, credentials=creds, transport=fake.transport)
    assert got["Echo"] == {"Y": "2"}
    got = run(acall("C", None, endpoint=ENDPOINT, credentials=creds, transport=fake.transport))
    assert got["Echo"] == {}
    assert [s.action for s in fake.seen] == ["A", "B", "C"]


def test_a_refreshing_source_signs_each_call_with_one_whole_triple(clock: FakeClock) -> None:
    keys = iter([("KEY-ONE-000000", "SECRET-ONE-0000000"), ("KEY-TWO-000000", "SECRET-TWO-000000")])

    async def fetch() -> Triple:
        key, secret = next(keys)
        return Triple(key, secret, "TOKEN-" + key, expires_at=clock.now + 3600)

    fake = FakeOpenApi(
        lambda seen: answer(OK),
        secrets={"KEY-ONE-000000": "SECRET-ONE-0000000", "KEY-TWO-000000": "SECRET-TWO-000000"},
    )

    async def scenario() -> list[str]:
        source = RefreshingCredentials(
            fetch, source="test", clock=clock, monotonic=clock, sleep=clock.sleep
        )
        c = client(fake, clock, credentials=source)
        await c.acall("A")
        clock.advance(3600)  # the first triple has expired: the next call gets the second
        await c.acall("B")
        return [s.headers["x-acs-security-token"] for s in fake.seen]

    assert run(scenario()) == ["TOKEN-KEY-ONE-000000", "TOKEN-KEY-TWO-000000"]
    assert [s.key_id for s in fake.seen] == ["KEY-ONE-000000", "KEY-TWO-000000"]


def test_an_expired_token_answer_refreshes_the_source_and_tries_once_more(clock: FakeClock) -> None:
    fetched: list[int] = []

    async def fetch() -> Triple:
        fetched.append(1)
        return Triple(
            KEY_ID,
            SECRET,
            f"TOKEN-{len(fetched)}-abcdefgh",
            expires_at=clock.now + 3600 * len(fetched),
        )

    def reply(seen: Seen) -> httpx.Response:
        if seen.headers["x-acs-security-token"].startswith("TOKEN-1"):
            return error("InvalidSecurityToken.Expired", "expired", 400)
        return answer(OK)

    fake = FakeOpenApi(reply)

    async def scenario() -> None:
        source = RefreshingCredentials(
            fetch, source="test", clock=clock, monotonic=clock, sleep=clock.sleep
        )
        await client(fake, clock, credentials=source).acall("A")

    run(scenario())
    assert len(fake.seen) == 2
    assert len(fetched) == 2


# ---- errors ------------------------------------------------------------------------------


def test_a_permission_error_names_the_missing_ram_action(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: error("Forbidden.RAM", "User not authorized", 403))
    with pytest.raises(OpenApiPermissionError) as caught:
        run(client(fake, clock).acall("DescribeCustomEventAttribute"))
    exc = caught.value
    assert isinstance(exc, PermissionError)
    assert isinstance(exc, OpenApiError)
    assert isinstance(exc, CmsError)
    assert exc.ram_action == "cms:DescribeCustomEventAttribute"
    assert "cms:DescribeCustomEventAttribute" in str(exc)
    assert (exc.code, exc.request_id, exc.http_status) == ("Forbidden.RAM", "REQ-1", 403)
    assert len(fake.seen) == 1  # not retried


def _replying(response: httpx.Response) -> Reply:
    return lambda seen: response


def test_codes_map_to_their_classes_and_4xx_are_not_retried(clock: FakeClock) -> None:
    cases = [
        ("SignatureDoesNotMatch", 400, OpenApiAuthError),
        ("InvalidAccessKeyId.NotFound", 404, OpenApiAuthError),
        ("NoPermission", 403, OpenApiPermissionError),
        ("InvalidParameter", 400, OpenApiError),
    ]
    for code, status, kind in cases:
        fake = FakeOpenApi(_replying(error(code, "m", status)))
        with pytest.raises(kind) as caught:
            run(client(fake, clock).acall("DescribeCustomEventCount"))
        assert type(caught.value) is kind
        assert caught.value.code == code
        assert len(fake.seen) == 1, code


def test_a_200_whose_code_is_not_200_is_an_error(clock: FakeClock) -> None:
    fake = FakeOpenApi(
        lambda seen: answer({"Code": "InvalidParameter", "Message": "bad", "Success": "false"})
    )
    with pytest.raises(OpenApiError, match="InvalidParameter: bad"):
        run(client(fake, clock).acall("DescribeCustomEventAttribute"))
    fake = FakeOpenApi(lambda seen: answer({"Code": "200", "Success": False, "Message": "no"}))
    with pytest.raises(OpenApiError, match="200: no"):
        run(client(fake, clock).acall("DescribeCustomEventCount"))


def test_an_xml_error_and_a_bodyless_error_are_typed(clock: FakeClock) -> None:
    xml = "<Error><Code>Forbidden</Code><Message>denied</Message><RequestId>X9</RequestId></Error>"
    fake = FakeOpenApi(
        lambda seen: httpx.Response(
            403, text=xml, headers={"content-type": "text/xml;charset=utf-8"}
        )
    )
    with pytest.raises(OpenApiPermissionError) as caught:
        run(client(fake, clock).acall("DescribeCustomEventHistogram"))
    assert (caught.value.code, caught.value.request_id) == ("Forbidden", "X9")
    fake = FakeOpenApi(lambda seen: httpx.Response(403, text="nope"))
    with pytest.raises(OpenApiPermissionError, match="cms:DescribeCustomEventHistogram"):
        run(client(fake, clock).acall("DescribeCustomEventHistogram"))


def test_throttling_backs_off_by_the_header_then_succeeds(clock: FakeClock) -> None:
    replies = iter(
        [
            error(
                "Throttling.User",
                "Request was denied due to user flow control.",
                400,
                retry_after="1500",
            ),
            error("Throttling", "flow control", 503),
            answer(OK),
        ]
    )
    fake = FakeOpenApi(lambda seen: next(replies))
    assert run(client(fake, clock).acall("DescribeCustomEventCount")) == OK
    assert clock.sleeps == [1.5, 0.5 * 0.25 * 2]  # the header's ms, then jittered backoff
    assert len(fake.nonces) == 3  # each attempt signed afresh


def test_throttling_past_the_budget_is_a_throttled_error(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: error("Throttling.Api", "slow down", 429, retry_after="2000"))
    with pytest.raises(OpenApiThrottledError) as caught:
        run(client(fake, clock, retry=RetryPolicy(max_attempts=3, max_time=30)).acall("A"))
    assert caught.value.retry_after == 2.0
    assert caught.value.code == "Throttling.Api"
    assert len(fake.seen) == 3
    assert clock.sleeps == [2.0, 2.0]


def test_a_retry_after_header_on_a_200_is_not_throttling(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: answer(OK, retry_after="100"))
    assert run(client(fake, clock).acall("A")) == OK
    assert clock.sleeps == []


def test_the_services_wait_is_kept_whole_past_the_policys_max_wait(clock: FakeClock) -> None:
    replies = iter([error("Throttling", "x", 400, retry_after="20000"), answer(OK)])
    fake = FakeOpenApi(lambda seen: next(replies))
    run(client(fake, clock, retry=RetryPolicy(max_attempts=3, max_time=60, max_wait=8)).acall("A"))
    assert clock.sleeps == [20.0]


def test_a_lone_triple_signs_too(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: answer(OK))
    run(client(fake, clock, credentials=Triple(KEY_ID, SECRET, TOKEN)).acall("A"))
    assert fake.seen[0].headers["x-acs-security-token"] == TOKEN


def test_a_5xx_is_retried_within_the_bound_then_raised(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: error("InternalError", "oops", 500))
    with pytest.raises(OpenApiServerError) as caught:
        run(client(fake, clock, retry=RetryPolicy(max_attempts=3, max_time=30)).acall("A"))
    assert caught.value.http_status == 500
    assert len(fake.seen) == 3
    assert sum(clock.sleeps) < 30


def test_a_5xx_then_success(clock: FakeClock) -> None:
    replies = iter([httpx.Response(502, text="bad gateway"), answer(OK)])
    fake = FakeOpenApi(lambda seen: next(replies))
    assert run(client(fake, clock).acall("A")) == OK


def test_the_time_budget_bounds_the_retries(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: error("Throttling", "x", 400, retry_after="120000"))
    with pytest.raises(OpenApiThrottledError):
        run(
            client(fake, clock, retry=RetryPolicy(max_attempts=10, max_time=5, max_wait=60)).acall(
                "A"
            )
        )
    assert len(fake.seen) == 1
    assert clock.sleeps == []


def test_no_answer_is_a_connection_error_after_the_retries(clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused " + str(request.url))

    c = OpenApiClient(
        ENDPOINT, Credentials(KEY_ID, SECRET), transport=httpx.MockTransport(refuse),
        monotonic=clock, sleep=clock.sleep, retry=RetryPolicy(max_attempts=2, max_time=10),
    )  # fmt: skip
    with pytest.raises(OpenApiConnectionError) as caught:
        run(c.acall("A", {"Name": "x"}))
    assert caught.value.code == "ConnectError"
    assert caught.value.http_status is None
    assert "aliyuncs" not in str(caught.value)
    assert len(clock.sleeps) == 1


def test_a_slow_answer_hits_the_attempt_deadline() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return answer(OK)

    c = OpenApiClient(
        ENDPOINT, Credentials(KEY_ID, SECRET), transport=httpx.MockTransport(slow),
        timeout=0.05, retry=RetryPolicy(max_attempts=1),
    )  # fmt: skip
    with pytest.raises(OpenApiConnectionError):
        run(c.acall("A"))


def test_an_answer_larger_than_the_bound_is_refused(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: answer({**OK, "Pad": "x" * 5000}))
    with pytest.raises(OpenApiError, match="too large") as caught:
        run(client(fake, clock, max_answer_bytes=1000).acall("A"))
    assert caught.value.code == "MalformedAnswer"
    assert len(fake.seen) == 1


def test_an_endless_streamed_answer_stops_at_the_bound(clock: FakeClock) -> None:
    chunks: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            chunks.append(1)
            yield b"x" * 1024

    fake = FakeOpenApi(lambda seen: httpx.Response(200, content=endless()))
    with pytest.raises(OpenApiError, match="too large"):
        run(client(fake, clock, max_answer_bytes=10_000).acall("A"))
    assert len(chunks) <= 11


def test_a_streamed_answer_within_the_bound_is_read(clock: FakeClock) -> None:
    async def parts() -> AsyncIterator[bytes]:
        text = json.dumps({**OK, "Pad": "y" * 3000}).encode()
        for start in range(0, len(text), 500):
            yield text[start : start + 500]

    fake = FakeOpenApi(lambda seen: httpx.Response(200, content=parts()))
    assert run(client(fake, clock).acall("A"))["Pad"] == "y" * 3000


def test_an_encoded_answer_is_refused_and_identity_is_asked(clock: FakeClock) -> None:
    import gzip

    body = gzip.compress(json.dumps(OK).encode())
    fake = FakeOpenApi(
        lambda seen: httpx.Response(200, content=body, headers={"content-encoding": "gzip"})
    )
    with pytest.raises(OpenApiError, match=r"encoded \(gzip\)"):
        run(client(fake, clock).acall("A"))
    assert fake.seen[0].headers["accept-encoding"] == "identity"
    assert "accept-encoding" not in fake.seen[0].headers["authorization"]


def test_a_deeply_nested_answer_is_malformed_not_a_crash(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: httpx.Response(200, text="[" * 100_000 + "]" * 100_000))
    with pytest.raises(OpenApiError, match="not a JSON object"):
        run(client(fake, clock).acall("A"))


def test_a_200_that_is_not_a_json_object_is_malformed(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: httpx.Response(200, text="[1, 2]"))
    with pytest.raises(OpenApiError, match="not a JSON object"):
        run(client(fake, clock).acall("A"))


def test_bad_parameters_and_endpoints_are_config_errors(clock: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: answer(OK))
    with pytest.raises(CmsError, match="PageSize=True"):
        run(client(fake, clock).acall("A", {"PageSize": True}))
    with pytest.raises(CmsError, match="endpoint"):
        OpenApiClient("ftp://x", Credentials(KEY_ID, SECRET))


def test_retry_after_is_milliseconds_capped_and_positive() -> None:
    assert retry_after_seconds("1500") == 1.5
    assert retry_after_seconds("999999999") == 120.0
    assert [retry_after_seconds(v) for v in (None, "0", "-5", "soon", "1.5")] == [None] * 5


# ---- secrets -----------------------------------------------------------------------------


def caught_from(c: OpenApiClient) -> BaseException:
    """The error of a call, caught where only the client (its repr masked) is a local."""
    try:
        c.call("DescribeCustomEventAttribute", {"Name": "n"})
    except Exception as exc:  # audited whole
        return exc
    raise AssertionError("no error")


def test_no_error_shows_a_secret_even_when_the_service_echoes_them(clock: FakeClock) -> None:
    def echo(seen: Seen) -> httpx.Response:
        told = (
            f"string to sign had {TOKEN}; Authorization: {seen.headers['authorization']}; {SECRET}"
        )
        return error("SignatureDoesNotMatch", told, 400)

    sts = Credentials(KEY_ID, SECRET, security_token=TOKEN)
    fake = FakeOpenApi(echo)
    exc = caught_from(client(fake, clock, credentials=sts))
    assert isinstance(exc, OpenApiAuthError)
    text = renderings(exc)
    signature = fake.seen[0].headers["authorization"].rsplit("=", 1)[1]
    for canary in (SECRET, TOKEN, signature):
        assert canary not in text
    assert "SignatureDoesNotMatch" in text
    assert SECRET not in repr(client(fake, clock, credentials=sts))


def test_the_error_survives_pickling_with_its_fields() -> None:
    import pickle

    exc = OpenApiPermissionError("Forbidden", "no", "R1", 403, action="DescribeCustomEventCount")
    back = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    assert type(back) is OpenApiPermissionError
    assert str(back) == str(exc)
    assert back.ram_action == "cms:DescribeCustomEventCount"
    assert back.http_status == 403
    assert json.dumps(back.code) == '"Forbidden"'


def test_the_synchronous_call_from_the_library_loop_is_refused(clock: FakeClock) -> None:
    from cms_magic.sending._loop import run_in_background

    c = client(FakeOpenApi(lambda seen: answer(OK)), clock)

    async def inside() -> None:
        c.call("A")

    with pytest.raises(RuntimeError, match="use acall"):
        run_in_background(inside()).result(timeout=10)
