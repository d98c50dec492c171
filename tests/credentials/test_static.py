"""Credentials, their masking and their resolution from arguments, environment and files.

Every test passes its own ``env`` and ``home``: nothing reads the real
environment or home directory.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cms_magic.credentials.static import Credentials, mask, resolve_credentials
from cms_magic.errors import CmsError, CredentialsError

KEY_ID = "LTAI5tAbCdEfGh1234abcd"
SECRET = "SECRET-zq8xW3vN7pK2mR9t"
TOKEN = "TOKEN-zq8xSTS0b1c2d3e4f5"
# Distinctive fragments that must never leak into any text we produce.
LEAKS = ("zq8x", "SECRET-", "TOKEN-")

ENV_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"


def assert_no_secret(text: str) -> None:
    for fragment in LEAKS:
        assert fragment not in text, text


def static(found: object) -> Credentials:
    """A static source's result (resolve_credentials may also give a RefreshingCredentials)."""
    assert isinstance(found, Credentials), found
    return found


def write_cli(home: Path, data: Any) -> Path:
    path = home / ".aliyun" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def cli_profile(name: str, mode: str = "AK", **extra: str) -> dict[str, str]:
    profile = {"name": name, "mode": mode, "region_id": "cn-hangzhou"}
    if mode in ("AK", "StsToken"):
        profile |= {"access_key_id": f"{name}-{KEY_ID}", "access_key_secret": SECRET}
    if mode == "StsToken":
        profile["sts_token"] = TOKEN
    profile |= extra
    return profile


def write_ini(home: Path, text: str) -> Path:
    path = home / ".alibabacloud" / "credentials.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ini_section(name: str, kind: str = "access_key", **extra: str) -> str:
    lines = [f"[{name}]", f"type = {kind}", f"access_key_id = {name}-ini-{KEY_ID}"]
    lines.append(f"access_key_secret = {SECRET}")
    if kind == "sts":
        lines.append(f"security_token = {TOKEN}")
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def resolve(home: Path) -> Callable[..., Credentials]:
    """resolve_credentials with an empty environment and the temporary home by default."""

    def call(*args: Any, **kwargs: Any) -> Credentials:
        kwargs.setdefault("env", {})
        kwargs.setdefault("home", home)
        return static(resolve_credentials(*args, **kwargs))

    return call


def raises_credentials_error(func: Callable[[], object]) -> str:
    with pytest.raises(CredentialsError) as info:
        func()
    message = str(info.value)
    assert_no_secret(message)
    assert info.value.__cause__ is None or "zq8x" not in str(info.value.__cause__)
    return message


# --- mask --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("LTAI5tAbCdEfGh1234abcd", "LTAI****abcd"),
        ("abcdefghijkl", "abcd****ijkl"),
        ("abcdefghijk", "****jk"),
        ("abcdef", "****ef"),
        ("abcde", "****"),
        ("a", "****"),
        ("", "****"),
    ],
)
def test_mask(value: str, expected: str) -> None:
    assert mask(value) == expected


# --- the Credentials type --------------------------------------------------------------


def test_repr_and_str_show_only_masked_id_token_presence_and_source() -> None:
    creds = Credentials(KEY_ID, SECRET, TOKEN, source="environment")
    expected = (
        "Credentials(access_key_id='LTAI****abcd', security_token=<set>, source='environment')"
    )
    assert repr(creds) == expected
    assert str(creds) == expected
    assert f"{creds}" == expected
    assert f"{creds!r}" == expected
    assert_no_secret(repr([creds, {"c": creds}]))
    assert KEY_ID not in repr(creds)


def test_repr_without_token() -> None:
    creds = Credentials(KEY_ID, SECRET)
    assert repr(creds) == (
        "Credentials(access_key_id='LTAI****abcd', security_token=None, source='explicit')"
    )
    assert creds.masked_id == "LTAI****abcd"
    assert creds.security_token is None
    assert creds.source == "explicit"


def test_values_are_kept_stripped_and_empty_token_is_none() -> None:
    creds = Credentials(f" {KEY_ID}\n", f"{SECRET} ", "  ")
    assert creds.access_key_id == KEY_ID
    assert creds.access_key_secret == SECRET
    assert creds.security_token is None


def test_credentials_are_frozen_and_picklable() -> None:
    creds = Credentials(KEY_ID, SECRET, TOKEN)
    with pytest.raises(AttributeError):
        creds.access_key_secret = "x"  # type: ignore[misc,assignment]
    assert pickle.loads(pickle.dumps(creds)) == creds  # noqa: S301 - our own bytes


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"access_key_id": "", "access_key_secret": SECRET}, "access_key_id"),
        ({"access_key_id": "   ", "access_key_secret": SECRET}, "access_key_id"),
        ({"access_key_id": KEY_ID, "access_key_secret": ""}, "access_key_secret"),
        ({"access_key_id": KEY_ID, "access_key_secret": " \t"}, "access_key_secret"),
        ({"access_key_id": None, "access_key_secret": SECRET}, "access_key_id"),
        ({"access_key_id": KEY_ID, "access_key_secret": 12345}, "access_key_secret"),
        ({"access_key_id": KEY_ID, "access_key_secret": SECRET, "security_token": 1}, "token"),
        ({"access_key_id": "LTAI 5t", "access_key_secret": SECRET}, "access_key_id"),
        ({"access_key_id": "LTAI:5t", "access_key_secret": SECRET}, "access_key_id"),
        ({"access_key_id": KEY_ID, "access_key_secret": SECRET + "\nX: y"}, "access_key_secret"),
    ],
)
def test_validation_names_the_field_never_the_secret(kwargs: dict[str, Any], field: str) -> None:
    message = raises_credentials_error(lambda: Credentials(**kwargs))
    assert field in message


def test_credentials_error_is_a_cms_error() -> None:
    assert issubclass(CredentialsError, CmsError)


# --- 1. explicit arguments ---------------------------------------------------------------


def test_explicit_arguments(resolve: Callable[..., Credentials]) -> None:
    creds = resolve(KEY_ID, SECRET)
    assert (creds.access_key_id, creds.access_key_secret.reveal()) == (KEY_ID, SECRET)
    assert creds.security_token is None
    assert creds.source == "explicit"
    sts = resolve(access_key_id=KEY_ID, access_key_secret=SECRET, security_token=TOKEN)
    assert sts.security_token == TOKEN


def test_explicit_arguments_win_over_everything(home: Path) -> None:
    write_cli(home, {"current": "default", "profiles": [cli_profile("default")]})
    write_ini(home, ini_section("default"))
    env = {ENV_ID: "ENVID-1234567890", ENV_SECRET: "env-secret"}
    creds = static(resolve_credentials(KEY_ID, SECRET, env=env, home=home, profile="default"))
    assert creds.access_key_id == KEY_ID
    assert creds.source == "explicit"


@pytest.mark.parametrize(
    ("kwargs", "missing"),
    [
        ({"access_key_id": KEY_ID}, "without access_key_secret"),
        ({"access_key_secret": SECRET}, "without access_key_id"),
        ({"access_key_secret": SECRET, "security_token": TOKEN}, "without access_key_id"),
        ({"security_token": TOKEN}, "without access_key_id and access_key_secret"),
    ],
)
def test_half_an_explicit_pair_is_an_error(
    resolve: Callable[..., Credentials], kwargs: dict[str, str], missing: str
) -> None:
    assert missing in raises_credentials_error(lambda: resolve(**kwargs))


def test_explicit_half_pair_is_an_error_even_when_env_has_keys(home: Path) -> None:
    env = {ENV_ID: KEY_ID, ENV_SECRET: SECRET}
    with pytest.raises(CredentialsError, match="without access_key_secret"):
        resolve_credentials(access_key_id=KEY_ID, env=env, home=home)


# --- 2. environment ------------------------------------------------------------------------


def test_environment(resolve: Callable[..., Credentials]) -> None:
    creds = resolve(env={ENV_ID: KEY_ID, ENV_SECRET: SECRET})
    assert (creds.access_key_id, creds.access_key_secret.reveal()) == (KEY_ID, SECRET)
    assert creds.security_token is None
    assert creds.source == "environment"


def test_environment_sts(resolve: Callable[..., Credentials]) -> None:
    creds = resolve(env={ENV_ID: KEY_ID, ENV_SECRET: SECRET, ENV_TOKEN: TOKEN})
    assert creds.security_token == TOKEN
    assert repr(creds).endswith("security_token=<set>, source='environment')")


def test_environment_empty_token_is_no_token(resolve: Callable[..., Credentials]) -> None:
    creds = resolve(env={ENV_ID: KEY_ID, ENV_SECRET: SECRET, ENV_TOKEN: ""})
    assert creds.security_token is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({ENV_ID: KEY_ID}, f"{ENV_ID} is set but {ENV_SECRET} is not"),
        ({ENV_ID: KEY_ID, ENV_SECRET: "  "}, f"{ENV_ID} is set but {ENV_SECRET} is not"),
        ({ENV_SECRET: SECRET}, f"{ENV_SECRET} is set but {ENV_ID} is not"),
        ({ENV_SECRET: SECRET, ENV_TOKEN: TOKEN}, f"{ENV_SECRET} is set but {ENV_ID} is not"),
    ],
)
def test_half_an_environment_pair_is_an_error(
    resolve: Callable[..., Credentials], env: dict[str, str], message: str
) -> None:
    assert message in raises_credentials_error(lambda: resolve(env=env))


def test_environment_wins_over_files(home: Path) -> None:
    write_cli(home, {"current": "default", "profiles": [cli_profile("default")]})
    write_ini(home, ini_section("default"))
    creds = resolve_credentials(env={ENV_ID: KEY_ID, ENV_SECRET: SECRET}, home=home)
    assert creds.source == "environment"


def test_environment_wins_over_profile_chosen_by_environment(home: Path) -> None:
    write_cli(home, {"profiles": [cli_profile("prod")]})
    env = {ENV_ID: KEY_ID, ENV_SECRET: SECRET, "ALIBABA_CLOUD_PROFILE": "prod"}
    assert resolve_credentials(env=env, home=home).source == "environment"


def test_profile_argument_skips_environment_keys(home: Path) -> None:
    write_cli(home, {"profiles": [cli_profile("prod")]})
    env = {ENV_ID: KEY_ID, ENV_SECRET: SECRET}
    creds = static(resolve_credentials(profile="prod", env=env, home=home))
    assert creds.access_key_id == f"prod-{KEY_ID}"
    assert creds.source == "aliyun CLI profile 'prod' (~/.aliyun/config.json)"


# --- 3. aliyun CLI config --------------------------------------------------------------------


def test_cli_current_profile(resolve: Callable[..., Credentials], home: Path) -> None:
    write_cli(home, {"current": "work", "profiles": [cli_profile("default"), cli_profile("work")]})
    creds = resolve()
    assert creds.access_key_id == f"work-{KEY_ID}"
    assert creds.access_key_secret == SECRET
    assert creds.security_token is None
    assert creds.source == "aliyun CLI profile 'work' (~/.aliyun/config.json)"


def test_cli_default_profile_without_current(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    write_cli(home, {"profiles": [cli_profile("other"), cli_profile("default")]})
    assert resolve().access_key_id == f"default-{KEY_ID}"


def test_cli_sts_token(resolve: Callable[..., Credentials], home: Path) -> None:
    write_cli(home, {"current": "sts", "profiles": [cli_profile("sts", "StsToken")]})
    creds = resolve()
    assert creds.security_token == TOKEN
    assert creds.source == "aliyun CLI profile 'sts' (~/.aliyun/config.json)"


def test_cli_profile_by_argument_and_by_environment(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    profiles = [cli_profile("default"), cli_profile("a"), cli_profile("b")]
    write_cli(home, {"current": "default", "profiles": profiles})
    assert resolve(profile="a").access_key_id == f"a-{KEY_ID}"
    assert resolve(env={"ALIBABA_CLOUD_PROFILE": "b"}).access_key_id == f"b-{KEY_ID}"
    # the argument wins over the environment variable, which wins over `current`
    assert resolve(profile="a", env={"ALIBABA_CLOUD_PROFILE": "b"}).access_key_id == f"a-{KEY_ID}"
    assert resolve().access_key_id == f"default-{KEY_ID}"


# RamRoleArn, EcsRamRole, ChainableRamRoleArn, OIDC and CredentialsURI are read since
# issue 14 (tests/credentials/test_chain.py); the modes below are still refused.
@pytest.mark.parametrize("mode", ["RsaKeyPair", "CloudSSO", "External", "OAuth", "Bogus"])
def test_cli_unsupported_mode(resolve: Callable[..., Credentials], home: Path, mode: str) -> None:
    write_cli(home, {"current": "r", "profiles": [cli_profile("r", mode, ram_role_arn="acs:x")]})
    message = raises_credentials_error(resolve)
    assert f"mode {mode!r}" in message
    assert "not support" in message
    assert "AK, StsToken, RamRoleArn" in message
    assert ENV_ID in message


@pytest.mark.parametrize(
    ("profile", "missing"),
    [
        ({"name": "default", "mode": "AK", "access_key_secret": SECRET}, "access_key_id"),
        ({"name": "default", "mode": "AK", "access_key_id": KEY_ID}, "access_key_secret"),
        (
            {
                "name": "default",
                "mode": "StsToken",
                "access_key_id": KEY_ID,
                "access_key_secret": SECRET,
            },
            "sts_token",
        ),
        (
            {"name": "default", "mode": "AK", "access_key_id": "", "access_key_secret": SECRET},
            "access_key_id",
        ),
    ],
)
def test_cli_profile_missing_a_key(
    resolve: Callable[..., Credentials], home: Path, profile: dict[str, str], missing: str
) -> None:
    write_cli(home, {"current": "default", "profiles": [profile]})
    message = raises_credentials_error(resolve)
    assert f"has no {missing}" in message
    assert "'default'" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"current": "default", "profiles": [' + f'"{SECRET}"', "not valid JSON"),
        (f'{{"access_key_secret": "{SECRET}",}}', "not valid JSON"),
        (f'["{SECRET}"]', "must hold a JSON object"),
        (f'{{"profiles": {{"name": "{SECRET}"}}}}', "'profiles' must be a list"),
        (f'{{"profiles": ["{SECRET}"]}}', "profiles[0] must be an object"),
    ],
)
def test_cli_malformed(
    resolve: Callable[..., Credentials], home: Path, text: str, problem: str
) -> None:
    path = write_cli(home, text)
    message = raises_credentials_error(resolve)
    assert str(path) in message
    assert problem in message


def test_cli_not_utf8(resolve: Callable[..., Credentials], home: Path) -> None:
    path = home / ".aliyun" / "config.json"
    path.parent.mkdir()
    path.write_bytes(b'{"x": "\xff\xfe"}')
    message = raises_credentials_error(resolve)
    assert "not valid UTF-8" in message
    assert str(path) in message


def test_cli_unreadable(resolve: Callable[..., Credentials], home: Path) -> None:
    (home / ".aliyun" / "config.json").mkdir(parents=True)  # a directory where a file should be
    message = raises_credentials_error(resolve)
    assert "cannot read" in message


def test_cli_wins_over_ini(resolve: Callable[..., Credentials], home: Path) -> None:
    write_cli(home, {"current": "default", "profiles": [cli_profile("default")]})
    write_ini(home, ini_section("default"))
    assert resolve().source.startswith("aliyun CLI profile")


def test_cli_without_the_profile_falls_through_to_ini(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    write_cli(home, {"current": "default", "profiles": [cli_profile("other")]})
    write_ini(home, ini_section("default"))
    assert (
        resolve().source == "credentials file profile 'default' (~/.alibabacloud/credentials.ini)"
    )


# --- 4. credentials.ini ----------------------------------------------------------------------


def test_ini_default_section(resolve: Callable[..., Credentials], home: Path) -> None:
    write_ini(home, ini_section("other") + ini_section("default"))
    creds = resolve()
    assert creds.access_key_id == f"default-ini-{KEY_ID}"
    assert creds.access_key_secret == SECRET
    assert creds.security_token is None
    assert creds.source == "credentials file profile 'default' (~/.alibabacloud/credentials.ini)"


def test_ini_sts(resolve: Callable[..., Credentials], home: Path) -> None:
    write_ini(home, ini_section("default", "sts"))
    assert resolve().security_token == TOKEN


def test_ini_profile_by_argument_and_by_environment(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    write_ini(home, ini_section("default") + ini_section("a") + ini_section("b"))
    assert resolve(profile="a").access_key_id == f"a-ini-{KEY_ID}"
    assert resolve(env={"ALIBABA_CLOUD_PROFILE": "b"}).access_key_id == f"b-ini-{KEY_ID}"
    assert resolve().access_key_id == f"default-ini-{KEY_ID}"


def test_ini_path_from_environment(
    resolve: Callable[..., Credentials], home: Path, tmp_path: Path
) -> None:
    write_ini(home, ini_section("default"))  # ignored: the variable points elsewhere
    other = tmp_path / "elsewhere.ini"
    other.write_text(ini_section("default", "sts").replace("default-ini", "elsewhere"))
    creds = resolve(env={"ALIBABA_CLOUD_CREDENTIALS_FILE": str(other)})
    assert creds.access_key_id == f"elsewhere-{KEY_ID}"
    assert creds.security_token == TOKEN
    assert creds.source == f"credentials file profile 'default' ({other})"


def test_ini_path_from_environment_expands_tilde_against_home(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    (home / "creds.ini").write_text(ini_section("default"))
    creds = resolve(env={"ALIBABA_CLOUD_CREDENTIALS_FILE": "~/creds.ini"})
    assert creds.source == f"credentials file profile 'default' ({home / 'creds.ini'})"


def test_ini_disabled_section_is_skipped(resolve: Callable[..., Credentials], home: Path) -> None:
    write_ini(home, ini_section("default", enable="false"))
    message = raises_credentials_error(resolve)
    assert message.startswith("no Alibaba Cloud credentials found")


def test_ini_disabled_section_chosen_explicitly_is_an_error(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    write_ini(home, ini_section("p", enable="false"))
    assert "disabled" in raises_credentials_error(lambda: resolve(profile="p"))


def test_ini_enabled_true_is_used(resolve: Callable[..., Credentials], home: Path) -> None:
    write_ini(home, ini_section("default", enable="true"))
    assert resolve().access_key_id == f"default-ini-{KEY_ID}"


# ecs_ram_role, ram_role_arn and oidc_role_arn are read since issue 14 (test_chain.py).
@pytest.mark.parametrize("kind", ["rsa_key_pair", "bearer", "chainable_ram_role_arn"])
def test_ini_unsupported_type(resolve: Callable[..., Credentials], home: Path, kind: str) -> None:
    write_ini(home, ini_section("default", kind))
    message = raises_credentials_error(resolve)
    assert f"type {kind!r}" in message
    assert "not support" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"access_key_secret = {SECRET}\n", "line 1: a value before any [section] header"),
        (f"[default]\naccess_key_secret {SECRET}\n", "cannot parse line(s) 2"),
        (f"[default]\nx = 1\n[default]\ny = {SECRET}\n", "section [default] appears twice"),
        (
            f"[default]\naccess_key_secret = a\naccess_key_secret = {SECRET}\n",
            "key 'access_key_secret' appears twice",
        ),
        (ini_section("default", enable=f"maybe-{SECRET}"), "'enable' must be true or false"),
    ],
)
def test_ini_malformed(
    resolve: Callable[..., Credentials], home: Path, text: str, problem: str
) -> None:
    path = write_ini(home, text)
    message = raises_credentials_error(resolve)
    assert str(path) in message
    assert problem in message


def test_ini_missing_a_key(resolve: Callable[..., Credentials], home: Path) -> None:
    write_ini(home, "[default]\ntype = sts\naccess_key_id = LTAI123\naccess_key_secret = s3cr\n")
    assert "has no security_token" in raises_credentials_error(resolve)


# --- explicit profile not found, and nothing found ------------------------------------------


def test_explicit_profile_not_found_lists_profiles(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    cli = write_cli(home, {"profiles": [cli_profile("default"), cli_profile("dev")]})
    ini = write_ini(home, ini_section("default") + ini_section("staging"))
    message = raises_credentials_error(lambda: resolve(profile="prod"))
    assert "profile 'prod' (from the profile argument) was not found" in message
    assert f"{cli} exists, has profiles: default, dev" in message
    assert f"{ini} exists, has profiles: default, staging" in message


def test_profile_from_environment_not_found(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    write_cli(home, {"profiles": [cli_profile("default")]})
    message = raises_credentials_error(lambda: resolve(env={"ALIBABA_CLOUD_PROFILE": "prod"}))
    assert "profile 'prod' (from ALIBABA_CLOUD_PROFILE) was not found" in message
    assert "credentials.ini does not exist" in message


def test_nothing_found_lists_every_place(resolve: Callable[..., Credentials], home: Path) -> None:
    message = raises_credentials_error(resolve)
    assert message.startswith("no Alibaba Cloud credentials found")
    for name in (ENV_ID, ENV_SECRET, ENV_TOKEN):
        assert name in message
    assert f"{home / '.aliyun' / 'config.json'}: does not exist" in message
    assert f"{home / '.alibabacloud' / 'credentials.ini'}: does not exist" in message
    assert "access_key_id=" in message
    assert "aliyun configure" in message


def test_nothing_found_says_which_files_existed(
    resolve: Callable[..., Credentials], home: Path
) -> None:
    write_cli(home, {"current": "main", "profiles": [cli_profile("other")]})
    write_ini(home, "")
    message = raises_credentials_error(resolve)
    assert "config.json: exists, has profiles: other, none named 'main'" in message
    assert "credentials.ini: exists, has no profiles, none named 'default'" in message


def test_nothing_found_names_the_overridden_ini_path(
    resolve: Callable[..., Credentials], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.ini"
    message = raises_credentials_error(
        lambda: resolve(env={"ALIBABA_CLOUD_CREDENTIALS_FILE": str(missing)})
    )
    assert f"{missing}: does not exist" in message


def test_defaults_are_os_environ_and_path_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    # Only fake values: the real environment and home are hidden, never read.
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    for name in list(os.environ):
        if name.startswith("ALIBABA_CLOUD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(ENV_ID, KEY_ID)
    monkeypatch.setenv(ENV_SECRET, SECRET)
    assert resolve_credentials().source == "environment"
    monkeypatch.delenv(ENV_ID)
    monkeypatch.delenv(ENV_SECRET)
    write_cli(home, {"profiles": [cli_profile("default")]})
    assert resolve_credentials().source.startswith("aliyun CLI profile 'default'")


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"access_key_id": 5, "access_key_secret": "s"}, "access_key_id"),
        ({"access_key_id": "LTAIok", "access_key_secret": " "}, "access_key_secret"),
        ({"access_key_id": "LTAI bad", "access_key_secret": "s"}, "access_key_id"),
        (
            {"access_key_id": "LTAIok", "access_key_secret": "s", "security_token": 3},
            "security_token",
        ),
    ],
)
def test_bad_credentials_name_the_field(kwargs: dict[str, Any], option: str) -> None:
    with pytest.raises(CredentialsError) as info:
        Credentials(**kwargs)
    assert info.value.option == option
    assert str(info.value).startswith(f"{option}: ")


def test_half_given_arguments_name_the_field(resolve: Callable[..., Credentials]) -> None:
    with pytest.raises(CredentialsError) as info:
        resolve(access_key_secret="s")
    assert info.value.option == "access_key_secret"
