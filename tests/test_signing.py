"""The signer against the protocol's worked vectors and the peer bugs it must avoid.

Vectors are data files under tests/vectors/signing/, one case a file. A vector
either gives a sign string and its signature (checks `signature` alone), or a
request to sign: then the test checks the sign string the signer built (shown
in full on a mismatch), the headers it set, and an Authorization recomputed
here with hmac directly, independently of the package.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cms_magic import signing
from cms_magic.errors import ConfigError
from cms_magic.signing import (
    CmsAuth,
    canonical_headers,
    canonical_resource,
    content_md5,
    format_date,
    signature,
    string_to_sign,
)

VECTORS = sorted((Path(__file__).parent / "vectors" / "signing").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def reference_signature(secret: str, sign_string: str) -> str:
    return hmac.new(secret.encode(), sign_string.encode(), hashlib.sha1).hexdigest().upper()


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path: Path) -> None:
    case = load(path)
    if "request" not in case:
        assert signature(case["secret"], case["string_to_sign"]) == case["expected_signature"]
        return
    spec = case["request"]
    body = spec["body"].encode("utf-8")
    request = httpx.Request(spec["method"], spec["url"], content=body, headers=spec["headers"])
    auth = CmsAuth(case["access_key_id"], case["secret"], clock=lambda: 0.0)
    built = auth.sign(request)
    expected_string = case["string_to_sign"].replace("<md5>", hashlib.md5(body).hexdigest().upper())
    assert built == expected_string, (
        f"string to sign differs\n--- built ---\n{built}\n--- expected ---\n{expected_string}"
    )
    expected_auth = (
        f"{case['access_key_id']}:{reference_signature(case['secret'], expected_string)}"
    )
    assert request.headers["Authorization"] == expected_auth
    for name, value in case.get("expected_headers", {}).items():
        assert request.headers[name] == value, name
    assert request.headers["Content-Length"] == str(len(body))


def test_vectors_are_present() -> None:
    assert {p.stem for p in VECTORS} >= {"cpp-agent-metric-upload", "document-event-upload"}


def test_document_vector_authorization_is_the_published_one() -> None:
    case = load(Path(__file__).parent / "vectors" / "signing" / "document-event-upload.json")
    assert case["expected_headers"]["Authorization"].endswith(
        "BDD5DA3177AAAFA2A3643C1F52A5CF2DAE1E8CCD"
    )


def test_content_md5_is_upper_hex_not_base64() -> None:
    assert content_md5(b"") == "D41D8CD98F00B204E9800998ECF8427E"


def test_content_length_counts_utf8_bytes() -> None:
    body = '[{"content":"磁盘🔥","name":"告警"}]'.encode()
    request = httpx.Request("POST", "http://127.0.0.1/event/custom/upload", content=body)
    CmsAuth("id", "secret", source_ip="10.0.0.1").sign(request)
    assert int(request.headers["Content-Length"]) == len(body) > len(body.decode())


def test_header_names_lowercased_before_sorting() -> None:
    headers = [("X-Cms-Zeta", "1"), ("x-cms-alpha", "2"), ("X-ACS-b", "3"), ("Date", "x")]
    assert canonical_headers(headers) == "x-acs-b:3\nx-cms-alpha:2\nx-cms-zeta:1"
    # Sorting before lower-casing would have put the upper-case names first.
    assert sorted(n for n, _ in headers)[0] == "Date"


def test_header_values_trimmed_and_no_headers_is_empty() -> None:
    assert canonical_headers({"x-cms-ip": "  1.2.3.4\t"}) == "x-cms-ip:1.2.3.4"
    assert canonical_headers({"Content-Type": "application/json"}) == ""


def test_canonical_resource_sorts_query_pairs() -> None:
    assert canonical_resource("/p") == "/p"
    assert canonical_resource("/p", "b=2&a=1&c=") == "/p?a=1&b=2&c="
    assert canonical_resource("/p", {"z": "1", "a": "2"}) == "/p?a=2&z=1"


def test_string_to_sign_has_no_trailing_newline() -> None:
    text = string_to_sign("post", "MD5", "application/json", "DATE", "", "/r")
    assert text == "POST\nMD5\napplication/json\nDATE\n\n/r"


def test_sign_string_is_utf8_encoded_once() -> None:
    text = "POST\n\napplication/json\nD\nx-cms-zone:杭州\n/event/custom/upload"
    once = reference_signature("k", text)
    twice = (
        hmac.new(b"k", text.encode().decode("latin-1").encode(), hashlib.sha1).hexdigest().upper()
    )
    assert signature("k", text) == once != twice


def test_non_ascii_secret() -> None:
    assert signature("密钥🔑", "abc") == reference_signature("密钥🔑", "abc")


def test_date_comes_from_the_injected_clock_and_existing_date_is_kept() -> None:
    fresh = httpx.Request("POST", "http://127.0.0.1/event/custom/upload", content=b"[]")
    CmsAuth("id", "s", clock=lambda: 1508741471.0, source_ip="1.1.1.1").sign(fresh)
    assert fresh.headers["Date"] == "Mon, 23 Oct 2017 06:51:11 GMT" == format_date(1508741471)
    kept = httpx.Request(
        "POST",
        "http://127.0.0.1/event/custom/upload",
        content=b"[]",
        headers={"Date": "Tue, 01 Jan 2030 00:00:00 GMT", "x-cms-ip": "9.9.9.9"},
    )
    CmsAuth("id", "s", clock=lambda: 0.0, source_ip="1.1.1.1").sign(kept)
    assert kept.headers["Date"] == "Tue, 01 Jan 2030 00:00:00 GMT"
    assert kept.headers["x-cms-ip"] == "9.9.9.9"


def test_sts_headers_are_signed() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/event/custom/upload", content=b"[]")
    built = CmsAuth("id", "s", security_token="tok", clock=lambda: 0.0, source_ip="1.1.1.1").sign(
        request
    )
    assert request.headers["x-cms-security-token"] == "tok"
    assert request.headers["x-cms-caller-type"] == "token"
    assert "x-cms-caller-type:token\n" in built
    assert "x-cms-security-token:tok\n" in built


def test_user_agent_names_the_package() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/event/custom/upload", content=b"[]")
    CmsAuth("id", "s", source_ip="1.1.1.1").sign(request)
    assert request.headers["User-Agent"].startswith("cms_magic/")


def test_auth_flow_signs_each_attempt_with_a_fresh_date() -> None:
    now = [1_700_000_000.0]
    dates: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        dates.append(request.headers["Date"])
        now[0] += 61
        return httpx.Response(200, json={"code": "200", "msg": ""})

    auth = CmsAuth("id", "s", clock=lambda: now[0], source_ip="1.1.1.1")
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        client.post("http://127.0.0.1/event/custom/upload", content=b"[]")
        client.post("http://127.0.0.1/event/custom/upload", content=b"[]")
    assert len(set(dates)) == 2


def test_repr_hides_the_secret() -> None:
    auth = CmsAuth("LTAI5tAbCdEfGh1234abcd", "SECRET-zq8x-do-not-leak", security_token="TOK-zz")
    text = repr(auth)
    assert "SECRET-zq8x" not in text
    assert "TOK-zz" not in text
    assert "LTAI****abcd" in text


def test_source_ip_detection_reads_interfaces_without_traffic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signing.detect_source_ip.cache_clear()
    monkeypatch.setenv("CMS_MAGIC_SOURCE_IP", "203.0.113.7")
    assert signing.detect_source_ip() == "203.0.113.7"
    signing.detect_source_ip.cache_clear()
    monkeypatch.delenv("CMS_MAGIC_SOURCE_IP")

    def no_connect(*args: object, **kwargs: object) -> None:
        raise AssertionError("detect_source_ip must not open connections")

    monkeypatch.setattr("socket.socket.connect", no_connect)
    address = signing.detect_source_ip()
    signing.detect_source_ip.cache_clear()
    parts = address.split(".")
    assert len(parts) == 4
    assert all(0 <= int(p) <= 255 for p in parts)


def test_default_route_interface_parsing() -> None:
    from cms_magic._netif import default_route_interface

    table = (
        "Iface\tDestination\tGateway\tFlags\n"
        "docker0\t000011AC\t00000000\t0001\n"
        "eth0\t00000000\t0100A8C0\t0003\n"
    )
    assert default_route_interface(table) == "eth0"
    assert default_route_interface("Iface\tDestination\n") is None


SIGNER_CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "query": {"url": "http://127.0.0.1/event/custom/upload?b=2&a=1"},
    "own x-cms and x-acs headers": {
        "headers": {"X-Cms-Trace": " t-1 ", "x-acs-zone": "z", "X-Other": "o"}
    },
    "given date, ip and content type": {
        "headers": {
            "Date": "Tue, 01 Jan 2030 00:00:00 GMT",
            "X-CMS-IP": "9.9.9.9",
            "Content-Type": "application/json; charset=utf-8",
        }
    },
    "stale protocol headers": {
        "headers": {"Authorization": "old", "Content-MD5": "old", "x-cms-signature": "md5"}
    },
    "sts token": {"token": "tok-1", "headers": {"x-cms-extra": "e"}},
}


@pytest.mark.parametrize("case", SIGNER_CASES.values(), ids=list(SIGNER_CASES))
def test_a_verifier_rebuilds_exactly_what_was_signed(case: dict[str, Any]) -> None:
    # The emulator's view: from the headers as sent, rebuild the sign string with the pure
    # steps and check the Authorization. Covers the signer's cached and general paths alike.
    body = '[{"content":"中文","name":"n"}]'.encode()
    url = httpx.URL(case.get("url", "http://127.0.0.1/event/custom/upload"))
    auth = CmsAuth("id", "s3cret", security_token=case.get("token"), source_ip="1.1.1.1")
    auth.clock = lambda: 1_700_000_000.25
    for _ in range(2):  # the second time, every cache is warm
        request = httpx.Request("POST", url, content=body, headers=case.get("headers", {}))
        built = auth.sign(request)
        sent = request.headers.multi_items()
        rebuilt = signing.request_string_to_sign(
            "POST", url.path, url.query.decode(), [(k, v.strip()) for k, v in sent]
        )
        assert built == rebuilt
        assert request.headers["authorization"] == f"id:{reference_signature('s3cret', built)}"
        assert len([k for k, _ in sent if k == "authorization"]) == 1
        assert request.headers["content-md5"] == hashlib.md5(body).hexdigest().upper()
        assert request.headers["content-length"] == str(len(body))
    assert ("x-cms-trace:t-1" in built) == ("headers" in case and "X-Cms-Trace" in case["headers"])


def test_date_follows_the_clock_across_a_second_boundary() -> None:
    # The Date text is cached per second of the clock: it must still change with it.
    now = [0.0]
    auth = CmsAuth("id", "s", clock=lambda: now[0], source_ip="1.1.1.1")
    seen = []
    for moment in (1_700_000_000.1, 1_700_000_000.9, 1_700_000_001.0, 1_700_000_001.5, 5.0):
        now[0] = moment
        request = httpx.Request("POST", "http://127.0.0.1/event/custom/upload", content=b"[]")
        auth.sign(request)
        seen.append(request.headers["date"])
    first, second = format_date(1_700_000_000), format_date(1_700_000_001)
    assert seen == [first, first, second, second, format_date(5)]


def test_from_credentials_names_the_argument_it_cannot_use() -> None:
    with pytest.raises(ConfigError) as info:
        CmsAuth.from_credentials(("id", "secret"))
    assert info.value.option == "credentials"
    assert "must be a cms_magic.Credentials, got a tuple" in str(info.value)


def test_the_token_is_signed_alike_on_the_cached_and_the_general_path() -> None:
    auth = CmsAuth("LTAI5tAbCdEfGh1234abcd", "s3cr3t", security_token="TOK-1", clock=lambda: 0.0)
    cached = []
    for _ in range(2):  # the first request fills the cache, the second reads it
        request = httpx.Request("POST", "http://127.0.0.1/event/custom/upload", content=b"[]")
        cached.append(auth.sign(request))
    general = httpx.Request(
        "POST", "http://127.0.0.1/event/custom/upload", content=b"[]", headers={"x-acs-z": "1"}
    )
    built = auth.sign(general)
    assert cached[0] == cached[1]
    assert "x-cms-security-token:TOK-1\nx-cms-signature:hmac-sha1" in cached[0]
    assert "x-acs-z:1\n" in built
    assert built.replace("x-acs-z:1\n", "") == cached[0]


def test_the_signer_takes_secrets_and_holds_them_masked() -> None:
    from cms_magic.credentials import Secret

    plain = CmsAuth("id", "s3cr3t-value", security_token="TOK-value", clock=lambda: 0.0)
    wrapped = CmsAuth("id", Secret("s3cr3t-value"), security_token=Secret("TOK-value"))
    request = httpx.Request("POST", "http://127.0.0.1/x", content=b"[]")
    other = httpx.Request("POST", "http://127.0.0.1/x", content=b"[]")
    wrapped.clock = plain.clock
    assert plain.sign(request) == wrapped.sign(other)
    assert request.headers["authorization"] == other.headers["authorization"]
    for auth in (plain, wrapped):
        held = [repr(getattr(auth, name, None)) for name in CmsAuth.__slots__]
        assert not any("s3cr3t" in text or "TOK-value" in text for text in held), held
