"""The secret audit of the chain's refreshing sources (issue 14): no repr, str, describe(),
source, quota key, error or traceback with its frames' locals shows an AccessKey secret, a
security token, an OIDC token or a minted secret.

As in test_locals.py, each case is a function of the home and tmp directories whose lines
name no canary, and its error is caught outside it, so the frames searched are the
library's; the canaries are planted in files and environment mappings.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cms_magic.credentials import Credentials, RefreshingCredentials, resolve_credentials
from cms_magic.errors import CredentialsError

from ._chain_support import (
    CANARY,
    ECS_ROLE,
    KEY_ID,
    META_URL,
    PROVIDER,
    ROLE,
    SECRET,
    STS_URL,
    TOKEN,
    URI,
    Cloud,
    ini_section,
    profile,
    run,
    token_file,
    write_cli,
    write_ini,
)
from .test_locals import chain, renderings, safe_repr, shown

Case = Callable[[Path, Path], object]
SETTINGS = {"CMS_MAGIC_STS_ENDPOINT": STS_URL, "CMS_MAGIC_METADATA_URL": META_URL}


def echo(request: httpx.Request) -> httpx.Response:
    """A service that echoes everything it was sent (query and headers) in its message."""
    sent = " ".join([*request.url.params.values(), *request.headers.values()])
    return httpx.Response(403, json={"Code": "Denied", "Message": sent, "RequestId": "r-1"})


ECHO = httpx.MockTransport(echo)


def oidc_env(tmp: Path) -> dict[str, str]:
    return SETTINGS | {
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file(tmp)),
    }


# ---- sources that resolve: what they show, before and after a fetch --------------------------


def cli_ram_role(home: Path, tmp: Path) -> dict[str, Any]:
    write_cli(home, profile("default", "RamRoleArn", ram_role_arn=ROLE, sts_token=TOKEN))
    return {"env": SETTINGS}


def cli_chainable(home: Path, tmp: Path) -> dict[str, Any]:
    write_cli(
        home,
        profile("base", "StsToken"),
        profile("default", "ChainableRamRoleArn", source_profile="base", ram_role_arn=ROLE),
    )
    return {"env": SETTINGS}


def cli_oidc(home: Path, tmp: Path) -> dict[str, Any]:
    path = str(token_file(tmp))
    item = profile(
        "default", "OIDC", ram_role_arn=ROLE, oidc_provider_arn=PROVIDER, oidc_token_file=path
    )
    write_cli(home, item)
    return {"env": SETTINGS}


def cli_uri(home: Path, tmp: Path) -> dict[str, Any]:
    uri = URI.replace("http://", f"http://user:{SECRET}@") + f"?token={TOKEN}"
    write_cli(home, profile("default", "CredentialsURI", credentials_uri=uri))
    return {"env": SETTINGS}


def cli_ecs(home: Path, tmp: Path) -> dict[str, Any]:
    write_cli(home, profile("default", "EcsRamRole", ram_role_name=ECS_ROLE))
    return {"env": SETTINGS}


def ini_ram_role(home: Path, tmp: Path) -> dict[str, Any]:
    write_ini(home, ini_section("default", "ram_role_arn", role_arn=ROLE))
    return {"env": SETTINGS}


def ini_oidc(home: Path, tmp: Path) -> dict[str, Any]:
    fields = {"role_arn": ROLE, "oidc_provider_arn": PROVIDER}
    write_ini(
        home,
        ini_section(
            "default", "oidc_role_arn", oidc_token_file_path=str(token_file(tmp)), **fields
        ),
    )
    return {"env": SETTINGS}


def env_oidc(home: Path, tmp: Path) -> dict[str, Any]:
    return {"env": oidc_env(tmp)}


def env_uri(home: Path, tmp: Path) -> dict[str, Any]:
    return {"env": SETTINGS | {"ALIBABA_CLOUD_CREDENTIALS_URI": f"{URI}?key={SECRET}"}}


def env_ecs(home: Path, tmp: Path) -> dict[str, Any]:
    return {"env": SETTINGS | {"ALIBABA_CLOUD_ECS_METADATA": ECS_ROLE}}


SOURCES: dict[str, Callable[[Path, Path], dict[str, Any]]] = {
    "cli RamRoleArn": cli_ram_role,
    "cli ChainableRamRoleArn": cli_chainable,
    "cli OIDC": cli_oidc,
    "cli CredentialsURI": cli_uri,
    "cli EcsRamRole": cli_ecs,
    "ini ram_role_arn": ini_ram_role,
    "ini oidc_role_arn": ini_oidc,
    "env OIDC": env_oidc,
    "env URI": env_uri,
    "env ECS": env_ecs,
}


def everything_shown(found: RefreshingCredentials) -> str:
    parts = [shown(found), repr(found.describe()), found.source, found.quota_key]
    parts += [f"{k}={v!r}" for k, v in vars(found).items()]
    return "\n".join(parts)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    return home, tmp


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_source_shows_no_secret_before_or_after_fetching(
    name: str, dirs: tuple[Path, Path]
) -> None:
    home, tmp = dirs
    cloud = Cloud()
    found = resolve_credentials(home=home, client=cloud.transport, **SOURCES[name](home, tmp))
    assert isinstance(found, RefreshingCredentials)
    assert CANARY not in everything_shown(found)
    triple = run(found.current())
    text = everything_shown(found)
    assert CANARY not in text, text
    assert triple.secret.reveal() not in text
    assert triple.token is not None
    assert triple.token.reveal() not in text
    assert CANARY not in shown(triple) + shown(triple.to_credentials(found.source))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_failing_source_shows_no_secret(name: str, dirs: tuple[Path, Path]) -> None:
    """Each source's service echoes back what it was sent (signatures, tokens, keys): the
    error, and the traceback with its frames' locals, show none of it."""
    home, tmp = dirs
    options = SOURCES[name](home, tmp)

    def fetch() -> object:
        found = resolve_credentials(home=home, client=ECHO, **options)
        return run(found.current())  # type: ignore[union-attr]

    with pytest.raises(CredentialsError) as info:
        fetch()
    message = str(info.value)
    assert "Denied" in message or "HTTP 403" in message or "IMDS" in message, message
    assert CANARY not in message, message
    text = package_renderings(info.value)
    assert CANARY not in text, text


def package_renderings(exc: BaseException) -> str:
    """The package's frames of ``exc`` (and of any exception chained to it) with their
    locals, and its message: the test's own frames hold the options it planted."""
    parts: list[str] = []
    for item in chain(exc):
        rendered = traceback.TracebackException.from_exception(item, capture_locals=True)
        package = [f for f in rendered.stack if "/cms_magic/" in f.filename]
        parts += traceback.StackSummary.from_list(package).format()
        parts += [repr(item), str(item), safe_repr(vars(item))]
        tb = item.__traceback__
        while tb is not None:
            if "/cms_magic/" in tb.tb_frame.f_code.co_filename:
                parts += [f"{k}={safe_repr(v)}" for k, v in tb.tb_frame.f_locals.items()]
            tb = tb.tb_next
    assert any("/cms_magic/" in p for p in parts)  # the error was raised in the package
    return "\n".join(parts)


# ---- resolution errors with secrets nearby ---------------------------------------------------


def case_role_without_arn(home: Path, tmp: Path) -> object:
    write_cli(home, profile("default", "RamRoleArn", sts_token=TOKEN))
    return resolve_credentials(env={}, home=home)


def case_role_with_bad_duration(home: Path, tmp: Path) -> object:
    write_cli(home, profile("default", "RamRoleArn", ram_role_arn=ROLE, expired_seconds=TOKEN))
    return resolve_credentials(env={}, home=home)


def case_chain_loop(home: Path, tmp: Path) -> object:
    write_cli(
        home,
        profile("a", "ChainableRamRoleArn", source_profile="b", ram_role_arn=ROLE, sts_token=TOKEN),
        profile("b", "ChainableRamRoleArn", source_profile="a", ram_role_arn=ROLE),
        profile("default", "StsToken"),
    )
    return resolve_credentials(profile="a", env={}, home=home)


def case_chain_to_a_bad_profile(home: Path, tmp: Path) -> object:
    write_cli(
        home,
        profile("base", "StsToken", access_key_id=""),
        profile("default", "ChainableRamRoleArn", source_profile="base", ram_role_arn=ROLE),
    )
    return resolve_credentials(env={}, home=home)


def case_role_secret_with_control_characters(home: Path, tmp: Path) -> object:
    write_cli(
        home, profile("default", "RamRoleArn", ram_role_arn=ROLE, access_key_secret=SECRET + "\x07")
    )
    return resolve_credentials(env={}, home=home)


def case_ini_role_without_arn(home: Path, tmp: Path) -> object:
    write_ini(home, ini_section("default", "ram_role_arn", note=TOKEN))
    return resolve_credentials(env={}, home=home)


def case_unknown_mode_among_secrets(home: Path, tmp: Path) -> object:
    write_cli(home, profile("default", "External", process_command=TOKEN, access_key_secret=SECRET))
    return resolve_credentials(env={}, home=home)


# The environments are built in a call, not held in the case's frame: the frames searched
# are the library's (the case's own locals would hold the canaries it plants).


def secret_env(**extra: str) -> dict[str, str]:
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
    } | extra


def case_oidc_token_file_is_a_directory(home: Path, tmp: Path) -> object:
    return resolve_credentials(
        env=oidc_env(tmp) | secret_env(ALIBABA_CLOUD_OIDC_TOKEN_FILE=str(tmp)), home=home
    )


def case_bad_metadata_flag_with_a_secret_nearby(home: Path, tmp: Path) -> object:
    write_ini(home, ini_section("default", "ecs_ram_role", note=SECRET))
    return resolve_credentials(env={"CMS_MAGIC_METADATA_V1": "maybe"}, home=home)


def case_uri_not_http(home: Path, tmp: Path) -> object:
    return resolve_credentials(env=uri_env(), home=home)


def uri_env() -> dict[str, str]:
    return {"ALIBABA_CLOUD_CREDENTIALS_URI": f"file://u:{SECRET}@h/x?k={TOKEN}"}


def case_expired_oidc_token_file_in_ini(home: Path, tmp: Path) -> object:
    empty = tmp / "empty-token"
    empty.write_text("\n", encoding="utf-8")
    fields = {"role_arn": ROLE, "oidc_provider_arn": PROVIDER, "oidc_token_file_path": str(empty)}
    write_ini(home, ini_section("default", "oidc_role_arn", note=SECRET, **fields))
    return resolve_credentials(env={}, home=home)


CASES: dict[str, Case] = {
    name.removeprefix("case_"): value
    for name, value in dict(globals()).items()
    if name.startswith("case_") and callable(value)
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_rendering_of_a_resolution_error_shows_a_secret(
    name: str, dirs: tuple[Path, Path]
) -> None:
    home, tmp = dirs
    try:
        CASES[name](home, tmp)
    except CredentialsError as exc:
        error: BaseException = exc
    else:
        raise AssertionError(f"{name}: no error")
    text = renderings(error)
    assert "CredentialsError" in text
    assert CANARY not in text, f"{name}:\n{text}"


def test_the_audit_sees_a_planted_secret() -> None:
    """The control: a secret in a message is found."""
    assert CANARY in renderings(CredentialsError(f"leak {SECRET}"))


def test_static_credentials_describe_shows_no_secret() -> None:
    found = Credentials(KEY_ID, SECRET, TOKEN, source="explicit")
    assert CANARY not in repr(found.describe()) + shown(found)
