"""Where a send goes: the ONE place that turns what a user gave into a :class:`Target`.

What a user may give, in any skin (the Python API, the magic, the panel, the
command line), and what it means:

============================  ==============================================
``local`` (any case)          the embedded emulator on 127.0.0.1 (demo key)
``public``                    the public endpoint (the document lists one)
a region id, ``cn-hangzhou``  that region: its public endpoint, or its internal
                              one with ``internal=True`` (inside Alibaba Cloud)
``http(s)://host[:port]``     that endpoint; a catalog URL is named as such
============================  ==============================================

Where it is read from, first found wins: the explicit argument (``endpoint=``,
``region=``; a flag), then the skin's configuration (``%config CmsMagic.endpoint``
/ ``.region``), then the environment (:data:`~cms_magic.settings.ENV_ENDPOINT`,
then :data:`~cms_magic.settings.ENV_REGION`).

When nothing names a target: the local emulator, *unless* credentials for the
real cloud are configured (the AccessKey environment variables, a profile). The
emulator is then the harmless default of a first try, and a user who set up
the cloud is never silently sent to a stand-in: they get an error that says how
to name a region. Every summary names the target, so the default is never hidden.

Errors are :class:`~cms_magic.errors.TargetError` (and
:class:`~cms_magic.errors.UnknownRegionError`) with the ``option`` field set,
so each skin names its own flag or control.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from cms_magic import regions
from cms_magic.errors import ConfigError, TargetError, UnknownRegionError
from cms_magic.settings import ENV_ENDPOINT, ENV_REGION

if TYPE_CHECKING:
    from cms_magic.credentials import Credentials
    from cms_magic.credentials.refreshing import RefreshingCredentials

__all__ = [
    "LOCAL",
    "PUBLIC",
    "Target",
    "TargetKind",
    "parse_target",
    "resolve_target",
]

#: The word for the embedded emulator, accepted in any case.
LOCAL: Final = "local"
#: The word for the public endpoint.
PUBLIC: Final = "public"

TargetKind = Literal["local", "public", "region", "url"]

_REGION_LIKE = re.compile(r"^[a-z]{2,3}-[a-z0-9-]+$", re.IGNORECASE)
_URL_LIKE = re.compile(r"[/:.@\s]")

#: Environment variables that show credentials for the real cloud are configured.
_CLOUD_CREDENTIAL_VARIABLES: Final = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
)

_HOW_TO_NAME: Final = (
    "name a region (e.g. 'cn-hangzhou'), 'public', an endpoint URL, or 'local' for the "
    "local emulator"
)


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved target: where requests go, how to name it, which credentials apply.

    ``url`` is the base URL for a cloud or explicit target, and ``None`` for the
    local emulator until :meth:`resolve_url` starts it. ``source`` says where the
    choice came from (``"argument"``, ``"--endpoint"``, ``"%config CmsMagic.region"``,
    ``"environment (CMS_MAGIC_ENDPOINT)"``, ``"default"``...).
    """

    kind: TargetKind
    url: str | None
    region: str | None = None
    internal: bool = False
    source: str = "argument"

    @property
    def is_local(self) -> bool:
        """The embedded emulator (or a URL that is the running embedded emulator's)."""
        if self.kind == "local":
            return True
        if self.url is None:
            return False
        from cms_magic.emulator import embedded_running

        running = embedded_running()
        return running is not None and running.url == self.url

    @property
    def leaves_machine(self) -> bool:
        """Whether events sent here leave this machine (any non-loopback host)."""
        if self.kind == "local":
            return False
        return self.url is None or not regions.is_loopback_url(self.url)

    @property
    def label(self) -> str:
        """How a summary names it: ``the local emulator``, ``region cn-hangzhou (internal)``..."""
        if self.kind == "local":
            return "the local emulator"
        if self.kind == "public":
            return f"the public endpoint {self.url}"
        if self.kind == "region":
            internal = "internal endpoint" if self.internal else "public endpoint"
            return f"region {self.region} ({internal} {self.url})"
        known = _catalog_name(self.url or "")
        return f"{self.url} ({known})" if known else str(self.url)

    @property
    def where(self) -> str:
        """A short phrase about where events go, to follow :attr:`label` on a status line."""
        if self.is_local:
            return "nothing leaves this machine"
        if not self.leaves_machine:
            return "a loopback address: nothing leaves this machine"
        if _catalog_name(self.url or "") or self.kind in ("public", "region"):
            return "Alibaba Cloud: events leave this machine"
        return "a custom endpoint: events leave this machine"

    def resolve_url(self) -> str:
        """The base URL; for the local emulator this starts it (once per process)."""
        if self.url is not None:
            return self.url
        from cms_magic.emulator import embedded

        return embedded().url

    def credentials(
        self,
        *,
        profile: str | None = None,
        explicit: Credentials | RefreshingCredentials | None = None,
    ) -> Credentials | RefreshingCredentials:
        """The credentials that apply: ``explicit`` if given; the emulator's demo key for the
        local emulator (and a loopback URL, unless a ``profile`` is named: an emulator there
        may hold a role for it); else what :func:`~cms_magic.resolve_credentials` finds."""
        if explicit is not None:
            return explicit
        if self.is_local and (self.kind == "local" or profile is None):
            if profile is not None:
                raise ConfigError(
                    "does not apply to the local emulator, which takes its own demo key",
                    option="profile",
                    value=profile,
                )
            from cms_magic.emulator import demo_credentials

            return demo_credentials()
        from cms_magic.credentials import resolve_credentials

        return resolve_credentials(profile=profile, region=self.region)


def _catalog_name(url: str) -> str | None:
    if url == regions.PUBLIC_ENDPOINT:
        return "the public endpoint"
    for region in regions.regions():
        if url == region.internal_endpoint:
            return f"region {region.id}'s internal endpoint"
    return None


def parse_target(
    value: str,
    *,
    internal: bool = False,
    option: str = "endpoint",
    source: str = "argument",
) -> Target:
    """What one value means: ``local``, ``public``, a region id or an endpoint URL.

    ``option`` names the field in errors (the skin words it as its flag or label).
    """
    text = str(value).strip()
    if not text:
        raise TargetError(f"is empty; {_HOW_TO_NAME}", option=option, value=value)
    lowered = text.lower()
    if lowered in (LOCAL, PUBLIC) or "://" not in text:
        return _word_target(text, internal=internal, option=option, source=source)
    if internal:
        raise TargetError(
            "applies to a region id, not to an endpoint URL", option="internal", value=True
        )
    url = regions.normalise_url(text, option=option)  # names the URL rule broken
    for region in regions.regions():
        if url == region.internal_endpoint:
            return Target("region", url, region=region.id, internal=True, source=source)
    if url == regions.PUBLIC_ENDPOINT:
        return Target("public", url, source=source)
    return Target("url", url, source=source)


def _word_target(text: str, *, internal: bool, option: str, source: str) -> Target:
    lowered = text.lower()
    if lowered in (LOCAL, PUBLIC):
        if internal:
            raise TargetError(
                f"applies to a region id, not to {lowered!r}",
                option="internal",
                value=True,
            )
        if lowered == LOCAL:
            return Target("local", None, source=source)
        return Target("public", regions.PUBLIC_ENDPOINT, source=source)
    region_ids = regions.region_ids()
    match = next((r for r in region_ids if r == lowered), None)
    if match is not None:
        url = regions.endpoint(match, internal=internal)
        return Target("region", url, region=match, internal=internal, source=source)
    if _REGION_LIKE.match(text) and not _URL_LIKE.search(text):
        raise UnknownRegionError(text, region_ids, option=option)
    if _URL_LIKE.search(text):
        raise TargetError(
            "is not a URL: an endpoint URL starts with http:// or https://",
            option=option,
            value=text,
        )
    raise TargetError(f"is not a region id or a URL; {_HOW_TO_NAME}", option=option, value=text)


def resolve_target(
    endpoint: str | None = None,
    *,
    region: str | None = None,
    internal: bool = False,
    configured_endpoint: tuple[str, str] | None = None,
    configured_region: tuple[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    credentials_given: bool = False,
    home: Path | None = None,
) -> Target:
    """The target for a send, from everything a user may have given (see the module doc).

    ``endpoint`` and ``region`` are the explicit values (arguments or flags; at
    most one). ``configured_endpoint`` / ``configured_region`` are a skin's
    configuration as ``(value, source)``. ``environ`` defaults to
    ``os.environ``; ``home`` the home directory whose credential files count as
    "configured" (default: ``Path.home()``). ``credentials_given`` says the caller passed credentials
    explicitly (then nothing is assumed to be the emulator).
    """
    env = os.environ if environ is None else environ
    if endpoint is not None and region is not None:
        raise TargetError(
            "give an endpoint or a region, not both", option="endpoint", value=endpoint
        )
    if endpoint is not None:
        return parse_target(endpoint, internal=internal, option="endpoint")
    if region is not None:
        return _region_target(region, internal=internal, option="region", source="argument")
    if configured_endpoint is not None:
        value, source = configured_endpoint
        return parse_target(value, internal=internal, option="endpoint", source=source)
    if configured_region is not None:
        value, source = configured_region
        return _region_target(value, internal=internal, option="region", source=source)
    for variable, is_region in ((ENV_ENDPOINT, False), (ENV_REGION, True)):
        value = env.get(variable, "").strip()
        if value:
            source = f"environment ({variable})"
            if is_region:
                return _region_target(value, internal=internal, option=variable, source=source)
            return parse_target(value, internal=internal, option=variable, source=source)
    if internal:
        raise TargetError(
            "needs a region id to choose its internal endpoint",
            option="internal",
            value=True,
        )
    from cms_magic.credentials.specs import CONFIGURING_VARIABLES

    variables = dict.fromkeys((*_CLOUD_CREDENTIAL_VARIABLES, *CONFIGURING_VARIABLES))
    configured = [v for v in variables if env.get(v, "").strip()]
    configured += [str(p) for p in _credential_files(env, home) if p.is_file()]
    if credentials_given or configured:
        because = "credentials were given" if credentials_given else f"{configured[0]} exists"
        if configured and not configured[0].startswith("/"):
            because = f"{configured[0]} is set"
        raise TargetError(
            f"no target is configured, and {because}, so the local emulator is not assumed; "
            f"{_HOW_TO_NAME} (or set {ENV_REGION} or {ENV_ENDPOINT})"
        )
    return Target("local", None, source="default (no region, endpoint or credentials configured)")


def _credential_files(environ: Mapping[str, str], home: Path | None) -> list[Path]:
    """The credential files that show the real cloud is set up (the aliyun CLI's, the ini)."""
    base = Path.home() if home is None else home
    return [base / ".aliyun" / "config.json", base / ".alibabacloud" / "credentials.ini"]


def _region_target(value: str, *, internal: bool, option: str, source: str) -> Target:
    text = str(value).strip()
    lowered = text.lower()
    if lowered in (LOCAL, PUBLIC) or "://" in text:
        # A region setting that holds another kind of target still means that target.
        return parse_target(text, internal=internal, option=option, source=source)
    try:
        regions.get_region(lowered)
    except UnknownRegionError:
        raise UnknownRegionError(text, regions.region_ids(), option=option) from None
    url = regions.endpoint(lowered, internal=internal)
    return Target("region", url, region=lowered, internal=internal, source=source)
