"""The refreshing sources (issue 14, "Sources") against httpx.MockTransport stand-ins for
STS, a credentials URI and the instance metadata: nothing leaves the process."""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from cms_magic.credentials.refreshing import RefreshingCredentials, Triple
from cms_magic.credentials.sources import (
    ENV_STS_ENDPOINT,
    assume_role,
    assume_role_with_oidc,
    credentials_uri,
    ecs_ram_role,
    parse_expiration,
    sts_endpoint,
)
from cms_magic.errors import CredentialsError
from cms_magic.openapi.signing import (
    StaticCredentials,
    rpc_canonicalized_query_string,
    rpc_signature,
    rpc_string_to_sign,
)

T = TypeVar("T")

CALLER_SECRET = "CALLER-src9Canary4242"
NEW_SECRET = "MINTED-src9Canary1111"
NEW_TOKEN = "STSTOKEN-src9Canary2222"
OIDC_TOKEN = "eyJOIDC-src9Canary3333"
IMDS_TOKEN = "IMDS-src9Canary5555"
CANARY = "src9Canary"
EXPIRATION = "2030-01-01T00:00:00Z"
EXPIRES_AT = 1893456000.0
ROLE = "acs:ram::123:role/reader"
STS = "http://127.0.0.1:9"
META = "http://127.0.0.1:8"

Handler = Callable[[httpx.Request], httpx.Response]


def run(main: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main, 10)

    return asyncio.run(bounded())


def minted(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "AccessKeyId": "STS.minted",
        "AccessKeySecret": NEW_SECRET,
        "SecurityToken": NEW_TOKEN,
        "Expiration": EXPIRATION,
    }
    body.update(extra)
    return body


def transport(handler: Handler, seen: list[httpx.Request]) -> httpx.MockTransport:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return httpx.MockTransport(record)


def query_of(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True))


def assert_clean(exc: BaseException) -> None:
    """Nothing secret in the error, its repr, or the package's frames with their locals
    (the test's own frame holds the canaries it planted, so it is left out)."""
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    package = [frame for frame in rendered.stack if "/cms_magic/" in frame.filename]
    assert package  # the error was raised inside the package
    text = "".join(traceback.StackSummary.from_list(package).format())
    text += "".join(rendered.format_exception_only())
    assert CANARY not in text
    assert CANARY not in repr(exc)


# ---- AssumeRole ----------------------------------------------------------------------------


def test_assume_role_signs_and_parses() -> None:
    seen: list[httpx.Request] = []
    caller = StaticCredentials("LTAIcaller", CALLER_SECRET)

    def sts(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"RequestId": "r1", "Credentials": minted()})

    fetch = assume_role(
        caller,
        ROLE,
        session_name="nb",
        duration=900,
        sts_endpoint=STS,
        policy='{"Statement": []}',
        external_id="ext-1",
        client=transport(sts, seen),
        clock=lambda: 1_700_000_000.0,
    )
    triple = run(fetch())
    assert triple.access_key_id == "STS.minted"
    assert triple.secret == NEW_SECRET
    assert triple.token == NEW_TOKEN
    assert triple.expires_at == EXPIRES_AT
    (request,) = seen
    assert request.method == "GET"
    query = query_of(request)
    assert query["Action"] == "AssumeRole"
    assert query["RoleArn"] == ROLE
    assert query["RoleSessionName"] == "nb"
    assert query["DurationSeconds"] == "900"
    assert query["Policy"] == '{"Statement": []}'
    assert query["ExternalId"] == "ext-1"
    assert query["AccessKeyId"] == "LTAIcaller"
    assert query["Timestamp"] == "2023-11-14T22:13:20Z"
    expected = rpc_signature(
        CALLER_SECRET, rpc_string_to_sign("GET", rpc_canonicalized_query_string(query))
    )
    assert query["Signature"] == expected


def test_assume_role_with_caller_token_sends_it() -> None:
    seen: list[httpx.Request] = []
    caller = StaticCredentials("STS.caller", CALLER_SECRET, "CALLERTOKEN-src9Canary77")
    fetch = assume_role(
        caller,
        ROLE,
        sts_endpoint=STS,
        client=transport(lambda r: httpx.Response(200, json={"Credentials": minted()}), seen),
    )
    run(fetch())
    assert query_of(seen[0])["SecurityToken"] == "CALLERTOKEN-src9Canary77"


def test_assume_role_error_names_code_and_message_scrubbed() -> None:
    seen: list[httpx.Request] = []
    caller = StaticCredentials("LTAIcaller", CALLER_SECRET)

    def sts(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403,
            json={
                "Code": "NoPermission",
                "Message": f"You are not authorized; key {CALLER_SECRET}",
                "RequestId": "r-9",
            },
        )

    fetch = assume_role(caller, ROLE, sts_endpoint=STS, client=transport(sts, seen))
    with pytest.raises(CredentialsError) as info:
        run(fetch())
    text = str(info.value)
    assert "STS AssumeRole" in text
    assert ROLE in text
    assert "NoPermission" in text
    assert "not authorized" in text
    assert "r-9" in text
    assert_clean(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="<html>oops</html>"),
        httpx.Response(200, json={"Credentials": minted(Expiration="tomorrow")}),
        httpx.Response(200, json={"Credentials": minted(SecurityToken=None)}),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
)
def test_assume_role_malformed_answers(answer: httpx.Response) -> None:
    caller = StaticCredentials("LTAIcaller", CALLER_SECRET)
    fetch = assume_role(caller, ROLE, sts_endpoint=STS, client=transport(lambda r: answer, []))
    with pytest.raises(CredentialsError) as info:
        run(fetch())
    assert "STS AssumeRole" in str(info.value)
    assert_clean(info.value)


def test_transport_failure_names_no_url() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    caller = StaticCredentials("LTAIcaller", CALLER_SECRET)
    fetch = assume_role(caller, ROLE, sts_endpoint=STS, client=transport(down, []))
    with pytest.raises(CredentialsError) as info:
        run(fetch())
    assert "ConnectError" in str(info.value)
    assert "Signature" not in str(info.value)
    assert info.value.__cause__ is None
    assert_clean(info.value)


def test_assume_role_refuses_short_duration() -> None:
    caller = StaticCredentials("LTAIcaller", CALLER_SECRET)
    with pytest.raises(CredentialsError):
        assume_role(caller, ROLE, duration=60, sts_endpoint=STS)


def test_assume_role_through_refreshing_credentials_is_masked() -> None:
    caller = StaticCredentials("LTAIcaller", CALLER_SECRET)
    fetch = assume_role(
        caller,
        ROLE,
        sts_endpoint=STS,
        client=transport(lambda r: httpx.Response(200, json={"Credentials": minted()}), []),
    )
    refreshing = RefreshingCredentials(fetch, source="STS AssumeRole (test)")
    triple = run(refreshing.current())
    for shown in (repr(triple), str(triple), repr(refreshing), repr(refreshing.describe())):
        assert CANARY not in shown


# ---- AssumeRoleWithOIDC ---------------------------------------------------------------------


def test_oidc_is_anonymous_and_rereads_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN + "-one\n")
    seen: list[httpx.Request] = []
    fetch = assume_role_with_oidc(
        ROLE,
        "acs:ram::123:oidc-provider/ack",
        token_file,
        session_name="pod",
        duration=900,
        sts_endpoint=STS,
        client=transport(lambda r: httpx.Response(200, json={"Credentials": minted()}), seen),
    )
    first = run(fetch())
    assert first.token == NEW_TOKEN
    token_file.write_text(OIDC_TOKEN + "-two")
    run(fetch())
    one, two = (query_of(r) for r in seen)
    assert one["OIDCToken"] == OIDC_TOKEN + "-one"
    assert two["OIDCToken"] == OIDC_TOKEN + "-two"
    assert one["Action"] == "AssumeRoleWithOIDC"
    assert one["OIDCProviderArn"] == "acs:ram::123:oidc-provider/ack"
    assert one["RoleSessionName"] == "pod"
    for name in ("Signature", "AccessKeyId", "SignatureMethod", "SecurityToken"):
        assert name not in one


def test_oidc_error_never_shows_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN)

    def sts(request: httpx.Request) -> httpx.Response:
        echoed = query_of(request)["OIDCToken"]
        return httpx.Response(
            400, json={"Code": "AuthenticationFail.OIDCToken.Invalid", "Message": f"bad {echoed}"}
        )

    fetch = assume_role_with_oidc(
        ROLE, "acs:ram::123:oidc-provider/ack", token_file, sts_endpoint=STS,
        client=transport(sts, []),
    )  # fmt: skip
    with pytest.raises(CredentialsError) as info:
        run(fetch())
    assert "AuthenticationFail.OIDCToken.Invalid" in str(info.value)
    assert "AssumeRoleWithOIDC" in str(info.value)
    assert_clean(info.value)


def test_oidc_missing_or_empty_token_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    fetch = assume_role_with_oidc(
        ROLE, "p", missing, sts_endpoint=STS, client=transport(lambda r: httpx.Response(500), [])
    )
    with pytest.raises(CredentialsError, match="cannot read the OIDC token file"):
        run(fetch())
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    fetch = assume_role_with_oidc(
        ROLE, "p", empty, sts_endpoint=STS, client=transport(lambda r: httpx.Response(500), [])
    )
    with pytest.raises(CredentialsError, match="is empty"):
        run(fetch())


# ---- credentials URI ------------------------------------------------------------------------


def test_credentials_uri_success() -> None:
    seen: list[httpx.Request] = []
    fetch = credentials_uri(
        "http://127.0.0.1:7/creds?who=me",
        client=transport(lambda r: httpx.Response(200, json=minted(Code="Success")), seen),
    )
    triple = run(fetch())
    assert isinstance(triple, Triple)
    assert triple.expires_at == EXPIRES_AT
    assert seen[0].method == "GET"
    assert seen[0].url.params["who"] == "me"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (minted(Code="Failure", Message="denied"), "Failure: denied"),
        (minted(Code="success"), "success"),
        (minted(Code="Success", AccessKeyId=None), "AccessKeyId"),
        (minted(Code="Success", Expiration=None), "Expiration"),
    ],
)
def test_credentials_uri_error_shapes(body: dict[str, object], needle: str) -> None:
    fetch = credentials_uri(
        "http://127.0.0.1:7/creds",
        client=transport(lambda r: httpx.Response(200, content=json.dumps(body)), []),
    )
    with pytest.raises(CredentialsError) as info:
        run(fetch())
    assert "credentials URI" in str(info.value)
    assert needle in str(info.value)
    assert_clean(info.value)


def test_credentials_uri_refuses_non_http() -> None:
    with pytest.raises(CredentialsError):
        credentials_uri("file:///etc/passwd")


# ---- ECS metadata ---------------------------------------------------------------------------


def metadata(*, v2: bool = True, role: str = "reader") -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/latest/api/token":
            if not v2 or request.method != "PUT":
                return httpx.Response(403)
            assert request.headers["X-aliyun-ecs-metadata-token-ttl-seconds"] == "21600"
            return httpx.Response(200, text=IMDS_TOKEN)
        if v2 and request.headers.get("X-aliyun-ecs-metadata-token") != IMDS_TOKEN:
            return httpx.Response(401)
        if path == "/latest/meta-data/ram/security-credentials/":
            return httpx.Response(200, text=role)
        if path == f"/latest/meta-data/ram/security-credentials/{role}":
            return httpx.Response(200, json=minted(Code="Success", LastUpdated="x"))
        return httpx.Response(404)

    return handle


def test_ecs_v2_flow_with_and_without_role_name() -> None:
    seen: list[httpx.Request] = []
    fetch = ecs_ram_role("reader", metadata_base=META, client=transport(metadata(), seen))
    assert run(fetch()).token == NEW_TOKEN
    assert [(r.method, r.url.path) for r in seen] == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/meta-data/ram/security-credentials/reader"),
    ]
    seen.clear()
    fetch = ecs_ram_role(metadata_base=META + "/", client=transport(metadata(), seen))
    assert run(fetch()).access_key_id == "STS.minted"
    assert [r.url.path for r in seen][1:] == [
        "/latest/meta-data/ram/security-credentials/",
        "/latest/meta-data/ram/security-credentials/reader",
    ]


def test_ecs_v1_refused_unless_allowed() -> None:
    seen: list[httpx.Request] = []
    fetch = ecs_ram_role("reader", metadata_base=META, client=transport(metadata(v2=False), seen))
    with pytest.raises(CredentialsError, match="IMDSv1 is not allowed"):
        run(fetch())
    assert len(seen) == 1  # only the token request: no v1 call was made
    fetch = ecs_ram_role(
        "reader", metadata_base=META, allow_v1=True, client=transport(metadata(v2=False), seen)
    )
    assert run(fetch()).secret == NEW_SECRET
    assert "X-aliyun-ecs-metadata-token" not in seen[-1].headers


def test_ecs_unknown_role_is_an_error_without_token() -> None:
    fetch = ecs_ram_role("other", metadata_base=META, client=transport(metadata(), []))
    with pytest.raises(CredentialsError, match="HTTP 404") as info:
        run(fetch())
    assert "IMDS" not in str(info.value).replace("IMDSv", "")
    assert_clean(info.value)


# ---- endpoint, expiration, environment ------------------------------------------------------


def test_sts_endpoint_rules() -> None:
    assert sts_endpoint("cn-hangzhou", environ={}) == "sts.cn-hangzhou.aliyuncs.com"
    assert sts_endpoint("cn-hangzhou", vpc=True, environ={}) == "sts-vpc.cn-hangzhou.aliyuncs.com"
    assert sts_endpoint(None, environ={}) == "sts.aliyuncs.com"
    assert sts_endpoint("cn-hangzhou", environ={ENV_STS_ENDPOINT: STS}) == STS


def test_parse_expiration() -> None:
    assert parse_expiration(EXPIRATION) == EXPIRES_AT
    assert parse_expiration("2030-01-01T00:00:00.500Z") == EXPIRES_AT + 0.5
    with pytest.raises(CredentialsError):
        parse_expiration("2030-01-01")
