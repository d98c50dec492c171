"""Credentials and where they come from: the chain.

:func:`resolve_credentials` looks, in this order, and takes the first source found:

1. the ``access_key_id`` / ``access_key_secret`` (/ ``security_token``) arguments;
2. the environment: ``ALIBABA_CLOUD_ACCESS_KEY_ID``, ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
   and, for STS, ``ALIBABA_CLOUD_SECURITY_TOKEN``;
3. OIDC / RRSA (ACK pods): ``ALIBABA_CLOUD_ROLE_ARN``, ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN``
   and ``ALIBABA_CLOUD_OIDC_TOKEN_FILE`` all set (``ALIBABA_CLOUD_ROLE_SESSION_NAME``
   optional): STS ``AssumeRoleWithOIDC``, the token file re-read at each refresh;
4. a credentials service: ``ALIBABA_CLOUD_CREDENTIALS_URI`` (``GET``, JSON with ``Code``
   ``Success``, ``AccessKeyId``, ``AccessKeySecret``, ``SecurityToken``, ``Expiration``);
5. the Alibaba Cloud CLI configuration ``~/.aliyun/config.json``, modes ``AK``,
   ``StsToken``, ``RamRoleArn`` (AssumeRole signed with the profile's key: ``ram_role_arn``,
   ``ram_session_name``, ``expired_seconds``, ``external_id``, ``policy``, ``sts_region``,
   ``sts_endpoint``), ``EcsRamRole`` (``ram_role_name``; empty: the instance's role),
   ``ChainableRamRoleArn`` (``source_profile``'s credentials, static or refreshing, then
   AssumeRole), ``OIDC`` (``ram_role_arn``, ``oidc_provider_arn``, ``oidc_token_file``) and
   ``CredentialsURI`` (``credentials_uri``); any other mode is an error that names it;
6. the credentials file ``~/.alibabacloud/credentials.ini``, or the file named by
   ``ALIBABA_CLOUD_CREDENTIALS_FILE``, types ``access_key``, ``sts``, ``ram_role_arn``
   (``access_key_id``, ``access_key_secret``, ``role_arn``, ``role_session_name``,
   ``policy``), ``ecs_ram_role`` (``role_name``) and ``oidc_role_arn`` (``role_arn``,
   ``oidc_provider_arn``, ``oidc_token_file_path``, ``role_session_name``, ``policy``);
7. the ECS instance's RAM role, **only when asked for** by ``ALIBABA_CLOUD_ECS_METADATA=<role
   name>`` (or by a CLI mode ``EcsRamRole`` / ini type ``ecs_ram_role`` at steps 5 and 6):
   never as a silent fallback, so nothing here contacts the metadata address on its own.

Steps 1, 2 and the static modes and types give :class:`Credentials`; the others a
:class:`~cms_magic.credentials.refreshing.RefreshingCredentials`, which fetches on first
use and refreshes ahead of expiry. Resolving contacts nothing. A profile whose field is
missing is an error naming the field; the field names are the official tools' (see
:mod:`cms_magic.credentials.files`), the settings the refreshing sources use (STS endpoint
and region, metadata URL, IMDSv1) are listed in :mod:`cms_magic.credentials.chain`.

The profile of steps 5 and 6 is the ``profile`` argument, else
``ALIBABA_CLOUD_PROFILE``, else the CLI's ``current`` profile (step 5 only), else
``default``. A ``profile`` argument is an explicit request for that profile, so it
skips the environment's steps 2, 3, 4 and 7: environment keys never silently replace the
profile a caller asked for.

The layout follows botocore's ``create_credential_resolver`` (``botocore/credentials.py``):
sources before the profile (environment keys, the environment's web identity), the
profile's, then those after it (container, instance metadata); with an explicit profile
("An explicitly provided profile will negate an EnvProvider") its environment providers are
dropped, as here. Unlike botocore, the instance metadata is never a fallback here: it is
asked for, or not used.

A secret never appears in a repr, a str or an exception message: the AccessKey id
is shown masked, a token only as present or not, and a malformed file is
described by its path, line and problem, never by its contents.

Nor in a traceback rendered with its frames' locals (``%xmode Verbose``,
``traceback`` with ``capture_locals=True``, pytest ``--showlocals``, error
trackers), nor on a chained exception: the secret and the token are wrapped in a
:class:`~cms_magic.credentials.secret.Secret` the moment they are read (from an
argument, the environment or a file); the environment mapping and a file's text
live only in helpers that return a value or a :class:`Problem`, never raise, so
their frames are gone before any error is raised, and no error is raised inside an
``except`` block (so ``__context__`` is empty too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cms_magic.credentials.accesskey import Credentials, mask
from cms_magic.credentials.chain import (
    ENV_CREDENTIALS_URI,
    ENV_ECS_METADATA,
    ENV_OIDC_PROVIDER_ARN,
    ENV_OIDC_TOKEN_FILE,
    ENV_ROLE_ARN,
    EnvironmentSources,
    Settings,
    build,
    read_environment_sources,
)
from cms_magic.credentials.files import read_cli, read_ini
from cms_magic.credentials.refreshing import RefreshingCredentials
from cms_magic.credentials.secret import Secret
from cms_magic.credentials.specs import Draft, Problem, Spec
from cms_magic.errors import CredentialsError, NoCredentialsError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ENV_ACCESS_KEY_ID",
    "ENV_ACCESS_KEY_SECRET",
    "ENV_CREDENTIALS_FILE",
    "ENV_PROFILE",
    "ENV_SECURITY_TOKEN",
    "Credentials",
    "RefreshingCredentials",
    "ResolvedCredentials",
    "Secret",
    "mask",
    "resolve_credentials",
]

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable name
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 - a variable name
ENV_PROFILE = "ALIBABA_CLOUD_PROFILE"
ENV_CREDENTIALS_FILE = "ALIBABA_CLOUD_CREDENTIALS_FILE"

_CLI_CONFIG = Path(".aliyun") / "config.json"
_CLI_CONFIG_DISPLAY = "~/.aliyun/config.json"
_INI_FILE = Path(".alibabacloud") / "credentials.ini"
_INI_FILE_DISPLAY = "~/.alibabacloud/credentials.ini"
_DEFAULT_PROFILE = "default"

_HOW_TO: Final = (
    f"set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} (plus {ENV_SECURITY_TOKEN} for "
    "an STS token)",
    "run `aliyun configure --mode AK` (or StsToken, RamRoleArn, EcsRamRole, OIDC...)",
    "write a [default] section with type = access_key, access_key_id and access_key_secret "
    f"to {_INI_FILE_DISPLAY}",
    f"on ACK with RRSA, set {ENV_ROLE_ARN}, {ENV_OIDC_PROVIDER_ARN} and {ENV_OIDC_TOKEN_FILE}; "
    f"on ECS, set {ENV_ECS_METADATA} to the instance's RAM role name",
)

#: The resolution's result: static keys, or a source that fetches and refreshes them.
ResolvedCredentials = Credentials | RefreshingCredentials


@dataclass(frozen=True)
class _Environment:
    """What the resolution reads of the environment, the secret and token already wrapped."""

    key_id: str | None
    secret: Secret | None
    token: Secret | None
    profile: str | None
    credentials_file: str | None
    sources: EnvironmentSources
    settings: Settings


def _read_environment(env: Mapping[str, str] | None, options: dict[str, Any]) -> _Environment:
    """The variables the chain uses; the mapping itself (which may hold any secret of the
    process) stays in this frame, gone once it returns."""
    environ: Mapping[str, str] = os.environ if env is None else env

    def value(name: str) -> str | None:
        text = environ.get(name)
        return text if isinstance(text, str) and text.strip() else None

    secret, token = value(ENV_ACCESS_KEY_SECRET), value(ENV_SECURITY_TOKEN)
    found = read_environment_sources(environ, **options)
    return _Environment(
        key_id=value(ENV_ACCESS_KEY_ID),
        secret=None if secret is None else Secret(secret),
        token=None if token is None else Secret(token),
        profile=value(ENV_PROFILE),
        credentials_file=value(ENV_CREDENTIALS_FILE),
        sources=found[0],
        settings=found[1],
    )


def resolve_credentials(
    access_key_id: str | None = None,
    access_key_secret: str | Secret | None = None,
    security_token: str | Secret | None = None,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    region: str | None = None,
    sts_endpoint: str | None = None,
    metadata_url: str | None = None,
    allow_imds_v1: bool | None = None,
    client: Any = None,
    clock: Callable[[], float] | None = None,
) -> Credentials | RefreshingCredentials:
    """Find credentials along the chain (see the module): static :class:`Credentials`, or a
    :class:`~cms_magic.credentials.refreshing.RefreshingCredentials` for a role, OIDC, a
    credentials URI or the ECS RAM role. Nothing is contacted: a refreshing source fetches
    at its first ``current()``.

    ``env`` defaults to :data:`os.environ` and ``home`` to :meth:`Path.home`; tests pass
    their own. ``region`` is the STS region to fall back on (a skin's target region);
    ``sts_endpoint``, ``metadata_url`` and ``allow_imds_v1`` override their environment
    variables (see :mod:`cms_magic.credentials.chain`); ``client`` is an
    :class:`httpx.AsyncClient` or transport every fetch goes through (tests: an
    :class:`httpx.MockTransport`); ``clock`` the wall clock of signatures and expiry.

    Raises :class:`~cms_magic.errors.CredentialsError` when half a pair is given, when a
    source is malformed, misses a field (named) or uses an unsupported mode (named), when
    an explicitly chosen profile exists nowhere, and when nothing resolves (the message
    then lists every place looked and how to provide credentials).
    """
    # Wrapped at once: no frame of the chain holds a plain secret, token or environment.
    secret = None if access_key_secret is None else _opaque(access_key_secret)
    token = None if security_token is None else _opaque(security_token)
    del access_key_secret, security_token
    options = {
        "region": region,
        "sts_endpoint": sts_endpoint,
        "metadata_url": metadata_url,
        "allow_imds_v1": allow_imds_v1,
        "client": client,
        "clock": clock,
    }
    environment = _read_environment(env, options)
    del env
    home_dir = Path.home() if home is None else home

    # 1. arguments
    if access_key_id is not None or secret is not None:
        if secret is None:
            raise CredentialsError("was given without access_key_secret", option="access_key_id")
        if access_key_id is None:
            raise CredentialsError("was given without access_key_id", option="access_key_secret")
        return Credentials(access_key_id, secret, token, source="explicit")
    if token is not None:
        raise CredentialsError(
            "was given without access_key_id and access_key_secret", option="security_token"
        )
    sources, settings = environment.sources, environment.settings

    # 2. environment keys, 3. OIDC / RRSA, 4. credentials URI: unless a profile was asked
    # for by argument
    if profile is None:
        found = _from_env(environment)
        if found is not None:
            return found
        for spec in (sources.oidc, sources.uri):
            if spec is not None:
                return _refreshing(spec, settings)

    chosen, chosen_from = _choose_profile(profile, environment)

    # 5. aliyun CLI
    cli_path = home_dir / _CLI_CONFIG
    cli = read_cli(cli_path, chosen, display=_CLI_CONFIG_DISPLAY)
    if isinstance(cli, Problem):
        raise cli.error()
    if cli.found is not None:
        source = f"aliyun CLI profile {cli.name!r} ({_CLI_CONFIG_DISPLAY})"
        return _resolved(cli.found, source, settings)

    # 6. credentials.ini
    ini_path, ini_display = _ini_location(environment, home_dir)
    ini_name = chosen or _DEFAULT_PROFILE
    ini = read_ini(ini_path, ini_name, explicit=chosen is not None, display=ini_display)
    if isinstance(ini, Problem):
        raise ini.error()
    if ini.found is not None:
        source = f"credentials file profile {ini_name!r} ({ini_display})"
        return _resolved(ini.found, source, settings)

    cli_state = _file_state(cli.profiles)
    ini_state = _file_state(ini.profiles)
    if chosen is not None:
        raise CredentialsError(
            f"profile {chosen!r} ({chosen_from}) was not found: "
            f"aliyun CLI config {cli_path} {cli_state}; credentials file {ini_path} {ini_state}"
        )

    # 7. the ECS RAM role, only when asked for by name
    if profile is None and sources.ecs is not None:
        return _refreshing(sources.ecs, settings)

    raise NoCredentialsError(
        (
            f"environment {ENV_ACCESS_KEY_ID} / {ENV_ACCESS_KEY_SECRET} "
            f"(/ {ENV_SECURITY_TOKEN}): not set",
            f"environment OIDC ({ENV_ROLE_ARN}, {ENV_OIDC_PROVIDER_ARN}, "
            f"{ENV_OIDC_TOKEN_FILE}): {sources.oidc_note}",
            f"environment {ENV_CREDENTIALS_URI}: not set",
            f"aliyun CLI config {cli_path}: {cli_state}"
            f"{'' if cli.profiles is None else f', none named {cli.name!r}'}",
            f"credentials file {ini_path}: {ini_state}"
            f"{'' if ini.profiles is None else f', none named {_DEFAULT_PROFILE!r}'}",
            f"ECS RAM role: not asked for ({ENV_ECS_METADATA} not set; the instance "
            "metadata is never tried on its own)",
        ),
        _HOW_TO,
    )


def _refreshing(spec: Spec, settings: Settings) -> RefreshingCredentials:
    built = build(spec, settings)
    if isinstance(built, Problem):
        raise built.error()
    return built


def _resolved(found: Draft | Spec, source: str, settings: Settings) -> ResolvedCredentials:
    if isinstance(found, Draft):
        return _build(found, source)
    return _refreshing(found, settings)


def _opaque(value: object) -> Any:
    """An argument as this frame may hold it: a string wrapped in a :class:`Secret`; any
    other type as is (Credentials names the type in its error)."""
    return Secret(value) if isinstance(value, str | Secret) else value


def _build(draft: Draft, source: str) -> Credentials:
    return Credentials(draft.key_id, draft.secret, draft.token, source=source)


def _from_env(environment: _Environment) -> Credentials | None:
    key_id, secret = environment.key_id, environment.secret
    if key_id is None and secret is None:
        return None
    if secret is None:
        raise CredentialsError(f"{ENV_ACCESS_KEY_ID} is set but {ENV_ACCESS_KEY_SECRET} is not")
    if key_id is None:
        raise CredentialsError(f"{ENV_ACCESS_KEY_SECRET} is set but {ENV_ACCESS_KEY_ID} is not")
    return Credentials(key_id, secret, environment.token, source="environment")


def _choose_profile(profile: str | None, environment: _Environment) -> tuple[str | None, str]:
    """The profile explicitly chosen (by argument or environment), and by what."""
    if profile is not None:
        if not profile.strip():
            raise CredentialsError("must not be empty", option="profile", value=profile)
        return profile.strip(), "from the profile argument"
    if environment.profile is not None:
        return environment.profile.strip(), f"from {ENV_PROFILE}"
    return None, "default"


def _file_state(profiles: list[str] | None) -> str:
    if profiles is None:
        return "does not exist"
    if not profiles:
        return "exists, has no profiles"
    return f"exists, has profiles: {', '.join(profiles)}"


def _ini_location(environment: _Environment, home: Path) -> tuple[Path, str]:
    """The credentials file to read and how to name it in a source string."""
    override = environment.credentials_file
    if override is None:
        return home / _INI_FILE, _INI_FILE_DISPLAY
    text = override.strip()
    if text == "~" or text.startswith(("~/", "~\\")):
        path = home / text[2:] if len(text) > 1 else home
    else:
        path = Path(text)
    return path, str(path)
