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
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cms_magic.errors import CredentialsError

__all__ = [
    "ENV_ACCESS_KEY_ID",
    "ENV_ACCESS_KEY_SECRET",
    "ENV_CREDENTIALS_FILE",
    "ENV_PROFILE",
    "ENV_SECURITY_TOKEN",
    "Credentials",
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

_HOW_TO = (
    "Provide credentials in one of these ways: pass access_key_id= and access_key_secret=; "
    f"set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} (plus {ENV_SECURITY_TOKEN} for "
    "an STS token); run `aliyun configure --mode AK` (or StsToken); or write a [default] "
    "section with type = access_key, access_key_id and access_key_secret to "
    f"{_INI_FILE_DISPLAY}."
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


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, an optional STS token, and a note of where they came from.

    Values are stripped of surrounding whitespace; an empty token becomes ``None``.
    The repr and str show only the masked id, whether a token is set, and the source.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    source: str = "explicit"

    def __post_init__(self) -> None:
        for name in ("access_key_id", "access_key_secret"):
            value: object = getattr(self, name)
            if not isinstance(value, str):
                raise CredentialsError(
                    f"must be a string, got a {type(value).__name__}", option=name
                )
            if not value.strip():
                raise CredentialsError("must not be empty", option=name)
            object.__setattr__(self, name, value.strip())
        if any(ch.isspace() or ch == ":" or not ch.isprintable() for ch in self.access_key_id):
            raise CredentialsError(
                "must not contain whitespace, ':' or control characters, "
                f"got {mask(self.access_key_id)!r} (masked)",
                option="access_key_id",
            )
        if not self.access_key_secret.isprintable():
            raise CredentialsError(
                "must not contain control characters", option="access_key_secret"
            )
        token: object = self.security_token
        if token is not None:
            if not isinstance(token, str):
                raise CredentialsError(
                    f"must be a string or None, got a {type(token).__name__}",
                    option="security_token",
                )
            object.__setattr__(self, "security_token", token.strip() or None)
        source: object = self.source
        if not isinstance(source, str):
            raise CredentialsError(
                f"must be a string, got a {type(source).__name__}", option="source"
            )

    @property
    def masked_id(self) -> str:
        """The AccessKey id, masked for display."""
        return mask(self.access_key_id)

    def __repr__(self) -> str:
        token = "<set>" if self.security_token else "None"
        return (
            f"Credentials(access_key_id={self.masked_id!r}, security_token={token}, "
            f"source={self.source!r})"
        )

    __str__ = __repr__


def resolve_credentials(
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
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
    environ: Mapping[str, str] = os.environ if env is None else env
    home_dir = Path.home() if home is None else home

    # 1. arguments
    if access_key_id is not None or access_key_secret is not None:
        if access_key_secret is None:
            raise CredentialsError("was given without access_key_secret", option="access_key_id")
        if access_key_id is None:
            raise CredentialsError("was given without access_key_id", option="access_key_secret")
        return Credentials(access_key_id, access_key_secret, security_token, source="explicit")
    if security_token is not None:
        raise CredentialsError(
            "was given without access_key_id and access_key_secret", option="security_token"
        )

    # 2. environment, unless a profile was asked for by argument
    if profile is None:
        found = _from_env(environ)
        if found is not None:
            return found

    chosen, chosen_from = _choose_profile(profile, environ)

    # 3. aliyun CLI
    cli_path = home_dir / _CLI_CONFIG
    cli_creds, cli_profiles, cli_name = _from_cli(cli_path, chosen)
    if cli_creds is not None:
        return cli_creds

    # 4. credentials.ini
    ini_path, ini_display = _ini_location(environ, home_dir)
    ini_creds, ini_profiles = _from_ini(
        ini_path, ini_display, chosen or _DEFAULT_PROFILE, explicit=chosen is not None
    )
    if ini_creds is not None:
        return ini_creds

    cli_state = _file_state(cli_path, cli_profiles)
    ini_state = _file_state(ini_path, ini_profiles)
    if chosen is not None:
        raise CredentialsError(
            f"profile {chosen!r} ({chosen_from}) was not found: "
            f"aliyun CLI config {cli_path} {cli_state}; credentials file {ini_path} {ini_state}"
        )
    raise CredentialsError(
        "no Alibaba Cloud credentials found. Looked in:\n"
        "  - arguments access_key_id / access_key_secret: not given\n"
        f"  - environment {ENV_ACCESS_KEY_ID} / {ENV_ACCESS_KEY_SECRET} "
        f"(/ {ENV_SECURITY_TOKEN}): not set\n"
        f"  - aliyun CLI config {cli_path}: {cli_state}"
        f"{'' if cli_profiles is None else f', none named {cli_name!r}'}\n"
        f"  - credentials file {ini_path}: {ini_state}"
        f"{'' if ini_profiles is None else f', none named {_DEFAULT_PROFILE!r}'}\n"
        f"{_HOW_TO}"
    )


def _env_value(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value


def _from_env(environ: Mapping[str, str]) -> Credentials | None:
    key_id = _env_value(environ, ENV_ACCESS_KEY_ID)
    secret = _env_value(environ, ENV_ACCESS_KEY_SECRET)
    if key_id is None and secret is None:
        return None
    if secret is None:
        raise CredentialsError(f"{ENV_ACCESS_KEY_ID} is set but {ENV_ACCESS_KEY_SECRET} is not")
    if key_id is None:
        raise CredentialsError(f"{ENV_ACCESS_KEY_SECRET} is set but {ENV_ACCESS_KEY_ID} is not")
    token = _env_value(environ, ENV_SECURITY_TOKEN)
    return Credentials(key_id, secret, token, source="environment")


def _choose_profile(profile: str | None, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The profile explicitly chosen (by argument or environment), and by what."""
    if profile is not None:
        if not profile.strip():
            raise CredentialsError("must not be empty", option="profile", value=profile)
        return profile.strip(), "from the profile argument"
    from_env = _env_value(environ, ENV_PROFILE)
    if from_env is not None:
        return from_env.strip(), f"from {ENV_PROFILE}"
    return None, "default"


def _file_state(path: Path, profiles: list[str] | None) -> str:
    if profiles is None:
        return "does not exist"
    if not profiles:
        return "exists, has no profiles"
    return f"exists, has profiles: {', '.join(profiles)}"


def _read_text(path: Path) -> str | None:
    """The file's text, ``None`` if it does not exist; never echoes contents in an error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(
            f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CredentialsError(f"{path} is not valid UTF-8 (byte offset {exc.start})") from None


def _from_cli(path: Path, chosen: str | None) -> tuple[Credentials | None, list[str] | None, str]:
    """Credentials from the aliyun CLI config, the profile names it has, and the name looked for.

    The profile names are ``None`` when the file does not exist.
    """
    text = _read_text(path)
    if text is None:
        return None, None, chosen or _DEFAULT_PROFILE
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialsError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{path} must hold a JSON object, got {type(data).__name__}")
    raw_profiles = data.get("profiles", [])
    if not isinstance(raw_profiles, list):
        raise CredentialsError(f"{path}: 'profiles' must be a list")
    profiles: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(raw_profiles):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise CredentialsError(f"{path}: profiles[{i}] must be an object with a string 'name'")
        profiles.setdefault(item["name"], item)
    names = list(profiles)
    current = data.get("current")
    name = chosen or (current if isinstance(current, str) and current else _DEFAULT_PROFILE)
    item = profiles.get(name)
    if item is None:
        return None, names, name
    return _cli_profile(path, name, item), names, name


def _cli_profile(path: Path, name: str, item: dict[str, Any]) -> Credentials:
    where = f"profile {name!r} in {path}"
    mode = item.get("mode") or "AK"
    if not isinstance(mode, str) or mode.lower() not in ("ak", "ststoken"):
        raise CredentialsError(
            f"{where} uses mode {mode!r}, which cms_magic does not support; use a profile "
            f"with mode AK or StsToken, or set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} "
            f"(and {ENV_SECURITY_TOKEN})"
        )
    sts = mode.lower() == "ststoken"
    keys = ["access_key_id", "access_key_secret"] + (["sts_token"] if sts else [])
    values: dict[str, str] = {}
    for key in keys:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CredentialsError(f"{where} (mode {mode}) has no {key}")
        values[key] = value
    return Credentials(
        values["access_key_id"],
        values["access_key_secret"],
        values.get("sts_token"),
        source=f"aliyun CLI profile {name!r} ({_CLI_CONFIG_DISPLAY})",
    )


def _ini_location(environ: Mapping[str, str], home: Path) -> tuple[Path, str]:
    """The credentials file to read and how to name it in a source string."""
    override = _env_value(environ, ENV_CREDENTIALS_FILE)
    if override is None:
        return home / _INI_FILE, _INI_FILE_DISPLAY
    text = override.strip()
    if text == "~" or text.startswith(("~/", "~\\")):
        path = home / text[2:] if len(text) > 1 else home
    else:
        path = Path(text)
    return path, str(path)


def _describe_ini_error(exc: configparser.Error) -> str:
    """What went wrong and where, without the offending line's text."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: a value before any [section] header"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: section [{exc.section}] appears twice"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: key {exc.option!r} appears twice in [{exc.section}]"
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(err[0]) for err in exc.errors)
        return f"cannot parse line(s) {lines}"
    return type(exc).__name__


def _from_ini(
    path: Path, display: str, name: str, *, explicit: bool
) -> tuple[Credentials | None, list[str] | None]:
    """Credentials from the INI file and the enabled profile names it has.

    The names are ``None`` when the file does not exist. A disabled profile
    (``enable = false``) is skipped, unless it was chosen explicitly: then it is an error.
    """
    text = _read_text(path)
    if text is None:
        return None, None
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00no-defaults")
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise CredentialsError(
            f"{path} is not a valid INI file: {_describe_ini_error(exc)}"
        ) from None
    names = parser.sections()
    if name not in names:
        return None, names
    section = parser[name]
    where = f"profile [{name}] in {path}"
    try:
        enabled = section.getboolean("enable", fallback=True)
    except ValueError:
        raise CredentialsError(f"{where}: 'enable' must be true or false") from None
    if not enabled:
        if explicit:
            raise CredentialsError(f"{where} is disabled (enable = false)")
        names.remove(name)
        return None, names
    kind = section.get("type", "access_key").strip().lower()
    if kind not in ("access_key", "sts"):
        raise CredentialsError(
            f"{where} has type {kind!r}, which cms_magic does not support; use type "
            f"access_key or sts, or set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} "
            f"(and {ENV_SECURITY_TOKEN})"
        )
    keys = ["access_key_id", "access_key_secret"] + (["security_token"] if kind == "sts" else [])
    values: dict[str, str] = {}
    for key in keys:
        value = section.get(key, "").strip()
        if not value:
            raise CredentialsError(f"{where} (type {kind}) has no {key}")
        values[key] = value
    return (
        Credentials(
            values["access_key_id"],
            values["access_key_secret"],
            values.get("security_token"),
            source=f"credentials file profile {name!r} ({display})",
        ),
        names,
    )
