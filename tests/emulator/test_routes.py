"""The credential endpoints on the emulator's one port, over real loopback HTTP
(:mod:`cms_magic.emulator.routes`): STS signed by :mod:`cms_magic.openapi.signing` (RPC v2 and
ACS3, chained with a minted key, OIDC anonymous), the credentials URI, the instance metadata
(v2; v1 refused unless allowed), the action table, and uploads signed with minted keys,
accepted until they expire and then refused as the client can recognise."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

import cms_magic
from cms_magic.credentials.static import Credentials
from cms_magic.emulator import demo_credentials, embedded
from cms_magic.emulator.endpoints import IMDS_TOKEN_HEADER, IMDS_TTL_HEADER
from cms_magic.emulator.minted import UPLOAD_TOKEN_EXPIRED_CODE
from cms_magic.emulator.service import EmulatorResponse, json_response
from cms_magic.emulator.sts import STS_VERSION
from cms_magic.errors import AuthError, ConfigError
from cms_magic.openapi import signing
from cms_magic.sending.answers import auth_error, classify

ROLE = "acs:ram::1234567890123456:role/notebook"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"
CREDS_PATH = "/latest/meta-data/ram/security-credentials/"
EVENT = {"name": "RouteTest", "content": "minted key upload", "groupId": 7}

MakeEmulator = Callable[..., Any]


class ShiftedClock:
    """Real time plus an offset the test moves: the client signs with the real clock, so the
    emulator's Date check still passes while its expiry checks see the future."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset += seconds


def rpc_url(server: Any, credentials: Any, action: str = "AssumeRole", **params: str) -> str:
    query = signing.rpc_query(
        "GET",
        {"RoleArn": ROLE, "RoleSessionName": "route", **params},
        credentials,
        action=action,
        version=STS_VERSION,
        date=signing.format_date(time.time()),
        nonce=signing.new_nonce(),
    )
    return f"{server.sts_url}/?{urlencode(query)}"


def assume_role(server: Any, credentials: Any = None) -> dict[str, str]:
    answer = httpx.get(rpc_url(server, credentials or demo_credentials()), timeout=5)
    assert answer.status_code == 200, answer.text
    creds: dict[str, str] = answer.json()["Credentials"]
    return creds


def as_credentials(wire: dict[str, str]) -> Credentials:
    return Credentials(wire["AccessKeyId"], wire["AccessKeySecret"], wire["SecurityToken"])


def assert_openapi_error(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"Code", "Message", "RequestId"}
    assert body["Code"] == code
    return str(body["Message"])


# ---------------------------------------------------------------- STS


def test_urls_are_loopback_on_the_server_port(emulator: Any) -> None:
    port = urlsplit(emulator.url).port
    for url in (emulator.sts_url, emulator.credentials_uri, emulator.metadata_url):
        assert urlsplit(url).hostname == "127.0.0.1"
        assert urlsplit(url).port == port
    assert emulator.credentials_uri.endswith("/credentials")
    assert emulator.sts_lifetime == 3600
    assert emulator.metadata_v1 is False
    assert len(emulator.minted) == 0


def test_assume_role_rpc_v2_over_http(make_emulator: MakeEmulator) -> None:
    server = make_emulator(sts_lifetime=60)
    started = time.time()
    creds = assume_role(server)
    assert creds["AccessKeyId"].startswith("STS.")
    expires = signing.format_date(started + 60)
    assert expires <= creds["Expiration"] <= signing.format_date(time.time() + 60)
    minted = server.minted
    assert (minted.assume_role, minted.sts, len(minted)) == (1, 1, 1)
    assert minted.credentials[0].access_key_id == creds["AccessKeyId"]
    assert creds["AccessKeySecret"] not in repr(minted)
    assert creds["SecurityToken"] not in repr(minted)
    assert server.requests() == []  # only uploads go to the request log


def test_assume_role_acs3_over_http_and_chained_with_a_minted_key(emulator: Any) -> None:
    host = urlsplit(emulator.url).netloc
    query = {"RoleArn": ROLE, "RoleSessionName": "acs3"}

    def acs3(credentials: Any) -> httpx.Response:
        headers = signing.acs3_headers(
            "POST",
            host,
            "/",
            query,
            {"accept": "application/json"},
            b"",
            credentials,
            action="AssumeRole",
            version=STS_VERSION,
            date=signing.format_date(time.time()),
            nonce=signing.new_nonce(),
        )
        return httpx.post(f"{emulator.sts_url}/?{urlencode(query)}", headers=headers, timeout=5)

    first = acs3(demo_credentials())
    assert first.status_code == 200, first.text
    minted = as_credentials(first.json()["Credentials"])
    chained_acs3 = acs3(minted)
    assert chained_acs3.status_code == 200, chained_acs3.text
    chained_rpc = assume_role(emulator, minted)
    assert chained_rpc["AccessKeyId"] not in (minted.access_key_id,)
    forged = Credentials(minted.access_key_id, "forged-secret-value", minted.security_token)
    message = assert_openapi_error(acs3(forged), 400, "SignatureDoesNotMatch")
    assert minted.security_token is not None
    assert minted.security_token.reveal() not in message
    assert emulator.minted.assume_role == 3
    assert emulator.minted.sts_refused == 1


def test_assume_role_with_oidc_is_anonymous(emulator: Any) -> None:
    query = signing.anonymous_rpc_query(
        {"RoleArn": ROLE, "OIDCProviderArn": PROVIDER, "OIDCToken": "eyJhbGciOi.jwt.sig"},
        action="AssumeRoleWithOIDC",
        version=STS_VERSION,
        date=signing.format_date(time.time()),
    )
    answer = httpx.post(f"{emulator.sts_url}/", params=query, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["Credentials"]["AccessKeyId"].startswith("STS.")
    assert emulator.minted.assume_role_with_oidc == 1
    assert emulator.minted.sts == 1


def test_unknown_or_missing_action_and_a_registered_one(emulator: Any) -> None:
    unknown = httpx.get(f"{emulator.url}/?Action=DescribeNothing&Version=1", timeout=5)
    message = assert_openapi_error(unknown, 404, "InvalidAction.NotFound")
    assert message.startswith("Specified api is not found, please check your url and method.")
    assert "AssumeRole, AssumeRoleWithOIDC" in message
    by_header = httpx.post(f"{emulator.url}/", headers={"x-acs-action": "Nope"}, timeout=5)
    assert_openapi_error(by_header, 404, "InvalidAction.NotFound")
    form = httpx.post(f"{emulator.url}/", data={"Version": "1"}, timeout=5)
    assert "Action" in assert_openapi_error(form, 400, "MissingParameter")

    seen: list[str] = []

    class Count:
        def handle(self, method: str, target: str, headers: Any, body: bytes) -> EmulatorResponse:
            seen.append(method)
            return json_response(200, {"Code": "200", "Count": 0}, time.time())

    emulator.register(Count(), "DescribeCustomEventCount")
    answer = httpx.post(
        f"{emulator.url}/", headers={"x-acs-action": "DescribeCustomEventCount"}, timeout=5
    )
    assert answer.json() == {"Code": "200", "Count": 0}
    assert seen == ["POST"]
    assert emulator.routes.actions.calls["DescribeCustomEventCount"] == 1
    # what is not an OpenAPI call is the upload path, as before
    assert httpx.get(f"{emulator.url}/", timeout=5).json()["code"] == "404"
    assert httpx.get(f"{emulator.url}/_emulator/health", timeout=5).json() == {"ok": True}


# ---------------------------------------------------------------- URI and metadata


def test_credentials_uri_over_http(make_emulator: MakeEmulator) -> None:
    server = make_emulator(sts_lifetime=30)
    answer = httpx.get(server.credentials_uri, timeout=5)
    body = answer.json()
    assert answer.status_code == 200
    assert body["Code"] == "Success"
    assert set(body) == {"Code", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}
    assert httpx.post(server.credentials_uri, timeout=5).status_code == 405
    server.routes.credentials_uri.fail_with = "Unavailable"
    assert_openapi_error(httpx.get(server.credentials_uri, timeout=5), 500, "Unavailable")
    minted = server.minted
    assert (minted.credentials_uri, minted.credentials_uri_refused, len(minted)) == (1, 2, 1)


def test_metadata_v2_and_v1_refused(emulator: Any) -> None:
    base = emulator.metadata_url
    token = httpx.put(f"{base}/latest/api/token", headers={IMDS_TTL_HEADER: "60"}, timeout=5)
    assert token.status_code == 200
    header = {IMDS_TOKEN_HEADER: token.text}
    role = httpx.get(f"{base}{CREDS_PATH}", headers=header, timeout=5)
    assert role.text == "EcsRamRoleDemo"
    creds = httpx.get(f"{base}{CREDS_PATH}EcsRamRoleDemo", headers=header, timeout=5).json()
    assert creds["Code"] == "Success"
    assert creds["AccessKeyId"].startswith("STS.")
    refused = httpx.get(f"{base}{CREDS_PATH}EcsRamRoleDemo", timeout=5)
    assert refused.status_code == 403
    assert "IMDSv1" in refused.text
    minted = emulator.minted
    assert (minted.metadata, minted.metadata_tokens, minted.metadata_refused) == (1, 1, 1)
    emulator.metadata_v1 = True
    assert httpx.get(f"{base}{CREDS_PATH}EcsRamRoleDemo", timeout=5).status_code == 200


def test_metadata_v1_allowed_and_its_role_named(make_emulator: MakeEmulator) -> None:
    server = make_emulator(metadata_v1=True, metadata_role="NotebookRole")
    answer = httpx.get(f"{server.metadata_url}{CREDS_PATH}NotebookRole", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["Code"] == "Success"
    assert httpx.get(f"{server.metadata_url}{CREDS_PATH}Other", timeout=5).status_code == 404


def test_lifetime_is_a_setting(make_emulator: MakeEmulator) -> None:
    with pytest.raises(ConfigError, match="sts_lifetime"):
        make_emulator(sts_lifetime=0)
    server = make_emulator()
    server.sts_lifetime = 15
    before = time.time()
    body = httpx.get(server.credentials_uri, timeout=5).json()
    assert body["Expiration"] >= signing.format_date(before + 15)
    assert body["Expiration"] <= signing.format_date(time.time() + 15)
    with pytest.raises(ConfigError, match="sts_lifetime"):
        server.sts_lifetime = -1


def test_embedded_takes_the_lifetime_and_v1() -> None:
    server = embedded(sts_lifetime=12, metadata_v1=True)
    assert (server.sts_lifetime, server.metadata_v1) == (12, True)
    assert embedded() is server
    assert server.sts_lifetime == 12


def test_mock_transport_serves_every_route_but_admin(emulator: Any) -> None:
    transport = httpx.MockTransport(emulator.routes.handle_request)
    with httpx.Client(transport=transport, base_url="http://emulator.test") as client:
        assert client.get("/credentials").json()["Code"] == "Success"
        assert client.get("/?Action=Nope").status_code == 404
        assert client.get(CREDS_PATH).status_code == 403
    assert emulator.minted.credentials_uri == 1


# ---------------------------------------------------------------- uploads with minted keys


def test_upload_with_minted_credentials_is_accepted(emulator: Any) -> None:
    minted = as_credentials(assume_role(emulator))
    result = cms_magic.send([EVENT], endpoint=emulator.url, credentials=minted)
    assert result.ok, result.requests.to_dict("records")
    assert [e["content"] for e in emulator.events()] == [EVENT["content"]]
    uri = httpx.get(emulator.credentials_uri, timeout=5).json()
    again = cms_magic.send([EVENT], endpoint=emulator.url, credentials=as_credentials(uri))
    assert again.ok


def test_upload_with_an_expired_minted_token_is_refused_as_token_expired(
    make_emulator: MakeEmulator,
) -> None:
    clock = ShiftedClock()
    server = make_emulator(sts_lifetime=60, clock=clock)
    wire = assume_role(server)
    minted = as_credentials(wire)
    assert cms_magic.send([EVENT], endpoint=server.url, credentials=minted).ok
    clock.advance(61)
    result = cms_magic.send([EVENT], endpoint=server.url, credentials=minted)
    assert not result.ok
    assert isinstance(result.error, AuthError)
    assert result.error.hint is not None
    assert "get fresh temporary credentials" in result.error.hint
    request = result.requests.iloc[-1]
    assert request["http_status"] == 403
    assert request["code"] == UPLOAD_TOKEN_EXPIRED_CODE == "InvalidSecurityToken.Expired"
    assert request["msg"].startswith("Specified SecurityToken is expired")
    assert set(result.events["status"]) == {"not_sent"}
    logged = server.requests()[-1]
    assert (logged["status"], logged["code"]) == (403, UPLOAD_TOKEN_EXPIRED_CODE)
    for secret in (wire["AccessKeySecret"], wire["SecurityToken"]):
        assert secret not in str(result.error)
        assert secret not in repr(result.requests.to_dict("records"))
        assert secret not in repr(server.requests())
    assert len(server.events()) == 1


def test_expired_upload_answer_classifies_as_auth_with_its_code(
    make_emulator: MakeEmulator,
) -> None:
    clock = ShiftedClock()
    server = make_emulator(sts_lifetime=60, clock=clock)
    wire = httpx.get(server.credentials_uri, timeout=5).json()
    clock.advance(60)
    from cms_magic.signing import CmsAuth

    request = httpx.Request("POST", f"{server.url}/event/custom/upload", json=[EVENT])
    CmsAuth.from_credentials(as_credentials(wire)).sign(request)
    with httpx.Client() as client:
        answer = client.send(request)
    assert answer.status_code == 403
    body = answer.json()
    assert set(body) == {"code", "msg", "requestId"}
    assert body["code"] == "InvalidSecurityToken.Expired"
    verdict = classify(answer.status_code, answer.content, answer.headers)
    assert (verdict.outcome, verdict.code) == ("auth", "InvalidSecurityToken.Expired")
    error = auth_error(verdict, as_credentials(wire))
    assert error.hint is not None
    assert "expired" in error.hint


@pytest.mark.parametrize("case", ["unknown key", "other token"])
def test_upload_with_an_unknown_sts_key_or_a_foreign_token_is_refused(
    emulator: Any, case: str
) -> None:
    wire = assume_role(emulator)
    other = assume_role(emulator)
    if case == "unknown key":
        creds = Credentials("STS." + "x" * 28, wire["AccessKeySecret"], wire["SecurityToken"])
        fragment = "unknown AccessKeyId"
    else:
        creds = Credentials(wire["AccessKeyId"], wire["AccessKeySecret"], other["SecurityToken"])
        fragment = "does not match"
    result = cms_magic.send([EVENT], endpoint=emulator.url, credentials=creds)
    assert isinstance(result.error, AuthError)
    request = result.requests.iloc[-1]
    assert (request["http_status"], request["code"]) == (403, "403")
    assert fragment in request["msg"]
    assert emulator.events() == []


# ---------------------------------------------------------------- the rule, in-process


@pytest.mark.parametrize(
    ("method", "target", "headers", "route"),
    [
        ("GET", "/_emulator/health", {}, "admin"),
        ("PUT", "/latest/api/token", {}, "metadata"),
        ("GET", "/latest/meta-data/ram/security-credentials/", {}, "metadata"),
        ("GET", "/credentials", {}, "credentials"),
        ("POST", "/credentials?x=1", {}, "credentials"),
        ("GET", "/?Action=AssumeRole", {}, "openapi"),
        ("POST", "/", {"X-Acs-Action": "AssumeRole"}, "openapi"),
        ("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, "openapi"),
        ("PUT", "/?Action=AssumeRole", {}, "upload"),
        ("GET", "/", {}, "upload"),
        ("POST", "/event/custom/upload?Action=AssumeRole", {}, "upload"),
        ("POST", "/event/custom/upload", {"x-acs-action": "AssumeRole"}, "upload"),
    ],
)
def test_route_by_the_request_head(
    emulator: Any, method: str, target: str, headers: dict[str, str], route: str
) -> None:
    assert emulator.routes.route(method, target, headers) == route


def test_register_wants_action_names(emulator: Any) -> None:
    with pytest.raises(ValueError, match="at least one action"):
        emulator.register(emulator.routes.sts)
    with pytest.raises(ValueError, match="non-empty string"):
        emulator.register(emulator.routes.sts, "")
    assert emulator.routes.actions.actions[:2] == ("AssumeRole", "AssumeRoleWithOIDC")
    assert set(emulator.routes.actions.actions[2:]) == {
        "DescribeCustomEventAttribute",
        "DescribeCustomEventCount",
        "DescribeCustomEventHistogram",
        "PutCustomEvent",
    }


# ---------------------------------------------------------------- signed actions and replays


def test_a_replayed_assume_role_is_refused(emulator: Any) -> None:
    url = rpc_url(emulator, demo_credentials())
    assert httpx.get(url, timeout=5).status_code == 200
    assert_openapi_error(httpx.get(url, timeout=5), 400, "SignatureNonceUsed")
    assert emulator.minted.assume_role == 1


def test_register_signed_verifies_before_answering(make_emulator: MakeEmulator) -> None:
    clock = ShiftedClock()
    server = make_emulator(sts_lifetime=60, clock=clock)
    seen: list[tuple[str, str]] = []

    def count(params: Any, now: float, key_id: str) -> EmulatorResponse:
        seen.append((params.get("Name", ""), key_id))
        return json_response(200, {"Code": "200", "Count": len(seen)}, now)

    handler = server.routes.register_signed(count, "DescribeCustomEventCount")

    def call(credentials: Any) -> httpx.Response:
        query = signing.rpc_query(
            "GET",
            {"Name": "deploy"},
            credentials,
            action="DescribeCustomEventCount",
            version="2019-01-01",
            date=signing.format_date(time.time()),
            nonce=signing.new_nonce(),
        )
        return httpx.get(f"{server.url}/?{urlencode(query)}", timeout=5)

    assert call(demo_credentials()).json() == {"Code": "200", "Count": 1}
    minted = as_credentials(assume_role(server))
    assert call(minted).json()["Count"] == 2
    assert seen == [("deploy", demo_credentials().access_key_id), ("deploy", minted.access_key_id)]
    unsigned = httpx.get(f"{server.url}/?Action=DescribeCustomEventCount", timeout=5)
    assert_openapi_error(unsigned, 400, "IncompleteSignature")
    forged = Credentials(demo_credentials().access_key_id, "not-the-secret")
    assert_openapi_error(call(forged), 400, "SignatureDoesNotMatch")
    clock.advance(61)
    assert_openapi_error(call(minted), 400, "InvalidSecurityToken.Expired")
    assert (handler.calls, handler.refused) == (2, 3)


def test_nonce_ledger_forgets_after_its_window() -> None:
    from cms_magic.emulator.verify import NonceLedger

    ledger = NonceLedger(window_seconds=10)
    assert ledger.use("a", 0.0)
    assert not ledger.use("a", 9.9)
    assert ledger.use("b", 5.0)
    assert ledger.use("a", 10.0)  # its window passed
    assert len(ledger) == 2
    assert ledger.use("c", 100.0)
    assert len(ledger) == 1
