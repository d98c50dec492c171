"""The chain's settings (STS endpoint and region, metadata URL, IMDSv1), the ECS role only
when asked, resolving contacting nothing, and what whoami and the sender read (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cms_magic.credentials import Credentials, RefreshingCredentials, resolve_credentials
from cms_magic.errors import CredentialsError, NoCredentialsError

from ._chain_support import (
    ECS_ROLE,
    KEY_ID,
    META_URL,
    PROVIDER,
    ROLE,
    SECRET,
    TOKEN,
    URI,
    Cloud,
    error_of,
    oidc_env,
    profile,
    refreshing,
    resolve,
    run,
    token_file,
    write_cli,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cloud() -> Cloud:
    return Cloud()


# ---- ECS only when asked; resolving contacts nothing -----------------------------------------


def test_the_ecs_role_is_never_a_fallback(home: Path, cloud: Cloud) -> None:
    with pytest.raises(NoCredentialsError) as info:
        resolve(home, cloud)
    assert "ALIBABA_CLOUD_ECS_METADATA not set" in info.value.describe()
    assert "never tried on its own" in info.value.describe()
    assert cloud.seen == []


def test_the_default_metadata_address_only_when_asked(home: Path) -> None:
    """Built with the real ECS address and nothing injected: the network guard would fail
    the test if resolving touched it."""
    write_cli(home, profile("default", "EcsRamRole", ram_role_name=ECS_ROLE))
    found = refreshing(resolve_credentials(env={}, home=home))
    assert found.quota_key == f"ecs-ram-role:{ECS_ROLE}@http://100.100.100.200"
    assert found.fetches == 0


@pytest.mark.parametrize(
    "item",
    [
        profile("default", "RamRoleArn", ram_role_arn=ROLE),
        profile("default", "EcsRamRole"),
        profile(
            "default",
            "OIDC",
            ram_role_arn=ROLE,
            oidc_provider_arn=PROVIDER,
            oidc_token_file="TOKEN_FILE",
        ),
        profile("default", "CredentialsURI", credentials_uri="http://192.0.2.1/creds"),
        {
            "name": "default",
            "mode": "ChainableRamRoleArn",
            "source_profile": "ecs",
            "ram_role_arn": ROLE,
        },
    ],
)
def test_resolving_contacts_nothing(home: Path, tmp_path: Path, item: dict[str, Any]) -> None:
    """Real endpoints (sts.aliyuncs.com, 100.100.100.200, a non-loopback URI), no client
    injected: resolving and describing build sources and contact none of them."""
    if "oidc_token_file" in item:
        item = item | {"oidc_token_file": str(token_file(tmp_path))}
    write_cli(home, item, profile("ecs", "EcsRamRole"))
    found = refreshing(resolve_credentials(env={}, home=home))
    assert found.describe()["fetches"] == 0
    assert found.describe()["access_key_id"] is None
    assert found.masked_id is None


# ---- settings --------------------------------------------------------------------------------


def sts_host(home: Path, env: dict[str, str], **kw: Any) -> str:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(403, json={"Code": "Stop", "Message": "recorded"})

    found = refreshing(
        resolve_credentials(env=env, home=home, client=httpx.MockTransport(record), **kw)
    )
    with pytest.raises(CredentialsError):
        run(found.current())
    return f"{seen[0].url.scheme}://{seen[0].url.host}"


def test_the_sts_endpoint_and_region(home: Path) -> None:
    write_cli(home, profile("default", "RamRoleArn", ram_role_arn=ROLE))
    assert sts_host(home, {}) == "https://sts.aliyuncs.com"
    assert (
        sts_host(home, {"ALIBABA_CLOUD_REGION_ID": "cn-beijing"})
        == "https://sts.cn-beijing.aliyuncs.com"
    )
    assert sts_host(home, {"ALIBABA_CLOUD_REGION_ID": "cn-beijing"}, region="cn-shanghai") == (
        "https://sts.cn-shanghai.aliyuncs.com"
    )
    env = {"ALIBABA_CLOUD_STS_REGION": "cn-shenzhen", "ALIBABA_CLOUD_REGION_ID": "cn-beijing"}
    assert sts_host(home, env, region="cn-shanghai") == "https://sts.cn-shenzhen.aliyuncs.com"
    vpc = {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true", "ALIBABA_CLOUD_REGION_ID": "cn-beijing"}
    assert sts_host(home, vpc) == "https://sts-vpc.cn-beijing.aliyuncs.com"
    write_cli(
        home, profile("default", "RamRoleArn", ram_role_arn=ROLE, sts_region="ap-southeast-1")
    )
    assert sts_host(home, env) == "https://sts.ap-southeast-1.aliyuncs.com"
    write_cli(
        home, profile("default", "RamRoleArn", ram_role_arn=ROLE, sts_endpoint="sts.example.test")
    )
    assert sts_host(home, env) == "https://sts.example.test"
    override = {"CMS_MAGIC_STS_ENDPOINT": "http://127.0.0.1:9999"}
    assert sts_host(home, override) == "http://127.0.0.1"
    assert sts_host(home, override, sts_endpoint="http://localhost:1") == "http://localhost"


def test_the_metadata_url_and_imds_v1(home: Path) -> None:
    write_cli(home, profile("default", "EcsRamRole", ram_role_name=ECS_ROLE))
    env = {"CMS_MAGIC_METADATA_URL": META_URL}
    v2_only = Cloud(metadata_v2=False, metadata_allows_v1=True)
    found = refreshing(resolve_credentials(env=env, home=home, client=v2_only.transport))
    with pytest.raises(CredentialsError, match="IMDSv1 is not allowed"):
        run(found.current())
    for allowed in (
        {"env": env | {"CMS_MAGIC_METADATA_V1": "1"}},
        {"env": env, "allow_imds_v1": True},
    ):
        found = refreshing(resolve_credentials(home=home, client=v2_only.transport, **allowed))
        assert run(found.current()).token is not None
    assert "CMS_MAGIC_METADATA_V1: must be 1/true or 0/false" in error_of(
        lambda: resolve_credentials(env={"CMS_MAGIC_METADATA_V1": "perhaps"}, home=home)
    )
    # a setting no source reads is not an error: static keys resolve
    static = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
    keys = resolve_credentials(env=static | {"CMS_MAGIC_METADATA_V1": "perhaps"}, home=home)
    assert isinstance(keys, Credentials)
    assert "must be an http(s) URL" in error_of(
        lambda: resolve_credentials(env={"CMS_MAGIC_METADATA_URL": "100.100.100.200"}, home=home)
    )
    message = error_of(
        lambda: resolve_credentials(env={"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}, home=home)
    )
    assert "disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED" in message


# ---- what whoami and the sender read ---------------------------------------------------------


def test_describe_of_static_and_refreshing_credentials_have_the_same_keys(
    home: Path, cloud: Cloud
) -> None:
    static = Credentials(KEY_ID, SECRET, TOKEN, source="environment")
    assert static.describe() == {
        "source": "environment",
        "access_key_id": "LTAI****00ab",
        "security_token": True,
        "expires_at": None,
        "expires_in": None,
        "fetches": 0,
        "refresh_error": None,
    }
    assert static.quota_key == KEY_ID
    write_cli(home, profile("default", "RamRoleArn", ram_role_arn=ROLE))
    found = refreshing(resolve(home, cloud))
    assert set(found.describe()) == set(static.describe())
    first = run(found.current())
    shown = found.describe()
    assert shown["access_key_id"] == first.masked_id == found.masked_id
    assert shown["security_token"] is True
    assert shown["expires_at"] is not None
    assert shown["fetches"] == 1
    second = run(found.force_refresh())
    assert second.access_key_id != first.access_key_id
    assert found.quota_key == ROLE  # stable across refreshes


def test_refreshing_credentials_reject_an_empty_quota_key() -> None:
    async def fetch() -> Any:
        raise AssertionError("not called")

    with pytest.raises(CredentialsError, match="quota_key"):
        RefreshingCredentials(fetch, source="x", quota_key=" ")
    assert RefreshingCredentials(fetch, source="a source").quota_key == "a source"


def test_the_variables_that_configure_the_cloud_cover_every_environment_source(
    home: Path, tmp_path: Path
) -> None:
    """A skin counting CONFIGURING_VARIABLES sees every source the environment configures."""
    from cms_magic.credentials.specs import CONFIGURING_VARIABLES

    for env in (
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET},
        oidc_env(tmp_path),
        {"ALIBABA_CLOUD_CREDENTIALS_URI": URI},
        {"ALIBABA_CLOUD_ECS_METADATA": ECS_ROLE},
    ):
        resolve_credentials(env=env, home=home)  # a source
        assert set(env) & set(CONFIGURING_VARIABLES), env


def test_importing_the_credentials_package_loads_no_http_client() -> None:
    import subprocess
    import sys

    code = "import sys, cms_magic.credentials; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"
