"""The OpenAPI signers against the vectors recorded from the official SDKs.

The vectors are data files under tests/vectors/openapi/ (fake keys), copied unchanged from
the shared reference. For every vector, each intermediate value is rebuilt with the pure
steps and compared (the strings are shown whole on a mismatch), then the one-call builders
are checked to give the same Authorization header (ACS3) or query (RPC v2, anonymous).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cms_magic.credentials import Credentials, Secret
from cms_magic.openapi import signing
from cms_magic.openapi.signing import (
    acs3_headers,
    anonymous_rpc_query,
    authorization,
    canonical_headers,
    canonical_query_string,
    canonical_request,
    canonical_uri,
    format_date,
    hashed_payload,
    percent_encode,
    rpc_canonicalized_query_string,
    rpc_hmac_key,
    rpc_query,
    rpc_signature,
    rpc_string_to_sign,
    signature,
    string_to_sign,
)

VECTOR_DIR = Path(__file__).parent.parent / "vectors" / "openapi"


def _vectors(name: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads((VECTOR_DIR / name).read_text(encoding="utf-8"))
    vectors: list[dict[str, Any]] = data["vectors"]
    return vectors


ACS3 = _vectors("vectors-acs3.json")
RPC = _vectors("vectors-rpc-v2.json")
RPC_SIGNED = [v for v in RPC if v["signed"]]
RPC_ANONYMOUS = [v for v in RPC if not v["signed"]]

#: Headers the ACS3 builder writes itself (the vector's copies are left for it to set).
BUILDER_HEADERS = {
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
    "x-acs-accesskey-id",
    "x-acs-security-token",
}
#: RPC v2 common parameters the builders write themselves.
RPC_COMMON = {
    "Action",
    "Version",
    "Format",
    "Timestamp",
    "SignatureNonce",
    "SignatureMethod",
    "SignatureVersion",
    "AccessKeyId",
    "SecurityToken",
}


def same(label: str, built: str, expected: str) -> None:
    assert built == expected, (
        f"{label} differs\n--- built ---\n{built}\n--- expected ---\n{expected}\n---"
    )


def test_every_vector_file_is_here_and_complete() -> None:
    assert len(ACS3) == 8
    assert len(RPC_SIGNED) == 5
    assert len(RPC_ANONYMOUS) == 1


# ---- ACS3-HMAC-SHA256 ------------------------------------------------------------------


@pytest.mark.parametrize("vector", ACS3, ids=[v["name"] for v in ACS3])
def test_acs3_vector_step_by_step(vector: dict[str, Any]) -> None:
    inputs, mid, expected = vector["inputs"], vector["intermediate"], vector["expected"]
    body = inputs["body"].encode("utf-8")
    query = canonical_query_string(inputs["query"])
    same("canonical query string", query, mid["canonical_query_string"])
    headers, signed = canonical_headers(inputs["headers"])
    same("canonical headers", headers, mid["canonical_headers"])
    same("signed headers", signed, mid["signed_headers"])
    payload = hashed_payload(body)
    same("hashed payload", payload, mid["hashed_payload"])
    given = dict(inputs["headers"])
    assert given["x-acs-content-sha256"] == payload
    request = canonical_request(
        inputs["method"], canonical_uri(inputs["path"]), query, headers, signed, payload
    )
    same("canonical request", request, mid["canonical_request"])
    to_sign = string_to_sign(request)
    same("string to sign", to_sign, mid["string_to_sign"])
    signed_hex = signature(inputs["access_key_secret"], to_sign)
    same("signature", signed_hex, expected["signature"])
    header = authorization(inputs["access_key_id"], signed, signed_hex)
    same("Authorization", header, expected["authorization"])


@pytest.mark.parametrize("vector", ACS3, ids=[v["name"] for v in ACS3])
def test_acs3_builder_gives_the_sdk_headers(vector: dict[str, Any]) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    given = dict(inputs["headers"])
    extra = {k: v for k, v in inputs["headers"] if k not in BUILDER_HEADERS}
    credentials = Credentials(
        inputs["access_key_id"], inputs["access_key_secret"], inputs["security_token"]
    )
    built = acs3_headers(
        inputs["method"],
        inputs["host"],
        inputs["path"],
        dict(inputs["query"]),
        extra,
        inputs["body"].encode("utf-8"),
        credentials,
        action=given["x-acs-action"],
        version=given["x-acs-version"],
        date=given["x-acs-date"],
        nonce=given["x-acs-signature-nonce"],
    )
    same("Authorization", built["authorization"], expected["authorization"])
    # Every header the SDK signed is sent with the SDK's value, and nothing else is signed.
    without_authorization = {k: v for k, v in built.items() if k != "authorization"}
    assert without_authorization == given


def test_acs3_builder_takes_plain_strings_and_secrets_alike() -> None:
    vector = next(v for v in ACS3 if v["inputs"]["security_token"])
    inputs = vector["inputs"]
    given = dict(inputs["headers"])
    args: dict[str, Any] = {
        "action": given["x-acs-action"],
        "version": given["x-acs-version"],
        "date": given["x-acs-date"],
        "nonce": given["x-acs-signature-nonce"],
    }
    extra = {k: v for k, v in inputs["headers"] if k not in BUILDER_HEADERS}
    results = []
    for wrap in (str, Secret):
        credentials = signing.StaticCredentials(
            inputs["access_key_id"],
            wrap(inputs["access_key_secret"]),
            wrap(inputs["security_token"]),
        )
        results.append(
            acs3_headers(
                "POST", inputs["host"], "/", dict(inputs["query"]), extra, b"", credentials, **args
            )
        )
    assert results[0] == results[1]
    assert results[0]["authorization"] == vector["expected"]["authorization"]


def test_acs3_anonymous_request_has_no_authorization() -> None:
    built = acs3_headers(
        "POST",
        "sts.cn-hangzhou.aliyuncs.com",
        "/",
        {"RoleArn": "acs:ram::1:role/r"},
        {"user-agent": "ua"},
        b"",
        None,
        action="AssumeRoleWithOIDC",
        version="2015-04-01",
        date="2026-11-26T08:42:10Z",
        nonce="n",
    )
    assert "authorization" not in built
    assert "x-acs-accesskey-id" not in built
    assert built["x-acs-action"] == "AssumeRoleWithOIDC"
    assert built["host"] == "sts.cn-hangzhou.aliyuncs.com"


def test_acs3_body_is_hashed_and_content_type_signed() -> None:
    body = "EventInfo.1.Content=磁盘🔥".encode()
    built = acs3_headers(
        "POST",
        "127.0.0.1:8080",
        "/",
        {},
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "99"},
        body,
        signing.StaticCredentials("id", "secret"),
        action="PutCustomEvent",
        version="2019-01-01",
        date="2026-11-26T08:00:00Z",
        nonce="abc",
    )
    assert built["x-acs-content-sha256"] == hashed_payload(body)
    signed_part = built["authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert "content-type" in signed_part.split(";")
    assert "content-length" not in signed_part.split(";")


def test_header_names_are_lowercased_before_sorting_and_values_trimmed() -> None:
    text, signed = canonical_headers([("X-Acs-Zeta", " 1 "), ("host", "h"), ("Accept", "a")])
    assert text == "accept:a\nhost:h\nx-acs-zeta:1\n"
    assert signed == "accept;host;x-acs-zeta"


def test_canonical_query_string_sorts_encoded_pairs_and_keeps_empty_values() -> None:
    assert canonical_query_string({}) == ""
    assert canonical_query_string({"b": "2", "a": "", "c d": "x y"}) == "a=&b=2&c%20d=x%20y"
    # EventInfo.1.* sorts before EventInfo.10.*, as the 50-entry vector needs.
    keys = ["EventInfo.10.Content", "EventInfo.1.Content", "EventInfo.2.Content"]
    assert canonical_query_string([(k, "v") for k in keys]).split("&") == [
        "EventInfo.1.Content=v",
        "EventInfo.10.Content=v",
        "EventInfo.2.Content=v",
    ]


def test_format_date_is_utc_seconds_with_z() -> None:
    assert format_date(0) == "1970-01-01T00:00:00Z"
    assert format_date(1_795_680_942.9) == "2026-11-26T08:15:42Z"


def test_new_nonce_is_fresh_32_hex() -> None:
    first, second = signing.new_nonce(), signing.new_nonce()
    assert first != second
    assert len(first) == 32
    int(first, 16)


# ---- RPC v2 (HMAC-SHA1, SignatureVersion 1.0) --------------------------------------------


@pytest.mark.parametrize("vector", RPC_SIGNED, ids=[v["name"] for v in RPC_SIGNED])
def test_rpc_vector_step_by_step(vector: dict[str, Any]) -> None:
    inputs, mid, expected = vector["inputs"], vector["intermediate"], vector["expected"]
    params = inputs["query"] + inputs["form"]
    query = rpc_canonicalized_query_string(params)
    same("canonicalized query string", query, mid["canonicalized_query_string"])
    to_sign = rpc_string_to_sign(inputs["method"], query)
    same("string to sign", to_sign, mid["string_to_sign"])
    assert rpc_hmac_key(inputs["access_key_secret"]) == mid["hmac_key"]
    same("signature", rpc_signature(inputs["access_key_secret"], to_sign), expected["signature"])


@pytest.mark.parametrize("vector", RPC_SIGNED, ids=[v["name"] for v in RPC_SIGNED])
def test_rpc_builder_gives_the_sdk_query(vector: dict[str, Any]) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    given = dict(inputs["query"] + inputs["form"])
    own = {k: v for k, v in given.items() if k not in RPC_COMMON}
    credentials = Credentials(
        inputs["access_key_id"], inputs["access_key_secret"], inputs["security_token"]
    )
    built = rpc_query(
        inputs["method"],
        own,
        credentials,
        action=given["Action"],
        version=given["Version"],
        date=given["Timestamp"],
        nonce=given["SignatureNonce"],
        response_format=given["Format"],
    )
    assert built == {**given, "Signature": expected["signature"]}


def test_rpc_quirk_vector_is_signed_with_percent_20_not_plus() -> None:
    vector = next(v for v in RPC if "quirk" in v)
    params = vector["inputs"]["query"]
    built = rpc_signature(
        vector["inputs"]["access_key_secret"],
        rpc_string_to_sign("GET", rpc_canonicalized_query_string(params)),
    )
    assert built == vector["expected"]["signature"] != vector["quirk"]["signature"]


@pytest.mark.parametrize("vector", RPC_ANONYMOUS, ids=[v["name"] for v in RPC_ANONYMOUS])
def test_anonymous_rpc_query_carries_no_signature(vector: dict[str, Any]) -> None:
    inputs = vector["inputs"]
    given = dict(inputs["query"])
    own = {k: v for k, v in given.items() if k not in RPC_COMMON}
    built = anonymous_rpc_query(
        own,
        action=given["Action"],
        version=given["Version"],
        date=given["Timestamp"],
        response_format=given["Format"],
    )
    assert built == given
    assert not {"AccessKeyId", "SignatureMethod", "SignatureVersion", "Signature"} & set(built)
    assert "SignatureNonce" not in built
    with_nonce = anonymous_rpc_query(
        own, action="AssumeRoleWithOIDC", version="2015-04-01", date="d", nonce="n"
    )
    assert with_nonce["SignatureNonce"] == "n"
    assert "Signature" not in with_nonce


def test_rpc_builder_adds_the_security_token() -> None:
    built = rpc_query(
        "POST",
        {"Name": "x"},
        signing.StaticCredentials("STS.id", Secret("s"), Secret("tok+/=")),
        action="DescribeCustomEventCount",
        version="2019-01-01",
        date="2026-11-26T08:00:00Z",
        nonce="n",
    )
    assert built["SecurityToken"] == "tok+/="
    assert built["AccessKeyId"] == "STS.id"
    assert built["SignatureMethod"] == "HMAC-SHA1"
    assert built["SignatureVersion"] == "1.0"
    unsigned = {k: v for k, v in built.items() if k != "Signature"}
    expected = rpc_signature(
        "s", rpc_string_to_sign("POST", rpc_canonicalized_query_string(unsigned))
    )
    assert built["Signature"] == expected


def test_rpc_hmac_key_is_secret_and_ampersand() -> None:
    assert rpc_hmac_key(Secret("abc")) == "abc&"
    assert rpc_signature("abc", "x") == rpc_signature(Secret("abc"), "x")


# ---- percent-encoding (both signers share it) --------------------------------------------

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


def test_space_is_percent_20_and_star_is_percent_2a_and_tilde_kept() -> None:
    assert percent_encode(" ") == "%20"
    assert percent_encode("*") == "%2A"
    assert percent_encode("~") == "~"
    assert percent_encode("+") == "%2B"
    assert percent_encode("/") == "%2F"
    assert percent_encode("%") == "%25"
    assert percent_encode("") == ""


def test_unreserved_characters_are_kept_and_every_other_ascii_is_escaped() -> None:
    assert percent_encode(UNRESERVED) == UNRESERVED
    for code in range(128):
        char = chr(code)
        if char in UNRESERVED:
            continue
        assert percent_encode(char) == f"%{code:02X}", repr(char)


@pytest.mark.parametrize("text", ["数据", "告警 🔥", "🚀", "é", "a b*c~d/e", "100% a+b=c & d"])
def test_non_ascii_is_utf8_bytes_upper_hex_and_round_trips(text: str) -> None:
    encoded = percent_encode(text)
    expected = "".join(
        chr(b) if chr(b) in UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8")
    )
    assert encoded == expected
    assert unquote(encoded) == text
    assert set(encoded) <= set(UNRESERVED) | set("%0123456789ABCDEF")


def test_cjk_and_emoji_bytes() -> None:
    assert percent_encode("数据") == "%E6%95%B0%E6%8D%AE"
    assert percent_encode("🚀") == "%F0%9F%9A%80"


def test_path_keeps_slashes_and_escapes_the_rest() -> None:
    assert canonical_uri("/") == "/"
    assert canonical_uri("") == "/"
    assert canonical_uri("/a b/c*d~/数") == "/a%20b/c%2Ad~/%E6%95%B0"


TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_property_encoding_is_the_utf8_byte_rule_and_round_trips(text: str) -> None:
    encoded = percent_encode(text)
    assert encoded == "".join(
        chr(b) if chr(b) in UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8")
    )
    assert unquote(encoded) == text
    assert " " not in encoded
    assert "+" not in encoded
    assert "*" not in encoded


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=4))
def test_property_path_keeps_its_slashes(segments: list[str]) -> None:
    path = "/" + "/".join(s.replace("/", "") for s in segments)
    uri = canonical_uri(path)
    assert uri.count("/") == path.count("/")
    assert unquote(uri) == path


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9.]{0,12}", fullmatch=True), TEXT))
def test_property_a_verifier_rebuilds_the_signature_from_the_wire(query: dict[str, str]) -> None:
    # The client sends the query form-encoded ('+' for space); a server decodes it and
    # signs the decoded values again: both must agree, for ACS3 and RPC v2 alike.
    credentials = signing.StaticCredentials("id", "s3cret")
    args: dict[str, Any] = {"action": "A", "version": "V", "date": "D", "nonce": "N"}
    sent = acs3_headers("POST", "h", "/", query, {}, b"", credentials, **args)
    received = parse_qsl(urlencode(query), keep_blank_values=True)
    again = acs3_headers("POST", "h", "/", received, {}, b"", credentials, **args)
    assert again["authorization"] == sent["authorization"]
    rpc = rpc_query("GET", query, credentials, **args)
    wire = parse_qsl(urlencode(rpc), keep_blank_values=True)
    unsigned = [(k, v) for k, v in wire if k != "Signature"]
    to_sign = rpc_string_to_sign("GET", rpc_canonicalized_query_string(unsigned))
    assert rpc_signature("s3cret", to_sign) == rpc["Signature"]


# ---- secrets ---------------------------------------------------------------------------


def test_static_credentials_hold_the_secret_masked() -> None:
    credentials = signing.StaticCredentials("LTAI5tAbCdEfGh1234abcd", "s3cr3t-v", "TOK-v")
    text = repr(credentials)
    assert "s3cr3t-v" not in text
    assert "TOK-v" not in text
    assert isinstance(credentials.access_key_secret, Secret)
    assert isinstance(credentials.security_token, Secret)


def test_the_secret_is_never_in_the_headers_or_the_query() -> None:
    credentials = signing.StaticCredentials("id", "s3cr3t-value")
    headers = acs3_headers(
        "POST",
        "h",
        "/",
        {"a": "b"},
        {},
        b"",
        credentials,
        action="A",
        version="V",
        date="D",
        nonce="N",
    )
    query = rpc_query("POST", {"a": "b"}, credentials, action="A", version="V", date="D", nonce="N")
    assert not any("s3cr3t" in v for v in [*headers.values(), *query.values()])
