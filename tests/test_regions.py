"""The region catalog (regions.json) and the endpoint resolver."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from urllib.parse import urlsplit

import pytest

from cms_magic import regions as regions_module
from cms_magic.errors import ConfigError, UnknownRegionError
from cms_magic.regions import (
    PUBLIC_ENDPOINT,
    Region,
    endpoint,
    get_region,
    is_loopback_url,
    public_endpoint,
    region_ids,
    regions,
    regions_frame,
)

# The endpoint table of report-custom-events-by-http.md, in the document's order.
DOCUMENT_TABLE = [
    ("China (Hangzhou)", "cn-hangzhou", "http://metrichub-cn-hangzhou.aliyun.com"),
    ("China (Zhangjiakou)", "cn-zhangjiakou", "http://metrichub-cn-zhangjiakou.aliyun.com"),
    ("China (Shanghai)", "cn-shanghai", "http://metrichub-cn-shanghai.aliyun.com"),
    ("China (Beijing)", "cn-beijing", "http://metrichub-cn-beijing.aliyun.com"),
    ("China (Qingdao)", "cn-qingdao", "http://metrichub-cn-qingdao.aliyun.com"),
    ("China (Shenzhen)", "cn-shenzhen", "http://metrichub-cn-shenzhen.aliyun.com"),
    ("China (Hong Kong)", "cn-hongkong", "http://metrichub-cn-hongkong.aliyun.com"),
    ("China (Hohhot)", "cn-huhehaote", "http://metrichub-cn-huhehaote.aliyun.com"),
    ("UAE (Dubai)", "me-east-1", "http://metrichub-me-east-1.aliyun.com"),
    ("US (Silicon Valley)", "us-west-1", "http://metrichub-us-west-1.aliyun.com"),
    ("US (Virginia)", "us-east-1", "http://metrichub-us-east-1.aliyun.com"),
    ("Japan (Tokyo)", "ap-northeast-1", "http://metrichub-ap-northeast-1.aliyun.com"),
    ("Germany (Frankfurt)", "eu-central-1", "http://metrichub-eu-central-1.aliyun.com"),
    ("Australia (Sydney)", "ap-southeast-2", "http://metrichub-ap-southeast-2.aliyun.com"),
    ("Singapore", "ap-southeast-1", "http://metrichub-ap-southeast-1.aliyun.com"),
    ("Malaysia (Kuala Lumpur)", "ap-southeast-3", "http://metrichub-ap-southeast-3.aliyun.com"),
    ("India (Mumbai)", "ap-south-1", "http://metrichub-ap-south-1.aliyuncs.com"),
]
PUBLIC = "https://metrichub-cms-cn-hangzhou.aliyuncs.com"


# --- the catalog -----------------------------------------------------------------------


def test_catalog_matches_the_document_exactly() -> None:
    got = [(r.name, r.id, r.internal_endpoint) for r in regions()]
    assert got == DOCUMENT_TABLE
    assert len(got) == 17


def test_public_endpoint_comes_from_the_json() -> None:
    raw = json.loads(
        resources.files("cms_magic").joinpath("regions.json").read_text(encoding="utf-8")
    )
    assert raw["public_endpoint"] == PUBLIC
    assert PUBLIC_ENDPOINT == PUBLIC
    assert public_endpoint() == PUBLIC
    assert len(raw["regions"]) == 17
    assert set(raw) == {"public_endpoint", "regions"}
    assert all(set(r) == {"id", "name", "internal_endpoint"} for r in raw["regions"])


def test_ap_south_1_is_the_only_aliyuncs_internal_endpoint() -> None:
    assert get_region("ap-south-1").internal_endpoint == "http://metrichub-ap-south-1.aliyuncs.com"
    others = [r for r in regions() if r.id != "ap-south-1"]
    assert len(others) == 16
    assert all(str(urlsplit(r.internal_endpoint).hostname).endswith(".aliyun.com") for r in others)


def test_ids_unique_and_each_internal_endpoint_is_http_on_its_own_host() -> None:
    ids = [r.id for r in regions()]
    assert len(ids) == len(set(ids))
    assert ids == region_ids()
    for r in regions():
        parts = urlsplit(r.internal_endpoint)
        assert parts.scheme == "http", r
        assert parts.hostname is not None
        assert r.id in parts.hostname, r
        assert parts.hostname == f"metrichub-{r.id}.{parts.hostname.split('.', 1)[1]}"
        assert parts.path == ""


def test_every_region_shares_the_public_endpoint() -> None:
    assert {r.public_endpoint for r in regions()} == {PUBLIC}


def test_regions_returns_a_new_list_each_call() -> None:
    first = regions()
    first.clear()
    assert len(regions()) == 17
    assert regions() is not regions()


def test_region_is_frozen_and_slotted() -> None:
    r = get_region("cn-hangzhou")
    assert isinstance(r, Region)
    with pytest.raises(AttributeError):
        r.id = "x"  # type: ignore[misc]
    assert not hasattr(r, "__dict__")


def test_the_module_is_callable_as_a_shorthand_for_regions() -> None:
    assert regions_module() == regions()  # type: ignore[operator]


# --- get_region ------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["cn-beijing", "CN-Beijing", "  cn-beijing\n", "CN-BEIJING"])
def test_get_region_ignores_case_and_whitespace(given: str) -> None:
    assert get_region(given).id == "cn-beijing"


@pytest.mark.parametrize("given", ["cn-nowhere", "", "local", "cn_hangzhou", "hangzhou"])
def test_unknown_region_lists_every_valid_id(given: str) -> None:
    with pytest.raises(UnknownRegionError) as info:
        get_region(given)
    err = info.value
    assert isinstance(err, ConfigError)
    assert isinstance(err, ValueError)
    assert err.region == given
    assert err.valid == [row[1] for row in DOCUMENT_TABLE]
    message = str(err)
    assert repr(given) in message
    for _, region_id, _ in DOCUMENT_TABLE:
        assert region_id in message


def test_unknown_region_message_shows_the_value_as_given() -> None:
    with pytest.raises(UnknownRegionError, match=r"'  CN-Nowhere '"):
        get_region("  CN-Nowhere ")


# --- endpoint ----------------------------------------------------------------------------


def test_endpoint_none_is_public() -> None:
    assert endpoint() == PUBLIC
    assert endpoint(None) == PUBLIC


@pytest.mark.parametrize(("_name", "region_id", "internal_url"), DOCUMENT_TABLE)
def test_endpoint_for_each_region(_name: str, region_id: str, internal_url: str) -> None:
    assert endpoint(region_id, internal=True) == internal_url
    assert endpoint(region_id) == PUBLIC
    assert endpoint(region_id.upper(), internal=True) == internal_url


def test_endpoint_unknown_region_and_local_are_errors() -> None:
    with pytest.raises(UnknownRegionError):
        endpoint("local")
    with pytest.raises(UnknownRegionError):
        endpoint("mars-1", internal=True)


def test_internal_without_a_region_is_an_error() -> None:
    with pytest.raises(ConfigError, match="internal=True needs a region id"):
        endpoint(None, internal=True)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://metrichub-cms-cn-hangzhou.aliyuncs.com", PUBLIC),
        ("https://metrichub-cms-cn-hangzhou.aliyuncs.com/", PUBLIC),
        ("HTTPS://Metrichub-CMS-cn-hangzhou.aliyuncs.com/", PUBLIC),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("  http://localhost:9000/  ", "http://localhost:9000"),
        ("https://example.com:443", "https://example.com:443"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://[::1]", "http://[::1]"),
    ],
)
def test_explicit_url_is_normalised(given: str, expected: str) -> None:
    assert endpoint(given) == expected


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ("http://", "needs a host"),
        ("https://:8080", "needs a host"),
        ("http://host/path", "must not have a path"),
        ("http://host/event/custom/upload", "must not have a path"),
        ("http://host//", "must not have a path"),
        ("http://host?x=1", "must not have a query"),
        ("http://host/?", "must not have a query"),
        ("http://host#frag", "must not have a fragment"),
        ("http://host:99999", "not a valid URL"),
        ("http://host:port", "not a valid URL"),
        ("http://[::1", "not a valid URL"),
        ("http://ho st", "whitespace"),
        ("http://host\r\nX-Evil: 1", "whitespace or control"),
    ],
)
def test_bad_explicit_url_names_the_rule_and_the_value(given: str, rule: str) -> None:
    with pytest.raises(ConfigError) as info:
        endpoint(given)
    message = str(info.value)
    assert rule in message
    assert repr(given) in message


@pytest.mark.parametrize("url", ["http://user@host", "http://@host:80", "http://a:b@host/x?y#z"])
def test_user_info_is_rejected_and_redacted(url: str) -> None:
    with pytest.raises(ConfigError, match="must not contain user info") as info:
        endpoint(url)
    assert "***@host" in str(info.value)


def test_password_in_a_url_never_reaches_the_message() -> None:
    url = "https://admin:SECRET-zq8xPw@metrichub.example.com/"
    with pytest.raises(ConfigError) as info:
        endpoint(url)
    assert "SECRET-zq8x" not in str(info.value)
    assert "admin" not in str(info.value)
    assert "must not contain user info" in str(info.value)
    assert "'https://***@metrichub.example.com/'" in str(info.value)
    with pytest.raises(ConfigError) as info2:
        endpoint(url, internal=True)
    assert "SECRET-zq8x" not in str(info2.value)


def test_internal_with_an_explicit_url_is_an_error() -> None:
    with pytest.raises(ConfigError, match="internal=True applies to a region id"):
        endpoint("http://127.0.0.1:8080", internal=True)


@pytest.mark.parametrize("given", ["ftp://host", "host:8080", "metrichub-cn-hangzhou.aliyun.com"])
def test_other_schemes_and_bare_hosts_are_not_urls(given: str) -> None:
    # without http:// or https:// the value is taken as a region id
    with pytest.raises(UnknownRegionError):
        endpoint(given)


# --- is_loopback_url -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.0.0.1",
        "http://127.255.255.254:1/",
        "http://127.1.2.3",
        "http://localhost",
        "http://LOCALHOST:5000",
        "https://localhost./",
        "http://[::1]:8080",
        "http://[::1]",
    ],
)
def test_loopback_urls(url: str) -> None:
    assert is_loopback_url(url)


@pytest.mark.parametrize(
    "url",
    [
        PUBLIC,
        "http://metrichub-cn-hangzhou.aliyun.com",
        "http://128.0.0.1",
        "http://10.0.0.1",
        "http://0.0.0.0:8080",
        "http://[::2]",
        "http://localhost.example.com",
        "http://mylocalhost",
        "http://127.0.0.1.nip.io",
        "localhost:8080",
        "",
        "http://[::1",
    ],
)
def test_not_loopback_urls(url: str) -> None:
    assert not is_loopback_url(url)


def test_resolved_endpoints_classify() -> None:
    assert not is_loopback_url(endpoint())
    assert not any(is_loopback_url(endpoint(r.id, internal=True)) for r in regions())
    assert is_loopback_url(endpoint("http://127.0.0.1:8080/"))


# --- the frame and the import cost -------------------------------------------------------


def test_regions_frame() -> None:
    frame = regions_frame()
    assert list(frame.columns) == ["id", "name", "internal_endpoint", "public_endpoint"]
    assert len(frame) == 17
    assert frame["id"].tolist() == [row[1] for row in DOCUMENT_TABLE]
    assert frame["name"].tolist() == [row[0] for row in DOCUMENT_TABLE]
    assert frame["internal_endpoint"].tolist() == [row[2] for row in DOCUMENT_TABLE]
    assert set(frame["public_endpoint"]) == {PUBLIC}


def test_importing_regions_does_not_import_pandas() -> None:
    code = (
        "import sys\n"
        "import cms_magic.regions as r\n"
        "assert len(r.regions()) == 17\n"
        "r.endpoint('cn-beijing', internal=True)\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False", out.stderr
