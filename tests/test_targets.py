"""targets.py: the one place that turns what a user gave into a Target."""

from __future__ import annotations

from pathlib import Path

import pytest

from cms_magic import regions
from cms_magic.errors import TargetError, UnknownRegionError
from cms_magic.targets import parse_target, resolve_target

NOWHERE = Path("/nonexistent-home")


@pytest.mark.parametrize("word", ["local", "LOCAL", " Local "])
def test_local_in_any_case_is_the_embedded_emulator(word: str) -> None:
    target = parse_target(word)
    assert target.kind == "local"
    assert target.is_local
    assert not target.leaves_machine
    assert target.url is None  # not started until a send needs it


def test_local_starts_the_embedded_emulator_once_and_uses_its_demo_key() -> None:
    target = parse_target("local")
    url = target.resolve_url()
    assert regions.is_loopback_url(url)
    assert target.resolve_url() == url
    from cms_magic.emulator import DEMO_ACCESS_KEY_ID

    assert target.credentials().access_key_id == DEMO_ACCESS_KEY_ID
    # The running emulator's URL, given as a URL, is recognised as local too.
    assert parse_target(url).is_local


def test_a_region_id_typed_as_an_endpoint_is_that_region() -> None:
    target = parse_target("cn-hangzhou")
    assert (target.kind, target.region, target.internal) == ("region", "cn-hangzhou", False)
    assert target.url == regions.PUBLIC_ENDPOINT
    assert "region cn-hangzhou" in target.label
    internal = parse_target("cn-beijing", internal=True)
    assert internal.url == regions.get_region("cn-beijing").internal_endpoint
    assert "internal" in internal.label


def test_catalog_urls_are_named_as_such() -> None:
    assert parse_target(regions.PUBLIC_ENDPOINT).kind == "public"
    beijing = regions.get_region("cn-beijing").internal_endpoint
    target = parse_target(beijing)
    assert (target.kind, target.region, target.internal) == ("region", "cn-beijing", True)
    assert parse_target("public").url == regions.PUBLIC_ENDPOINT


def test_an_explicit_url_is_normalised_and_custom() -> None:
    target = parse_target("HTTP://127.0.0.1:8080/")
    assert (target.kind, target.url) == ("url", "http://127.0.0.1:8080")
    assert not target.leaves_machine
    remote = parse_target("https://cms.example.com")
    assert remote.leaves_machine
    assert remote.where == "a custom endpoint: events leave this machine"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("not a url", "is not a URL: an endpoint URL starts with http:// or https://"),
        ("127.0.0.1:8080", "is not a URL: an endpoint URL starts with http:// or https://"),
        ("ftp://127.0.0.1/x", "endpoint URL must start with http:// or https://"),
        ("https://", "endpoint URL needs a host, like https://host[:port]"),
        ("https://h/path", "endpoint URL must not have a path"),
    ],
)
def test_a_malformed_url_gets_a_message_about_urls(value: str, rule: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_target(value)
    assert caught.value.option == "endpoint"
    assert caught.value.rule.startswith(rule)
    assert "valid region ids" not in str(caught.value)


def test_a_near_miss_region_is_unknown_with_a_suggestion() -> None:
    with pytest.raises(UnknownRegionError) as caught:
        parse_target("cn-hangzou", option="region")
    assert caught.value.hint == "did you mean 'cn-hangzhou'?"
    assert str(caught.value).startswith("region: unknown region 'cn-hangzou'")


def test_internal_applies_only_to_regions() -> None:
    for value in ("local", "public", "http://127.0.0.1:1"):
        with pytest.raises(TargetError) as caught:
            parse_target(value, internal=True)
        assert caught.value.option == "internal"


def test_explicit_beats_configured_beats_environment() -> None:
    env = {"CMS_MAGIC_ENDPOINT": "http://127.0.0.1:9", "ALIBABA_CLOUD_REGION_ID": "cn-beijing"}
    assert resolve_target("local", environ=env).kind == "local"
    assert resolve_target(region="cn-shanghai", environ=env).region == "cn-shanghai"
    configured = resolve_target(configured_region=("cn-qingdao", "%config"), environ=env)
    assert (configured.region, configured.source) == ("cn-qingdao", "%config")
    from_env = resolve_target(environ=env)
    assert (from_env.url, from_env.source) == (
        "http://127.0.0.1:9",
        "environment (CMS_MAGIC_ENDPOINT)",
    )
    region_env = resolve_target(environ={"ALIBABA_CLOUD_REGION_ID": "cn-beijing"})
    assert region_env.region == "cn-beijing"


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(TargetError) as caught:
        resolve_target(environ={"CMS_MAGIC_ENDPOINT": "ftp://x"}, home=NOWHERE)
    assert caught.value.option == "CMS_MAGIC_ENDPOINT"


def test_nothing_configured_is_the_local_emulator() -> None:
    target = resolve_target(environ={}, home=NOWHERE)
    assert target.kind == "local"
    assert target.source.startswith("default")


def test_configured_cloud_credentials_are_never_silently_sent_to_the_emulator(
    tmp_path: Path,
) -> None:
    with pytest.raises(TargetError, match="ALIBABA_CLOUD_ACCESS_KEY_ID is set"):
        resolve_target(environ={"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIxxxxxxxx"}, home=NOWHERE)
    with pytest.raises(TargetError, match="credentials were given"):
        resolve_target(environ={}, home=NOWHERE, credentials_given=True)
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text("{}")
    with pytest.raises(TargetError, match=r"config\.json exists"):
        resolve_target(environ={}, home=tmp_path)


def test_endpoint_and_region_together_are_refused() -> None:
    with pytest.raises(TargetError, match="not both"):
        resolve_target("local", region="cn-hangzhou")


def test_profile_does_not_apply_to_the_local_emulator() -> None:
    with pytest.raises(Exception, match="profile='ops': does not apply to the local emulator"):
        parse_target("local").credentials(profile="ops")
