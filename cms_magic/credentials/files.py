"""Reading the aliyun CLI's ``config.json`` and ``credentials.ini`` without a secret on a
traceback.

A file's text, its parsed JSON and its profile dicts are locals of the readers
here, and a parser's exception (a ``JSONDecodeError`` keeps the whole document in
``.doc``; configparser's errors keep the offending line) is caught in them. So the
readers never raise: they return what they found, the secret and token already
wrapped in a :class:`~cms_magic.credentials.secret.Secret`, or a :class:`Problem`
that their caller raises once these frames, and the exceptions they caught, are
gone. Messages name the path, the line, the field and the problem, never a value.

A profile is a static key (:class:`Draft`) or a refreshing source (:class:`Spec`). The
field names are the official tools' own (read from their sources, not guessed):

- aliyun CLI ``config.json``: ``config/profile.go`` of github.com/aliyun/aliyun-cli
  (``Profile``'s JSON tags and ``Validate``/``GetCredential``; master at eadd68d9):
  ``access_key_id``, ``access_key_secret``, ``sts_token``, ``ram_role_arn``,
  ``ram_session_name``, ``expired_seconds``, ``external_id``, ``sts_region``,
  ``sts_endpoint``, ``ram_role_name``, ``source_profile``, ``oidc_provider_arn``,
  ``oidc_token_file``, ``credentials_uri``; and
  ``alibabacloud_credentials/provider/cli_profile.py`` of github.com/aliyun/credentials-python
  (1.0.12), which also reads ``policy`` and ``enable_vpc``, and ``role_session_name`` for
  mode ``OIDC`` (the CLI writes ``ram_session_name``: both are read, that one first).
- ``credentials.ini``: ``alibabacloud_credentials/provider/profile.py`` and
  ``utils/auth_constant.py`` of credentials-python: ``type`` ``access_key``,
  ``ram_role_arn`` (``access_key_id``, ``access_key_secret``, ``role_arn``,
  ``role_session_name``, ``policy``), ``ecs_ram_role`` (``role_name``), ``oidc_role_arn``
  (``role_arn``, ``oidc_provider_arn``, ``oidc_token_file_path``, ``role_session_name``,
  ``policy``; ``oidc_token_file`` is read too, as the CLI spells it); ``sts``
  (``security_token``) is cms_magic's own, as before.

Neither tool has a profile or ini flag that *allows* IMDSv1 (credentials-python only has a
``disable_imds_v1`` argument and ``ALIBABA_CLOUD_IMDSV1_DISABLED``, since it falls back to v1
by default): here v1 is off unless ``CMS_MAGIC_METADATA_V1=1`` (see
:mod:`cms_magic.credentials.chain`).
"""

from __future__ import annotations

import configparser
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cms_magic.credentials.secret import Secret
from cms_magic.credentials.specs import (
    ASSUME_ROLE,
    ECS_RAM_ROLE,
    OIDC,
    URI,
    Draft,
    Problem,
    Spec,
    shown_uri,
)

__all__ = [
    "CLI_MODES",
    "INI_TYPES",
    "CliRead",
    "Draft",
    "IniRead",
    "Problem",
    "read_cli",
    "read_ini",
]

_DEFAULT_PROFILE = "default"
_UNSUPPORTED_HINT = (
    "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
    "(and ALIBABA_CLOUD_SECURITY_TOKEN)"
)
#: The aliyun CLI modes read here (compared ignoring case, as the CLI's NormalizeMode does).
CLI_MODES: Final = (
    "AK",
    "StsToken",
    "RamRoleArn",
    "EcsRamRole",
    "ChainableRamRoleArn",
    "OIDC",
    "CredentialsURI",
)
#: The credentials.ini types read here.
INI_TYPES: Final = ("access_key", "sts", "ram_role_arn", "ecs_ram_role", "oidc_role_arn")
_MIN_DURATION: Final = 900


@dataclass(frozen=True)
class CliRead:
    """The CLI profile found (or None), the profile names (None: no file), the name sought."""

    found: Draft | Spec | None
    profiles: list[str] | None
    name: str


@dataclass(frozen=True)
class IniRead:
    """The INI profile found (or None) and the enabled profile names (None: no file)."""

    found: Draft | Spec | None
    profiles: list[str] | None


def _read_text(path: Path) -> str | Problem | None:
    """The file's text, ``None`` if it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Problem(f"cannot read {path}: {exc.strerror or type(exc).__name__}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Problem(f"{path} is not valid UTF-8 (byte offset {exc.start})")


def read_cli(path: Path, chosen: str | None, *, display: str | None = None) -> CliRead | Problem:
    """The aliyun CLI config's profile ``chosen`` (else its ``current``, else ``default``);
    ``display`` is how a source string names the file (default: ``path``)."""
    text = _read_text(path)
    if text is None:
        return CliRead(None, None, chosen or _DEFAULT_PROFILE)
    if isinstance(text, Problem):
        return text
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        return Problem(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        )
    except RecursionError:
        return Problem(f"{path} is not valid JSON: nested too deeply")
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return Problem(f"{path} is not valid JSON ({type(exc).__name__})")
    if not isinstance(data, dict):
        return Problem(f"{path} must hold a JSON object, got {type(data).__name__}")
    raw_profiles = data.get("profiles", [])
    if not isinstance(raw_profiles, list):
        return Problem(f"{path}: 'profiles' must be a list")
    profiles: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(raw_profiles):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return Problem(f"{path}: profiles[{i}] must be an object with a string 'name'")
        profiles.setdefault(item["name"], item)
    current = data.get("current")
    name = chosen or (current if isinstance(current, str) and current else _DEFAULT_PROFILE)
    if name not in profiles:
        return CliRead(None, list(profiles), name)
    found = _cli_profile(_Cli(path, str(path) if display is None else display, profiles), name, ())
    return found if isinstance(found, Problem) else CliRead(found, list(profiles), name)


@dataclass(frozen=True)
class _Cli:
    path: Path
    display: str
    profiles: dict[str, dict[str, Any]]


def _text(item: Mapping[str, Any], key: str, where: str) -> str | Problem | None:
    """A string field, stripped; ``None`` when absent or empty."""
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        return Problem(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _seconds(item: Mapping[str, Any], key: str, where: str) -> int | Problem | None:
    """A duration in seconds (a JSON number or a numeric string); 0 or absent: ``None``."""
    value = item.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, str) and not value.strip():
        value = None
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < _MIN_DURATION:
        return Problem(f"{where}: {key!r} must be a whole number of seconds >= {_MIN_DURATION}")
    return value


def _flag(item: Mapping[str, Any], key: str, where: str) -> bool | Problem | None:
    value = item.get(key)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return Problem(f"{where}: {key!r} must be true or false")


def _fields(
    item: Mapping[str, Any], where: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, str | None] | Problem:
    """The string fields ``required`` (a missing one is a problem naming it) and ``optional``."""
    out: dict[str, str | None] = {}
    for key in required + optional:
        value = _text(item, key, where)
        if isinstance(value, Problem):
            return value
        if value is None and key in required:
            return Problem(f"{where} has no {key}")
        out[key] = value
    return out


def _key(item: Mapping[str, Any], where: str, token_key: str | None) -> Draft | Problem:
    """The AccessKey pair of a profile (with its token under ``token_key``, if required)."""
    keys = ("access_key_id", "access_key_secret") + ((token_key,) if token_key else ())
    values: dict[str, str] = {}
    for key in keys:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            return Problem(f"{where} has no {key}")
        values[key] = value
    token = values.get(token_key) if token_key else None
    return Draft(
        values["access_key_id"],
        Secret(values["access_key_secret"]),
        None if token is None else Secret(token),
    )


def _cli_profile(cli: _Cli, name: str, chain: tuple[str, ...]) -> Draft | Spec | Problem:
    item = cli.profiles[name]
    where = f"profile {name!r} in {cli.path}"
    mode = item.get("mode") or "AK"
    if not isinstance(mode, str):
        return Problem(f"{where}: 'mode' must be a string, got {type(mode).__name__}")
    known = {m.lower(): m for m in CLI_MODES}
    canonical = known.get(mode.strip().lower())
    if canonical is None:
        return Problem(
            f"{where} uses mode {mode!r}, which cms_magic does not support; use a profile "
            f"with mode {', '.join(CLI_MODES[:-1])} or {CLI_MODES[-1]}, or {_UNSUPPORTED_HINT}"
        )
    where = f"{where} (mode {canonical})"
    if canonical in ("AK", "StsToken"):
        return _key(item, where, "sts_token" if canonical == "StsToken" else None)
    base: dict[str, Any] = {"where": f"aliyun CLI profile {name!r}", "file": cli.display}
    if canonical == "CredentialsURI":
        fields = _fields(item, where, ("credentials_uri",), ())
        if isinstance(fields, Problem):
            return fields
        uri = fields["credentials_uri"]
        return Spec(URI, label=f"CredentialsURI {shown_uri(uri)}", uri=uri, **base)
    if canonical == "EcsRamRole":
        fields = _fields(item, where, (), ("ram_role_name",))
        if isinstance(fields, Problem):
            return fields
        role = fields["ram_role_name"]
        label = f"EcsRamRole {role!r}" if role else "EcsRamRole, the instance's role"
        return Spec(ECS_RAM_ROLE, label=label, role_name=role, **base)
    sts = _sts_fields(item, where)
    if isinstance(sts, Problem):
        return sts
    if canonical == "OIDC":
        fields = _fields(
            item,
            where,
            ("ram_role_arn", "oidc_provider_arn", "oidc_token_file"),
            ("ram_session_name", "role_session_name"),
        )
        if isinstance(fields, Problem):
            return fields
        return Spec(
            OIDC,
            label=f"OIDC {fields['ram_role_arn']}",
            role_arn=fields["ram_role_arn"],
            provider_arn=fields["oidc_provider_arn"],
            token_file=fields["oidc_token_file"],
            session_name=fields["ram_session_name"] or fields["role_session_name"],
            **sts,
            **base,
        )
    required = ("ram_role_arn",) + (("source_profile",) if canonical != "RamRoleArn" else ())
    fields = _fields(item, where, required, ("ram_session_name", "external_id"))
    if isinstance(fields, Problem):
        return fields
    if canonical == "RamRoleArn":
        signer: Draft | Spec | Problem = _key(item, where, None)
        if isinstance(signer, Draft) and isinstance(item.get("sts_token"), str):
            token = item["sts_token"].strip()
            signer = Draft(signer.key_id, signer.secret, Secret(token) if token else None)
        label = f"RamRoleArn {fields['ram_role_arn']}"
    else:
        source = fields["source_profile"] or ""
        if source == name or source in chain:
            loop = " -> ".join((*chain, name, source))
            return Problem(f"{where}: source_profile makes a loop ({loop})")
        if source not in cli.profiles:
            return Problem(f"{where}: source_profile {source!r} is not a profile in {cli.path}")
        signer = _cli_profile(cli, source, (*chain, name))
        label = f"ChainableRamRoleArn {fields['ram_role_arn']} from profile {source!r}"
    if isinstance(signer, Problem):
        return signer
    return Spec(
        ASSUME_ROLE,
        label=label,
        role_arn=fields["ram_role_arn"],
        session_name=fields["ram_session_name"],
        external_id=fields["external_id"],
        signer=signer,
        **sts,
        **base,
    )


def _sts_fields(item: Mapping[str, Any], where: str) -> dict[str, Any] | Problem:
    """The STS settings of a CLI profile: duration, policy, region, endpoint, VPC."""
    duration = _seconds(item, "expired_seconds", where)
    if isinstance(duration, Problem):
        return duration
    vpc = _flag(item, "enable_vpc", where)
    if isinstance(vpc, Problem):
        return vpc
    fields = _fields(item, where, (), ("policy", "sts_region", "sts_endpoint"))
    if isinstance(fields, Problem):
        return fields
    return {"duration": duration, "vpc": vpc, **fields}


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


def read_ini(
    path: Path, name: str, *, explicit: bool, display: str | None = None
) -> IniRead | Problem:
    """The INI file's profile ``name``, and its enabled profile names.

    A disabled profile (``enable = false``) is skipped, unless it was chosen
    explicitly: then it is a problem. ``display`` is how a source string names the file.
    """
    text = _read_text(path)
    if text is None:
        return IniRead(None, None)
    if isinstance(text, Problem):
        return text
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00no-defaults")
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        return Problem(f"{path} is not a valid INI file: {_describe_ini_error(exc)}")
    names = parser.sections()
    if name not in names:
        return IniRead(None, names)
    section = parser[name]
    where = f"profile [{name}] in {path}"
    try:
        enabled = section.getboolean("enable", fallback=True)
    except ValueError:
        return Problem(f"{where}: 'enable' must be true or false")
    if not enabled:
        if explicit:
            return Problem(f"{where} is disabled (enable = false)")
        names.remove(name)
        return IniRead(None, names)
    found = _ini_profile(dict(section), name, where, str(path) if display is None else display)
    return found if isinstance(found, Problem) else IniRead(found, names)


def _ini_profile(
    section: dict[str, str], name: str, where: str, display: str
) -> Draft | Spec | Problem:
    kind = section.get("type", "access_key").strip().lower()
    if kind not in INI_TYPES:
        return Problem(
            f"{where} has type {kind!r}, which cms_magic does not support; use type "
            f"{', '.join(INI_TYPES[:-1])} or {INI_TYPES[-1]}, or {_UNSUPPORTED_HINT}"
        )
    where = f"{where} (type {kind})"
    if kind in ("access_key", "sts"):
        return _key(section, where, "security_token" if kind == "sts" else None)
    base: dict[str, Any] = {"where": f"credentials file profile {name!r}", "file": display}
    if kind == "ecs_ram_role":
        fields = _fields(section, where, (), ("role_name",))
        if isinstance(fields, Problem):
            return fields
        role = fields["role_name"]
        label = f"ecs_ram_role {role!r}" if role else "ecs_ram_role, the instance's role"
        return Spec(ECS_RAM_ROLE, label=label, role_name=role, **base)
    if kind == "ram_role_arn":
        signer = _key(section, where, None)
        if isinstance(signer, Problem):
            return signer
        fields = _fields(section, where, ("role_arn",), ("role_session_name", "policy"))
        if isinstance(fields, Problem):
            return fields
        return Spec(
            ASSUME_ROLE,
            label=f"ram_role_arn {fields['role_arn']}",
            role_arn=fields["role_arn"],
            session_name=fields["role_session_name"],
            policy=fields["policy"],
            signer=signer,
            **base,
        )
    fields = _fields(
        section,
        where,
        ("role_arn", "oidc_provider_arn"),
        ("oidc_token_file_path", "oidc_token_file", "role_session_name", "policy"),
    )
    if isinstance(fields, Problem):
        return fields
    token_file = fields["oidc_token_file_path"] or fields["oidc_token_file"]
    if token_file is None:
        return Problem(f"{where} has no oidc_token_file_path")
    return Spec(
        OIDC,
        label=f"oidc_role_arn {fields['role_arn']}",
        role_arn=fields["role_arn"],
        provider_arn=fields["oidc_provider_arn"],
        token_file=token_file,
        session_name=fields["role_session_name"],
        policy=fields["policy"],
        **base,
    )
