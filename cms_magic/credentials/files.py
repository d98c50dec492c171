"""Reading the aliyun CLI's ``config.json`` and ``credentials.ini`` without a secret on a
traceback.

A file's text, its parsed JSON and its profile dicts are locals of the readers
here, and a parser's exception (a ``JSONDecodeError`` keeps the whole document in
``.doc``; configparser's errors keep the offending line) is caught in them. So the
readers never raise: they return what they found, the secret and token already
wrapped in a :class:`~cms_magic.credentials.secret.Secret`, or a :class:`Problem`
that their caller raises once these frames, and the exceptions they caught, are
gone. Messages name the path, the line and the problem, never a value.
"""

from __future__ import annotations

import configparser
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cms_magic.credentials.secret import Secret
from cms_magic.errors import CredentialsError

__all__ = ["CliRead", "Draft", "IniRead", "Problem", "read_cli", "read_ini"]

_DEFAULT_PROFILE = "default"
_UNSUPPORTED_HINT = (
    "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
    "(and ALIBABA_CLOUD_SECURITY_TOKEN)"
)


@dataclass(frozen=True)
class Problem:
    """What is wrong, to be raised by a caller whose frame holds no raw text."""

    message: str
    option: str | None = None

    def error(self) -> CredentialsError:
        return CredentialsError(self.message, option=self.option)


@dataclass(frozen=True)
class Draft:
    """A profile's key as read (checked by :class:`~cms_magic.credentials.Credentials`)."""

    key_id: str
    secret: Secret
    token: Secret | None


@dataclass(frozen=True)
class CliRead:
    """The CLI profile found (or None), the profile names (None: no file), the name sought."""

    found: Draft | None
    profiles: list[str] | None
    name: str


@dataclass(frozen=True)
class IniRead:
    """The INI profile found (or None) and the enabled profile names (None: no file)."""

    found: Draft | None
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


def read_cli(path: Path, chosen: str | None) -> CliRead | Problem:
    """The aliyun CLI config's profile ``chosen`` (else its ``current``, else ``default``)."""
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
    item = profiles.get(name)
    if item is None:
        return CliRead(None, list(profiles), name)
    found = _cli_profile(path, name, item)
    return found if isinstance(found, Problem) else CliRead(found, list(profiles), name)


def _cli_profile(path: Path, name: str, item: dict[str, Any]) -> Draft | Problem:
    where = f"profile {name!r} in {path}"
    mode = item.get("mode") or "AK"
    if not isinstance(mode, str):
        return Problem(f"{where}: 'mode' must be a string, got {type(mode).__name__}")
    if mode.lower() not in ("ak", "ststoken"):
        return Problem(
            f"{where} uses mode {mode!r}, which cms_magic does not support; use a profile "
            f"with mode AK or StsToken, or {_UNSUPPORTED_HINT}"
        )
    sts = mode.lower() == "ststoken"
    keys = ["access_key_id", "access_key_secret"] + (["sts_token"] if sts else [])
    values: dict[str, str] = {}
    for key in keys:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            return Problem(f"{where} (mode {mode}) has no {key}")
        values[key] = value
    token = values.get("sts_token")
    return Draft(
        values["access_key_id"],
        Secret(values["access_key_secret"]),
        None if token is None else Secret(token),
    )


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


def read_ini(path: Path, name: str, *, explicit: bool) -> IniRead | Problem:
    """The INI file's profile ``name``, and its enabled profile names.

    A disabled profile (``enable = false``) is skipped, unless it was chosen
    explicitly: then it is a problem.
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
    kind = section.get("type", "access_key").strip().lower()
    if kind not in ("access_key", "sts"):
        return Problem(
            f"{where} has type {kind!r}, which cms_magic does not support; use type "
            f"access_key or sts, or {_UNSUPPORTED_HINT}"
        )
    keys = ["access_key_id", "access_key_secret"] + (["security_token"] if kind == "sts" else [])
    values: dict[str, str] = {}
    for key in keys:
        value = section.get(key, "").strip()
        if not value:
            return Problem(f"{where} (type {kind}) has no {key}")
        values[key] = value
    token = values.get("security_token")
    return IniRead(
        Draft(
            values["access_key_id"],
            Secret(values["access_key_secret"]),
            None if token is None else Secret(token),
        ),
        names,
    )
