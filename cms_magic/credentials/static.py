"""AccessKey credentials and where they come from.

:func:`resolve_credentials` looks, in this order, at:

1. the ``access_key_id`` / ``access_key_secret`` (/ ``security_token``) arguments;
2. the environment: ``ALIBABA_CLOUD_ACCESS_KEY_ID``, ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
   and, for STS, ``ALIBABA_CLOUD_SECURITY_TOKEN``;
3. the Alibaba Cloud CLI configuration ``~/.aliyun/config.json`` (modes ``AK`` and
   ``StsToken``);
4. the credentials file ``~/.alibabacloud/credentials.ini``, or the file named by
   ``ALIBABA_CLOUD_CREDENTIALS_FILE`` (types ``access_key`` and ``sts``).

The profile of steps 3 and 4 is the ``profile`` argument, else
``ALIBABA_CLOUD_PROFILE``, else the CLI's ``current`` profile (step 3 only), else
``default``. A ``profile`` argument is an explicit request for that profile, so it
skips step 2 (as botocore does with an explicit profile name): environment keys
never silently replace the profile a caller asked for.

A secret never appears in a repr, a str or an exception message: the AccessKey id
is shown masked, a token only as present or not, and a malformed file is
described by its path, line and problem, never by its contents.

Nor in a traceback rendered with its frames' locals (``%xmode Verbose``,
``traceback`` with ``capture_locals=True``, pytest ``--showlocals``, error
trackers), nor on a chained exception: the secret and the token are wrapped in a
:class:`~cms_magic.credentials.secret.Secret` the moment they are read (from an
argument, the environment or a file); the environment mapping and a file's text
live only in helpers that return a value or a :class:`_Problem`, never raise, so
their frames are gone before any error is raised, and no error is raised inside an
``except`` block (so ``__context__`` is empty too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cms_magic.credentials.files import Draft, Problem, read_cli, read_ini
from cms_magic.credentials.secret import Secret
from cms_magic.errors import CredentialsError, NoCredentialsError

__all__ = [
    "ENV_ACCESS_KEY_ID",
    "ENV_ACCESS_KEY_SECRET",
    "ENV_CREDENTIALS_FILE",
    "ENV_PROFILE",
    "ENV_SECURITY_TOKEN",
    "Credentials",
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
    "run `aliyun configure --mode AK` (or StsToken)",
    "write a [default] section with type = access_key, access_key_id and access_key_secret "
    f"to {_INI_FILE_DISPLAY}",
)


def mask(value: str) -> str:
    """Mask a key for display: ``LTAI5tAbCdEfGh1234abcd`` -> ``LTAI****abcd``.

    Values of 12 characters or more keep their first and last 4; from 6 to 11
    characters only the last 2; shorter values show nothing.
    """
    if len(value) >= 12:
        return f"{value[:4]}****{value[-4:]}"
    if len(value) >= 6:
        return f"****{value[-2:]}"
    return "****"


def _wrap(value: object, option: str, *, optional: bool) -> Secret | Problem | None:
    """``value`` stripped and wrapped in a :class:`Secret`, or what is wrong with it.

    ``None`` (and, when ``optional``, an empty value) gives ``None``. Never raises, so
    this frame, which holds the text, is never on a traceback.
    """
    if value is None and optional:
        return None
    if isinstance(value, Secret | str):
        text = (value.reveal() if isinstance(value, Secret) else value).strip()
    else:
        kind = "a string or None" if optional else "a string"
        return Problem(f"must be {kind}, got a {type(value).__name__}", option)
    if not text:
        return None if optional else Problem("must not be empty", option)
    if not text.isprintable():
        return Problem("must not contain control characters", option)
    return Secret(text)


def _as_secret(value: object) -> Secret | Problem:
    wrapped = _wrap(value, "access_key_secret", optional=False)
    return Problem("must not be empty", "access_key_secret") if wrapped is None else wrapped


def _as_token(value: object) -> Secret | Problem | None:
    return _wrap(value, "security_token", optional=True)


def _check_id(value: object) -> str | Problem:
    if not isinstance(value, str):
        return Problem(f"must be a string, got a {type(value).__name__}", "access_key_id")
    text = value.strip()
    if not text:
        return Problem("must not be empty", "access_key_id")
    if any(ch.isspace() or ch == ":" or not ch.isprintable() for ch in text):
        return Problem(
            f"must not contain whitespace, ':' or control characters, got {mask(text)!r} (masked)",
            "access_key_id",
        )
    return text


@dataclass(frozen=True, init=False)
class Credentials:
    """An AccessKey pair, an optional STS token, and a note of where they came from.

    ``access_key_secret`` and ``security_token`` are :class:`Secret` values (given as
    plain strings, they are wrapped): masked in every rendering, their text only
    through ``.reveal()``. Values are stripped of surrounding whitespace; an empty
    token becomes ``None``. The repr and str show only the masked id, whether a token
    is set, and the source.
    """

    access_key_id: str
    access_key_secret: Secret
    security_token: Secret | None
    source: str

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str | Secret,
        security_token: str | Secret | None = None,
        source: str = "explicit",
    ) -> None:
        secret = _as_secret(access_key_secret)
        token = _as_token(security_token)
        del access_key_secret, security_token  # this frame may be on the traceback below
        key_id = _check_id(access_key_id)
        if isinstance(key_id, Problem):
            raise key_id.error()
        if isinstance(secret, Problem):
            raise secret.error()
        if isinstance(token, Problem):
            raise token.error()
        if not isinstance(source, str):
            raise CredentialsError(
                f"must be a string, got a {type(source).__name__}", option="source"
            )
        object.__setattr__(self, "access_key_id", key_id)
        object.__setattr__(self, "access_key_secret", secret)
        object.__setattr__(self, "security_token", token)
        object.__setattr__(self, "source", source)

    @property
    def masked_id(self) -> str:
        """The AccessKey id, masked for display."""
        return mask(self.access_key_id)

    def __repr__(self) -> str:
        # getattr: a half-built instance (its __init__ raising) is repr'd by traceback tools
        key_id = getattr(self, "access_key_id", None)
        token = "<set>" if getattr(self, "security_token", None) else "None"
        return (
            f"Credentials(access_key_id={None if key_id is None else mask(key_id)!r}, "
            f"security_token={token}, source={getattr(self, 'source', None)!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class _Environment:
    """What the resolution reads of the environment, the secret and token already wrapped."""

    key_id: str | None
    secret: Secret | None
    token: Secret | None
    profile: str | None
    credentials_file: str | None


def _read_environment(env: Mapping[str, str] | None) -> _Environment:
    """The variables the chain uses; the mapping itself (which may hold any secret of the
    process) stays in this frame, gone once it returns."""
    environ: Mapping[str, str] = os.environ if env is None else env

    def value(name: str) -> str | None:
        text = environ.get(name)
        return text if isinstance(text, str) and text.strip() else None

    secret, token = value(ENV_ACCESS_KEY_SECRET), value(ENV_SECURITY_TOKEN)
    return _Environment(
        key_id=value(ENV_ACCESS_KEY_ID),
        secret=None if secret is None else Secret(secret),
        token=None if token is None else Secret(token),
        profile=value(ENV_PROFILE),
        credentials_file=value(ENV_CREDENTIALS_FILE),
    )


def resolve_credentials(
    access_key_id: str | None = None,
    access_key_secret: str | Secret | None = None,
    security_token: str | Secret | None = None,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Credentials:
    """Find credentials: arguments, environment, aliyun CLI config, credentials file.

    ``env`` defaults to :data:`os.environ` and ``home`` to :meth:`Path.home`; tests pass
    their own. Raises :class:`~cms_magic.errors.CredentialsError` when half a pair is
    given, when a source is malformed or uses an unsupported mode, when an explicitly
    chosen profile exists nowhere, and when nothing resolves (the message then lists
    every place looked and how to provide credentials).
    """
    # Wrapped at once: no frame of the chain holds a plain secret, token or environment.
    secret = None if access_key_secret is None else _opaque(access_key_secret)
    token = None if security_token is None else _opaque(security_token)
    del access_key_secret, security_token
    environment = _read_environment(env)
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

    # 2. environment, unless a profile was asked for by argument
    if profile is None:
        found = _from_env(environment)
        if found is not None:
            return found

    chosen, chosen_from = _choose_profile(profile, environment)

    # 3. aliyun CLI
    cli_path = home_dir / _CLI_CONFIG
    cli = read_cli(cli_path, chosen)
    if isinstance(cli, Problem):
        raise cli.error()
    if cli.found is not None:
        return _build(cli.found, f"aliyun CLI profile {cli.name!r} ({_CLI_CONFIG_DISPLAY})")

    # 4. credentials.ini
    ini_path, ini_display = _ini_location(environment, home_dir)
    ini_name = chosen or _DEFAULT_PROFILE
    ini = read_ini(ini_path, ini_name, explicit=chosen is not None)
    if isinstance(ini, Problem):
        raise ini.error()
    if ini.found is not None:
        return _build(ini.found, f"credentials file profile {ini_name!r} ({ini_display})")

    cli_state = _file_state(cli.profiles)
    ini_state = _file_state(ini.profiles)
    if chosen is not None:
        raise CredentialsError(
            f"profile {chosen!r} ({chosen_from}) was not found: "
            f"aliyun CLI config {cli_path} {cli_state}; credentials file {ini_path} {ini_state}"
        )
    raise NoCredentialsError(
        (
            f"environment {ENV_ACCESS_KEY_ID} / {ENV_ACCESS_KEY_SECRET} "
            f"(/ {ENV_SECURITY_TOKEN}): not set",
            f"aliyun CLI config {cli_path}: {cli_state}"
            f"{'' if cli.profiles is None else f', none named {cli.name!r}'}",
            f"credentials file {ini_path}: {ini_state}"
            f"{'' if ini.profiles is None else f', none named {_DEFAULT_PROFILE!r}'}",
        ),
        _HOW_TO,
    )


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
