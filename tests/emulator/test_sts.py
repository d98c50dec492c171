"""The STS, credentials-URI and instance-metadata handlers (:mod:`cms_magic.emulator.sts`):
requests signed with :mod:`cms_magic.openapi.signing`, minted answers, refusals, expiry on a
fake clock, and that no error shows a secret or token."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.emulator.service import DEMO_ACCESS_KEY_SECRET, EmulatorResponse, demo_credentials
from cms_magic.emulator.sts import (
    IMDS_CREDENTIALS_PREFIX,
    IMDS_TOKEN_HEADER,
    IMDS_TOKEN_PATH,
    IMDS_TTL_HEADER,
    STS_VERSION,
    CredentialsUriEmulator,
    MetadataEmulator,
    MintedRegistry,
    StsEmulator,
    TokenStatus,
    check_minted_key,
)
from cms_magic.emulator.validation import TOKEN_MARKER, Refusal
from cms_magic.openapi import signing
from tests.conftest import FakeClock

ROLE = "acs:ram::1234567890123456:role/notebook"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"
HOST = "sts.cn-hangzhou.aliyuncs.com"


def rpc_target(
    clock: FakeClock,
    credentials: Any = None,
    *,
    params: dict[str, str] | None = None,
    method: str = "GET",
) -> str:
    query = signing.rpc_query(
        method,
        {"RoleArn": ROLE, "RoleSessionName": "s1", **(params or {})},
        credentials or demo_credentials(),
        action="AssumeRole",
        version=STS_VERSION,
        date=signing.format_date(clock()),
        nonce=signing.new_nonce(),
    )
    return "/?" + urlencode(query)


def acs3_request(
    clock: FakeClock, credentials: Any = None, *, params: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    query = {"RoleArn": ROLE, "RoleSessionName": "s1", **(params or {})}
    headers = signing.acs3_headers(
        "POST",
        HOST,
        "/",
        query,
        {"accept": "application/json"},
        b"",
        credentials or demo_credentials(),
        action="AssumeRole",
        version=STS_VERSION,
        date=signing.format_date(clock()),
        nonce=signing.new_nonce(),
    )
    return "/?" + urlencode(query), headers


def secrets_of(answer: EmulatorResponse) -> list[str]:
    creds = answer.json()
    creds = creds.get("Credentials", creds)
    return [creds["AccessKeySecret"], creds["SecurityToken"]]


def assert_error(answer: EmulatorResponse, status: int, code: str, hidden: list[str]) -> str:
    assert answer.status == status, answer.body
    body = answer.json()
    assert set(body) == {"Code", "Message", "RequestId"}
    assert body["Code"] == code
    text = answer.body.decode()
    for secret in hidden:
        assert secret not in text
    return str(body["Message"])


@pytest.fixture
def sts(clock: FakeClock) -> StsEmulator:
    return StsEmulator(clock=clock)


# ---------------------------------------------------------------- AssumeRole


def test_assume_role_rpc_v2_mints_short_lived_credentials(
    sts: StsEmulator, clock: FakeClock
) -> None:
    answer = sts.handle("GET", rpc_target(clock), {"host": HOST}, b"")
    assert answer.status == 200, answer.body
    body = answer.json()
    assert set(body) == {"RequestId", "AssumedRoleUser", "Credentials"}
    creds = body["Credentials"]
    assert set(creds) == {"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}
    assert creds["AccessKeyId"].startswith("STS.")
    assert creds["Expiration"] == signing.format_date(clock() + 3600)
    assert body["AssumedRoleUser"]["Arn"] == "acs:ram::1234567890123456:assumed-role/notebook/s1"
    assert body["AssumedRoleUser"]["AssumedRoleId"].endswith(":s1")
    assert sts.registry.is_valid(creds["AccessKeyId"], creds["SecurityToken"], clock()) is (
        TokenStatus.KNOWN
    )
    assert sts.calls["AssumeRole"] == 1


def test_assume_role_acs3_and_form_body(sts: StsEmulator, clock: FakeClock) -> None:
    target, headers = acs3_request(clock)
    assert sts.handle("POST", target, headers, b"").status == 200
    query = signing.rpc_query(
        "POST",
        {"RoleArn": ROLE, "RoleSessionName": "form"},
        demo_credentials(),
        action="AssumeRole",
        version=STS_VERSION,
        date=signing.format_date(clock()),
        nonce=signing.new_nonce(),
    )
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert sts.handle("POST", "/", form, urlencode(query).encode()).status == 200


def test_lifetime_configurable_and_duration_asks_for_less(clock: FakeClock) -> None:
    sts = StsEmulator(clock=clock, lifetime_seconds=10, min_duration_seconds=1)
    long = sts.handle("GET", rpc_target(clock, params={"DurationSeconds": "900"}), {}, b"")
    assert long.json()["Credentials"]["Expiration"] == signing.format_date(clock() + 10)
    sts = StsEmulator(clock=clock)
    short = sts.handle("GET", rpc_target(clock, params={"DurationSeconds": "1200"}), {}, b"")
    assert short.json()["Credentials"]["Expiration"] == signing.format_date(clock() + 1200)
    low = sts.handle("GET", rpc_target(clock, params={"DurationSeconds": "899"}), {}, b"")
    assert "at least 900" in assert_error(low, 400, "InvalidParameter.DurationSeconds", [])


def test_wrong_secret_is_refused_without_showing_secrets(
    sts: StsEmulator, clock: FakeClock
) -> None:
    wrong = Credentials(demo_credentials().access_key_id, "not-the-secret-at-all")
    answer = sts.handle("GET", rpc_target(clock, wrong), {}, b"")
    message = assert_error(
        answer, 400, "SignatureDoesNotMatch", ["not-the-secret-at-all", DEMO_ACCESS_KEY_SECRET]
    )
    assert "server string to sign is:GET&%2F&" in message
    target, headers = acs3_request(clock, wrong)
    answer = sts.handle("POST", target, headers, b"")
    assert_error(answer, 400, "SignatureDoesNotMatch", ["not-the-secret-at-all"])
    assert sts.calls["AssumeRole"] == 0


def test_tampered_query_unknown_key_and_unsigned(sts: StsEmulator, clock: FakeClock) -> None:
    target = rpc_target(clock).replace("RoleSessionName=s1", "RoleSessionName=s2")
    assert_error(sts.handle("GET", target, {}, b""), 400, "SignatureDoesNotMatch", [])
    stranger = Credentials("LTAIstrangerKey000", "stranger-secret")
    answer = sts.handle("GET", rpc_target(clock, stranger), {}, b"")
    assert_error(answer, 404, "InvalidAccessKeyId.NotFound", ["stranger-secret"])
    plain = "/?" + urlencode(
        {"Action": "AssumeRole", "Version": STS_VERSION, "RoleArn": ROLE, "RoleSessionName": "s"}
    )
    assert_error(sts.handle("GET", plain, {}, b""), 400, "IncompleteSignature", [])
    target, headers = acs3_request(clock)
    headers["x-acs-extra"] = "added after signing"
    assert_error(sts.handle("POST", target, headers, b""), 400, "IncompleteSignature", [])


def test_parameter_and_timestamp_refusals(sts: StsEmulator, clock: FakeClock) -> None:
    answer = sts.handle("GET", rpc_target(clock, params={"RoleArn": "notebook"}), {}, b"")
    assert_error(answer, 400, "InvalidParameter.RoleArn", [])
    answer = sts.handle("GET", rpc_target(clock, params={"RoleSessionName": ""}), {}, b"")
    assert_error(answer, 400, "MissingParameter", [])
    old = rpc_target(clock)
    clock.advance(901)
    assert_error(sts.handle("GET", old, {}, b""), 400, "InvalidTimeStamp.Expired", [])
    other = "/?" + urlencode({"Action": "GetCallerIdentity", "Version": STS_VERSION})
    assert_error(sts.handle("GET", other, {}, b""), 404, "InvalidAction.NotFound", [])


def test_chained_assume_role_with_minted_key_until_it_expires(
    sts: StsEmulator, clock: FakeClock
) -> None:
    sts.lifetime_seconds = 1000
    first = sts.handle("GET", rpc_target(clock), {}, b"").json()["Credentials"]
    minted = Credentials(first["AccessKeyId"], first["AccessKeySecret"], first["SecurityToken"])
    chained = sts.handle("GET", rpc_target(clock, minted), {}, b"")
    assert chained.status == 200, chained.body
    target, headers = acs3_request(clock, minted)
    assert sts.handle("POST", target, headers, b"").status == 200
    wrong_token = Credentials(first["AccessKeyId"], first["AccessKeySecret"], "CAISwrongtoken00")
    answer = sts.handle("GET", rpc_target(clock, wrong_token), {}, b"")
    assert_error(
        answer, 400, "InvalidSecurityToken.MismatchWithAccessKey", [first["AccessKeySecret"]]
    )
    clock.advance(1000)
    answer = sts.handle("GET", rpc_target(clock, minted), {}, b"")
    assert_error(
        answer,
        400,
        "InvalidSecurityToken.Expired",
        [first["AccessKeySecret"], first["SecurityToken"]],
    )


def test_signature_mismatch_with_token_hides_the_token(sts: StsEmulator, clock: FakeClock) -> None:
    first = sts.handle("GET", rpc_target(clock), {}, b"").json()["Credentials"]
    forged = Credentials(first["AccessKeyId"], "forged-secret-value", first["SecurityToken"])
    answer = sts.handle("GET", rpc_target(clock, forged), {}, b"")
    hidden = [first["SecurityToken"], first["AccessKeySecret"], "forged-secret-value"]
    message = assert_error(answer, 400, "SignatureDoesNotMatch", hidden)
    marker = signing.percent_encode(signing.percent_encode(TOKEN_MARKER))
    assert f"SecurityToken%3D{marker}" in message
    target, headers = acs3_request(clock, forged)
    message = assert_error(
        sts.handle("POST", target, headers, b""), 400, "SignatureDoesNotMatch", hidden
    )
    assert f"x-acs-security-token:{TOKEN_MARKER}" in message


# ---------------------------------------------------------------- AssumeRoleWithOIDC


def oidc_target(clock: FakeClock, **params: str) -> str:
    values = {"RoleArn": ROLE, "OIDCProviderArn": PROVIDER, "OIDCToken": "eyJhbGciOi.jwt.sig"}
    values.update(params)
    query = signing.anonymous_rpc_query(
        {k: v for k, v in values.items() if v != "-"},
        action="AssumeRoleWithOIDC",
        version=STS_VERSION,
        date=signing.format_date(clock()),
    )
    return "/?" + urlencode(query)


def test_assume_role_with_oidc_is_anonymous(sts: StsEmulator, clock: FakeClock) -> None:
    answer = sts.handle("GET", oidc_target(clock, RoleSessionName="pod"), {}, b"")
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["Credentials"]["AccessKeyId"].startswith("STS.")
    assert body["AssumedRoleUser"]["Arn"].endswith("assumed-role/notebook/pod")
    assert "not verified" in body["OIDCTokenInfo"]["VerificationInfo"]
    assert sts.calls["AssumeRoleWithOIDC"] == 1


@pytest.mark.parametrize("missing", ["RoleArn", "OIDCProviderArn", "OIDCToken"])
def test_oidc_requires_its_three_parameters(
    sts: StsEmulator, clock: FakeClock, missing: str
) -> None:
    answer = sts.handle("GET", oidc_target(clock, **{missing: "-"}), {}, b"")
    assert missing in assert_error(answer, 400, "MissingParameter", ["eyJhbGciOi.jwt.sig"])
    bad = sts.handle("GET", oidc_target(clock, OIDCProviderArn="provider"), {}, b"")
    assert_error(bad, 400, "InvalidParameter.OIDCProviderArn", ["eyJhbGciOi.jwt.sig"])


# ---------------------------------------------------------------- registry and uploads


def test_registry_known_expired_unknown(clock: FakeClock) -> None:
    registry = MintedRegistry()
    minted = registry.mint(10, clock(), source="test")
    token = minted.security_token.reveal()
    assert registry.is_valid(minted.access_key_id, token, clock()) is TokenStatus.KNOWN
    assert registry.is_valid(minted.access_key_id, "CAISother", clock()) is TokenStatus.UNKNOWN
    assert registry.is_valid("STS.never", token, clock()) is TokenStatus.UNKNOWN
    assert registry.is_valid(minted.access_key_id, token, clock() + 10) is TokenStatus.EXPIRED
    assert token not in repr(minted)
    assert minted.access_key_secret.reveal() not in repr(minted)


def test_check_minted_key_refuses_an_expired_upload_token(clock: FakeClock) -> None:
    registry = MintedRegistry()
    minted = registry.mint(10, clock(), source="test")
    token = minted.security_token.reveal()
    fields = {"x-cms-security-token": token, "x-cms-caller-type": "token"}
    credentials = check_minted_key(registry, minted.access_key_id, fields, clock())
    assert credentials.security_token == token
    with pytest.raises(Refusal) as caught:
        check_minted_key(registry, minted.access_key_id, fields, clock() + 10)
    assert caught.value.status == 403
    assert "expired at" in caught.value.msg
    assert token not in caught.value.msg
    with pytest.raises(Refusal, match="does not match"):
        check_minted_key(
            registry, minted.access_key_id, {**fields, "x-cms-security-token": "x" * 20}, clock()
        )


# ---------------------------------------------------------------- credentials URI


def test_credentials_uri(clock: FakeClock) -> None:
    uri = CredentialsUriEmulator(lifetime_seconds=10, clock=clock)
    answer = uri.handle("GET", "/creds?role=x", {"host": "127.0.0.1"}, b"")
    body = answer.json()
    assert answer.status == 200
    assert set(body) == {"Code", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}
    assert body["Code"] == "Success"
    assert body["Expiration"] == signing.format_date(clock() + 10)
    assert uri.registry.is_valid(body["AccessKeyId"], body["SecurityToken"], clock() + 10) is (
        TokenStatus.EXPIRED
    )
    assert uri.calls == 1
    assert uri.handle("POST", "/creds", {}, b"").status == 405
    uri.fail_with = "Failed"
    assert_error(uri.handle("GET", "/creds", {}, b""), 500, "Failed", secrets_of(answer))


# ---------------------------------------------------------------- instance metadata


def test_metadata_v2_flow(clock: FakeClock) -> None:
    imds = MetadataEmulator("NotebookRole", lifetime_seconds=10, clock=clock)
    token = imds.handle("PUT", IMDS_TOKEN_PATH, {IMDS_TTL_HEADER: "21600"}, b"")
    assert token.status == 200
    header = {IMDS_TOKEN_HEADER: token.body.decode()}
    role = imds.handle("GET", IMDS_CREDENTIALS_PREFIX, header, b"")
    assert role.body == b"NotebookRole"
    answer = imds.handle("GET", IMDS_CREDENTIALS_PREFIX + "NotebookRole", header, b"")
    body = answer.json()
    assert body["Code"] == "Success"
    assert body["AccessKeyId"].startswith("STS.")
    assert body["Expiration"] == signing.format_date(clock() + 10)
    assert "LastUpdated" in body
    assert imds.calls == 1
    assert imds.handle("GET", IMDS_CREDENTIALS_PREFIX + "Other", header, b"").status == 404
    clock.advance(21600)
    assert imds.handle("GET", IMDS_CREDENTIALS_PREFIX, header, b"").status == 401


def test_metadata_v1_refused_unless_allowed(clock: FakeClock) -> None:
    imds = MetadataEmulator(clock=clock)
    refused = imds.handle("GET", IMDS_CREDENTIALS_PREFIX + "EcsRamRoleDemo", {}, b"")
    assert refused.status == 403
    assert b"IMDSv1" in refused.body
    assert imds.calls == 0
    assert imds.handle("PUT", IMDS_TOKEN_PATH, {}, b"").status == 400
    assert imds.handle("PUT", IMDS_TOKEN_PATH, {IMDS_TTL_HEADER: "21601"}, b"").status == 400
    allowed = MetadataEmulator(allow_v1=True, clock=clock)
    answer = allowed.handle("GET", IMDS_CREDENTIALS_PREFIX + "EcsRamRoleDemo", {}, b"")
    assert answer.status == 200
    assert answer.json()["Code"] == "Success"
