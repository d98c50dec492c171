"""The chain of issue 14: every source, in order, each refreshing one fetched from the
emulator's handlers through an httpx.MockTransport (tests/credentials/_chain_support.py).

Every test passes its own ``env`` and ``home``: the real environment and home are never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cms_magic.credentials import Credentials
from cms_magic.errors import CredentialsError, NoCredentialsError

from ._chain_support import (
    ECS_ROLE,
    KEY_ID,
    META_URL,
    OTHER_ROLE,
    PROVIDER,
    ROLE,
    SECRET,
    TOKEN,
    URI,
    Cloud,
    error_of,
    ini_section,
    oidc_env,
    profile,
    refreshing,
    resolve,
    run,
    token_file,
    write_cli,
    write_ini,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cloud() -> Cloud:
    return Cloud()


# ---- the order -------------------------------------------------------------------------------


def test_the_order_of_the_chain(home: Path, tmp_path: Path, cloud: Cloud) -> None:
    """With every source configured, each step wins over the ones after it."""
    write_cli(home, profile("default", "RamRoleArn", ram_role_arn=ROLE))
    write_ini(home, ini_section("default", "ecs_ram_role", role_name=ECS_ROLE))
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        **oidc_env(tmp_path),
        "ALIBABA_CLOUD_CREDENTIALS_URI": URI,
        "ALIBABA_CLOUD_ECS_METADATA": ECS_ROLE,
    }
    assert (
        resolve(
            home, cloud, env, access_key_id="LTAIargument0000", access_key_secret="x" * 30
        ).source
        == "explicit"
    )
    assert resolve(home, cloud, env).source == "environment"
    del env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
    assert resolve(home, cloud, env).source.startswith("environment (OIDC " + ROLE)
    del env["ALIBABA_CLOUD_ROLE_ARN"]
    assert resolve(home, cloud, env).source == (
        "environment (ALIBABA_CLOUD_CREDENTIALS_URI http://127.0.0.1:9102/creds)"
    )
    del env["ALIBABA_CLOUD_CREDENTIALS_URI"]
    assert resolve(home, cloud, env).source == (
        f"aliyun CLI profile 'default' (RamRoleArn {ROLE}, ~/.aliyun/config.json)"
    )
    (home / ".aliyun" / "config.json").unlink()
    assert resolve(home, cloud, env).source == (
        f"credentials file profile 'default' (ecs_ram_role {ECS_ROLE!r}, "
        "~/.alibabacloud/credentials.ini)"
    )
    (home / ".alibabacloud" / "credentials.ini").unlink()
    assert resolve(home, cloud, env).source == (
        f"environment (ALIBABA_CLOUD_ECS_METADATA, ECS RAM role {ECS_ROLE!r})"
    )
    del env["ALIBABA_CLOUD_ECS_METADATA"]
    with pytest.raises(NoCredentialsError):
        resolve(home, cloud, env)
    assert cloud.seen == []  # resolving contacted nothing, all along


def test_an_explicit_profile_skips_every_environment_source(
    home: Path, tmp_path: Path, cloud: Cloud
) -> None:
    write_cli(home, profile("ci", "AK"), profile("other", "AK", access_key_id="LTAIother00000"))
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenvironment00",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        **oidc_env(tmp_path),
        "ALIBABA_CLOUD_CREDENTIALS_URI": URI,
        "ALIBABA_CLOUD_ECS_METADATA": ECS_ROLE,
    }
    found = resolve(home, cloud, env, profile="ci")
    assert isinstance(found, Credentials)
    assert found.source == "aliyun CLI profile 'ci' (~/.aliyun/config.json)"
    message = error_of(lambda: resolve(home, cloud, env, profile="nowhere"))
    assert "profile 'nowhere' (from the profile argument) was not found" in message


def test_a_partial_oidc_environment_is_not_a_source(home: Path, tmp_path: Path) -> None:
    env = oidc_env(tmp_path)
    del env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]
    with pytest.raises(NoCredentialsError) as info:
        resolve(home, env=env)
    assert "ALIBABA_CLOUD_OIDC_TOKEN_FILE not set" in info.value.describe()


# ---- the aliyun CLI's modes ------------------------------------------------------------------


def test_cli_ram_role_arn_assumes_the_role_with_the_profiles_key(home: Path, cloud: Cloud) -> None:
    write_cli(
        home,
        profile(
            "ci",
            "RamRoleArn",
            ram_role_arn=ROLE,
            ram_session_name="nightly",
            expired_seconds=900,
            external_id="ext-1",
        ),
        current="ci",
    )
    found = refreshing(resolve(home, cloud))
    assert found.source == f"aliyun CLI profile 'ci' (RamRoleArn {ROLE}, ~/.aliyun/config.json)"
    assert found.quota_key == ROLE
    assert found.fetches == 0
    triple = run(found.current())
    assert triple.access_key_id.startswith("STS.")
    assert triple.token is not None
    assert cloud.sts.calls["AssumeRole"] == 1  # the emulator verified the profile's signature
    query = cloud.seen[0].url.params
    assert query["RoleSessionName"] == "nightly"
    assert query["DurationSeconds"] == "900"
    assert query["ExternalId"] == "ext-1"
    assert query["AccessKeyId"] == KEY_ID


def test_cli_ram_role_arn_with_a_token_signs_with_it(home: Path, cloud: Cloud) -> None:
    write_cli(home, profile("default", "RamRoleArn", ram_role_arn=ROLE, sts_token=TOKEN))
    found = refreshing(resolve(home))
    assert found.source.startswith("aliyun CLI profile 'default' (RamRoleArn")
    seen: list[httpx.Request] = []

    def sts(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, json={"Code": "Refused", "Message": "test"})

    found = refreshing(resolve(home, env={}, client=httpx.MockTransport(sts)))
    with pytest.raises(CredentialsError, match="Refused"):
        run(found.current())
    assert seen[0].url.params["SecurityToken"] == TOKEN


def test_cli_ecs_ram_role_by_name_and_the_instances_role(home: Path, cloud: Cloud) -> None:
    write_cli(home, profile("a", "EcsRamRole", ram_role_name=ECS_ROLE), profile("b", "EcsRamRole"))
    named = refreshing(resolve(home, cloud, profile="a"))
    assert (
        named.source == f"aliyun CLI profile 'a' (EcsRamRole {ECS_ROLE!r}, ~/.aliyun/config.json)"
    )
    assert named.quota_key == f"ecs-ram-role:{ECS_ROLE}@{META_URL}"
    assert run(named.current()).token is not None
    instance = refreshing(resolve(home, cloud, profile="b"))
    assert "EcsRamRole, the instance's role" in instance.source
    assert run(instance.current()).token is not None
    assert cloud.metadata.calls == 2
    assert all(host == "127.0.0.1:9103" for host in cloud.hosts())


def test_cli_chainable_ram_role_arn_from_a_static_and_from_a_refreshing_profile(
    home: Path, cloud: Cloud
) -> None:
    write_cli(
        home,
        profile("base", "AK"),
        profile("ecs", "EcsRamRole", ram_role_name=ECS_ROLE),
        profile("hop", "ChainableRamRoleArn", source_profile="base", ram_role_arn=ROLE),
        profile("hop2", "ChainableRamRoleArn", source_profile="hop", ram_role_arn=OTHER_ROLE),
        profile("from-ecs", "ChainableRamRoleArn", source_profile="ecs", ram_role_arn=ROLE),
    )
    hop = refreshing(resolve(home, cloud, profile="hop"))
    assert hop.source == (
        f"aliyun CLI profile 'hop' (ChainableRamRoleArn {ROLE} from profile 'base', "
        "~/.aliyun/config.json)"
    )
    assert run(hop.current()).access_key_id.startswith("STS.")
    hop2 = refreshing(resolve(home, cloud, profile="hop2"))
    assert hop2.quota_key == OTHER_ROLE
    run(hop2.current())  # AssumeRole signed with a key minted by the first AssumeRole
    from_ecs = refreshing(resolve(home, cloud, profile="from-ecs"))
    run(from_ecs.current())
    assert cloud.sts.calls["AssumeRole"] == 4
    assert cloud.metadata.calls == 1


def test_cli_chainable_ram_role_arn_loops_and_missing_sources(home: Path) -> None:
    write_cli(
        home,
        profile("a", "ChainableRamRoleArn", source_profile="b", ram_role_arn=ROLE),
        profile("b", "ChainableRamRoleArn", source_profile="a", ram_role_arn=ROLE),
        profile("self", "ChainableRamRoleArn", source_profile="self", ram_role_arn=ROLE),
        profile("lost", "ChainableRamRoleArn", source_profile="nope", ram_role_arn=ROLE),
    )
    assert "source_profile makes a loop (a -> b -> a)" in error_of(
        lambda: resolve(home, profile="a")
    )
    assert "loop (self -> self)" in error_of(lambda: resolve(home, profile="self"))
    assert "source_profile 'nope' is not a profile" in error_of(
        lambda: resolve(home, profile="lost")
    )


def test_cli_oidc_reads_the_token_file_at_each_fetch(
    home: Path, tmp_path: Path, cloud: Cloud
) -> None:
    path = token_file(tmp_path)
    write_cli(
        home,
        profile(
            "k8s",
            "OIDC",
            ram_role_arn=ROLE,
            oidc_provider_arn=PROVIDER,
            oidc_token_file=str(path),
            ram_session_name="pod-1",
        ),
        current="k8s",
    )
    found = refreshing(resolve(home, cloud))
    assert found.source == f"aliyun CLI profile 'k8s' (OIDC {ROLE}, ~/.aliyun/config.json)"
    assert found.quota_key == ROLE
    run(found.current())
    path.write_text("eyJ-rotated-token", encoding="utf-8")
    run(found.force_refresh())
    tokens = [r.url.params["OIDCToken"] for r in cloud.seen]
    assert tokens[1] == "eyJ-rotated-token"
    assert cloud.seen[0].url.params["RoleSessionName"] == "pod-1"
    assert "Signature" not in cloud.seen[0].url.params  # anonymous


def test_cli_credentials_uri(home: Path, cloud: Cloud) -> None:
    write_cli(home, profile("svc", "CredentialsURI", credentials_uri=URI + "?token=abc"))
    found = refreshing(resolve(home, cloud, profile="svc"))
    assert found.source == (
        "aliyun CLI profile 'svc' (CredentialsURI http://127.0.0.1:9102/creds, "
        "~/.aliyun/config.json)"
    )
    assert found.quota_key == "uri:http://127.0.0.1:9102/creds"
    assert "abc" not in repr(found) + found.source + found.quota_key
    assert run(found.current()).token is not None
    assert cloud.uri.calls == 1


def test_cli_modes_ignore_case_like_the_cli(home: Path) -> None:
    item = profile("default", "RamRoleArn", ram_role_arn=ROLE) | {"mode": "ramrolearn"}
    write_cli(home, item)
    assert "(RamRoleArn " in resolve(home).source


@pytest.mark.parametrize(
    ("item", "missing"),
    [
        (profile("default", "RamRoleArn"), "ram_role_arn"),
        (profile("default", "RamRoleArn", ram_role_arn=ROLE, access_key_id=""), "access_key_id"),
        (
            {
                "name": "default",
                "mode": "RamRoleArn",
                "access_key_id": KEY_ID,
                "ram_role_arn": ROLE,
            },
            "access_key_secret",
        ),
        (profile("default", "ChainableRamRoleArn", ram_role_arn=ROLE), "source_profile"),
        (profile("default", "ChainableRamRoleArn", source_profile="x"), "ram_role_arn"),
        (
            profile("default", "OIDC", oidc_provider_arn=PROVIDER, oidc_token_file="/t"),
            "ram_role_arn",
        ),
        (profile("default", "OIDC", ram_role_arn=ROLE, oidc_token_file="/t"), "oidc_provider_arn"),
        (
            profile("default", "OIDC", ram_role_arn=ROLE, oidc_provider_arn=PROVIDER),
            "oidc_token_file",
        ),
        (profile("default", "CredentialsURI"), "credentials_uri"),
        (profile("default", "CredentialsURI", credentials_uri="  "), "credentials_uri"),
    ],
)
def test_cli_missing_fields_are_named(home: Path, item: dict[str, Any], missing: str) -> None:
    write_cli(home, item)
    message = error_of(lambda: resolve(home))
    assert f"(mode {item['mode']}) has no {missing}" in message
    assert "profile 'default' in " in message


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"expired_seconds": 60}, "'expired_seconds' must be a whole number of seconds >= 900"),
        ({"expired_seconds": "soon"}, "'expired_seconds' must be a whole number"),
        ({"ram_session_name": 7}, "'ram_session_name' must be a string, got int"),
        ({"enable_vpc": "maybe"}, "'enable_vpc' must be true or false"),
    ],
)
def test_cli_malformed_fields_are_named(home: Path, fields: dict[str, Any], problem: str) -> None:
    write_cli(home, profile("default", "RamRoleArn", ram_role_arn=ROLE, **fields))
    assert problem in error_of(lambda: resolve(home))


def test_an_unknown_mode_names_itself_and_the_modes_read(home: Path) -> None:
    write_cli(home, profile("default", "CloudSSO"))
    message = error_of(lambda: resolve(home))
    assert "uses mode 'CloudSSO', which cms_magic does not support" in message
    assert (
        "AK, StsToken, RamRoleArn, EcsRamRole, ChainableRamRoleArn, OIDC or CredentialsURI"
        in message
    )


# ---- credentials.ini's types -----------------------------------------------------------------


def test_ini_ram_role_arn(home: Path, cloud: Cloud) -> None:
    write_ini(
        home,
        ini_section(
            "default",
            "ram_role_arn",
            role_arn=ROLE,
            role_session_name="ini-session",
            policy='{"Statement":[]}',
        ),
    )
    found = refreshing(resolve(home, cloud))
    assert found.source == (
        f"credentials file profile 'default' (ram_role_arn {ROLE}, ~/.alibabacloud/credentials.ini)"
    )
    run(found.current())
    query = cloud.seen[0].url.params
    assert query["RoleSessionName"] == "ini-session"
    assert query["Policy"] == '{"Statement":[]}'
    assert query["AccessKeyId"] == KEY_ID


def test_ini_ecs_ram_role(home: Path, cloud: Cloud) -> None:
    write_ini(home, ini_section("default", "ecs_ram_role", role_name=ECS_ROLE))
    found = refreshing(resolve(home, cloud))
    assert found.quota_key == f"ecs-ram-role:{ECS_ROLE}@{META_URL}"
    run(found.current())
    assert cloud.metadata.calls == 1


@pytest.mark.parametrize("key", ["oidc_token_file_path", "oidc_token_file"])
def test_ini_oidc_role_arn(home: Path, tmp_path: Path, cloud: Cloud, key: str) -> None:
    fields = {"role_arn": ROLE, "oidc_provider_arn": PROVIDER, key: str(token_file(tmp_path))}
    write_ini(home, ini_section("default", "oidc_role_arn", **fields))
    found = refreshing(resolve(home, cloud))
    assert found.source.startswith(f"credentials file profile 'default' (oidc_role_arn {ROLE}")
    run(found.current())
    assert cloud.sts.calls["AssumeRoleWithOIDC"] == 1


@pytest.mark.parametrize(
    ("kind", "fields", "missing"),
    [
        ("ram_role_arn", {}, "role_arn"),
        (
            "oidc_role_arn",
            {"oidc_provider_arn": PROVIDER, "oidc_token_file_path": "/t"},
            "role_arn",
        ),
        ("oidc_role_arn", {"role_arn": ROLE, "oidc_token_file_path": "/t"}, "oidc_provider_arn"),
        (
            "oidc_role_arn",
            {"role_arn": ROLE, "oidc_provider_arn": PROVIDER},
            "oidc_token_file_path",
        ),
    ],
)
def test_ini_missing_fields_are_named(
    home: Path, kind: str, fields: dict[str, str], missing: str
) -> None:
    write_ini(home, ini_section("default", kind, **fields))
    assert f"(type {kind}) has no {missing}" in error_of(lambda: resolve(home))


def test_ini_ram_role_arn_without_its_key(home: Path) -> None:
    write_ini(
        home, f"[default]\ntype = ram_role_arn\nrole_arn = {ROLE}\naccess_key_id = {KEY_ID}\n"
    )
    assert "(type ram_role_arn) has no access_key_secret" in error_of(lambda: resolve(home))


# ---- the environment's refreshing sources ----------------------------------------------------


def test_environment_oidc(home: Path, tmp_path: Path, cloud: Cloud) -> None:
    env = oidc_env(tmp_path, ALIBABA_CLOUD_ROLE_SESSION_NAME="rrsa-pod")
    found = refreshing(resolve(home, cloud, env))
    assert found.quota_key == ROLE
    run(found.current())
    assert cloud.seen[0].url.params["RoleSessionName"] == "rrsa-pod"
    assert cloud.seen[0].url.params["OIDCProviderArn"] == PROVIDER


def test_environment_oidc_token_file_is_checked_when_resolving(home: Path, tmp_path: Path) -> None:
    env = oidc_env(tmp_path, ALIBABA_CLOUD_OIDC_TOKEN_FILE=str(tmp_path / "missing"))
    assert "the OIDC token file" in error_of(lambda: resolve(home, env=env))
    assert "does not exist" in error_of(lambda: resolve(home, env=env))
    empty = token_file(tmp_path, "  \n")
    env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"] = str(empty)
    assert "is empty" in error_of(lambda: resolve(home, env=env))


def test_environment_credentials_uri(home: Path, cloud: Cloud) -> None:
    found = refreshing(resolve(home, cloud, {"ALIBABA_CLOUD_CREDENTIALS_URI": URI}))
    assert found.quota_key == "uri:http://127.0.0.1:9102/creds"
    run(found.current())
    assert cloud.uri.calls == 1
    message = error_of(
        lambda: resolve(home, env={"ALIBABA_CLOUD_CREDENTIALS_URI": "ftp://u:pw-secret@h/x"})
    )
    assert "must be an http(s) URL" in message
    assert "pw-secret" not in message


def test_environment_ecs_metadata_names_the_role(home: Path, cloud: Cloud) -> None:
    found = refreshing(resolve(home, cloud, {"ALIBABA_CLOUD_ECS_METADATA": ECS_ROLE}))
    run(found.current())
    assert cloud.metadata.calls == 1
    assert cloud.metadata.token_calls == 1  # IMDSv2 first
