"""The refreshing steps of the chain: what the environment configures (OIDC / RRSA, a
credentials URI, an ECS RAM role asked for by name), the settings the sources use, and
turning a :class:`~cms_magic.credentials.specs.Spec` into a
:class:`~cms_magic.credentials.refreshing.RefreshingCredentials`.

The chain's order is documented in :mod:`cms_magic.credentials.static`, which calls this.

Settings, each first found wins:

- **STS endpoint** (a host or a URL): the ``sts_endpoint`` argument;
  ``CMS_MAGIC_STS_ENDPOINT``; the CLI profile's ``sts_endpoint``; else
  ``sts.<region>.aliyuncs.com`` (``sts-vpc.`` with the profile's ``enable_vpc`` or
  ``ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true``), the region being the profile's
  ``sts_region``, ``ALIBABA_CLOUD_STS_REGION``, the ``region`` argument (a skin's target
  region), ``ALIBABA_CLOUD_REGION_ID``; with none, ``sts.aliyuncs.com``.
- **Metadata base URL**, used only when an ECS RAM role was asked for: the
  ``metadata_url`` argument; ``CMS_MAGIC_METADATA_URL``; else ``http://100.100.100.200``.
  ``ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`` (the official libraries' switch) refuses it.
- **IMDSv1** (reading the metadata without a v2 token): the ``allow_imds_v1`` argument;
  ``CMS_MAGIC_METADATA_V1=1``; else not allowed.
- **Session name**: the profile's; ``ALIBABA_CLOUD_ROLE_SESSION_NAME``; else ``cms-magic``.
  **Duration**: the CLI profile's ``expired_seconds``, else 3600 s.

Building a source contacts nothing (the first ``current()`` fetches). The secret AssumeRole
signs with and the OIDC token (read once here to check the file, and again at each fetch)
are given to the source as ``known_secrets``, so no error text shows them. Helpers that hold
an environment mapping or a file's text return a value or a
:class:`~cms_magic.credentials.specs.Problem`, never raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from cms_magic.credentials.accesskey import Credentials
from cms_magic.credentials.refreshing import RefreshingCredentials, Triple
from cms_magic.credentials.secret import Secret
from cms_magic.credentials.specs import (
    ASSUME_ROLE,
    ECS_RAM_ROLE,
    ENV_CREDENTIALS_URI,
    ENV_ECS_METADATA,
    ENV_ECS_METADATA_DISABLED,
    ENV_OIDC_PROVIDER_ARN,
    ENV_OIDC_TOKEN_FILE,
    ENV_ROLE_ARN,
    ENV_ROLE_SESSION_NAME,
    OIDC,
    URI,
    Draft,
    Problem,
    Spec,
    shown_uri,
)
from cms_magic.settings import (
    DEFAULT_METADATA_URL,
    ENV_METADATA_URL,
    ENV_METADATA_V1,
    ENV_REGION,
    ENV_STS_ENDPOINT,
    ENV_STS_REGION,
    ENV_STS_VPC,
)

if TYPE_CHECKING:
    from cms_magic.credentials.refreshing import Fetch

__all__ = [
    "ENV_CREDENTIALS_URI",
    "ENV_ECS_METADATA",
    "ENV_ECS_METADATA_DISABLED",
    "ENV_OIDC_PROVIDER_ARN",
    "ENV_OIDC_TOKEN_FILE",
    "ENV_ROLE_ARN",
    "ENV_ROLE_SESSION_NAME",
    "EnvironmentSources",
    "Settings",
    "build",
    "read_environment_sources",
]

_OIDC_VARIABLES: Final = (ENV_ROLE_ARN, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE)
_DEFAULT_SESSION: Final = "cms-magic"
_DEFAULT_DURATION: Final = 3600
_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    """What the refreshing sources use besides their profile (see the module for the order).

    ``sts_endpoint``/``metadata_url`` are the explicit values (argument or variable, else
    ``None``); ``region`` the fallback STS region; ``client`` an
    :class:`httpx.AsyncClient` or transport for every fetch (tests: an
    :class:`httpx.MockTransport`); ``clock`` the wall clock of signatures and expiry.
    """

    sts_endpoint: str | None = None
    region: str | None = None
    vpc: bool = False
    session_name: str | None = None
    metadata_url: str | None = None
    metadata_disabled: bool = False
    allow_imds_v1: bool = False
    #: A malformed metadata setting, raised only if an ECS RAM role is built.
    metadata_problem: Problem | None = None
    client: Any = None
    clock: Callable[[], float] | None = None


@dataclass(frozen=True)
class EnvironmentSources:
    """What the environment configures for steps 3, 4 and 7 (each a Spec, or None), and a
    note on a partial OIDC configuration (for the "looked in" list)."""

    oidc: Spec | None
    uri: Spec | None
    ecs: Spec | None
    oidc_note: str


def _flag(value: str, name: str) -> bool | Problem:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return Problem("must be 1/true or 0/false", name)


def read_environment_sources(
    environ: Mapping[str, str],
    *,
    region: str | None,
    sts_endpoint: str | None,
    metadata_url: str | None,
    allow_imds_v1: bool | None,
    client: Any,
    clock: Callable[[], float] | None,
) -> tuple[EnvironmentSources, Settings]:
    """The environment's refreshing sources and the settings, from ``environ`` and the
    explicit arguments. Never raises: the mapping (which may hold any secret of the
    process) stays in this frame; a malformed setting is kept for the source that reads it."""

    def value(name: str) -> str:
        text = environ.get(name)
        return text.strip() if isinstance(text, str) else ""

    # The official libraries' switches mean "true" or not (as they read them); ours is
    # checked, and a wrong value matters only to the source that reads it (the ECS role).
    v1 = (
        allow_imds_v1
        if allow_imds_v1 is not None
        else _flag(value(ENV_METADATA_V1), ENV_METADATA_V1)
    )
    settings = Settings(
        sts_endpoint=(sts_endpoint or "").strip() or value(ENV_STS_ENDPOINT) or None,
        region=value(ENV_STS_REGION) or (region or "").strip() or value(ENV_REGION) or None,
        vpc=value(ENV_STS_VPC).lower() == "true",
        session_name=value(ENV_ROLE_SESSION_NAME) or None,
        metadata_url=(metadata_url or "").strip() or value(ENV_METADATA_URL) or None,
        metadata_disabled=value(ENV_ECS_METADATA_DISABLED).lower() == "true",
        allow_imds_v1=v1 if isinstance(v1, bool) else False,
        metadata_problem=v1 if isinstance(v1, Problem) else None,
        client=client,
        clock=clock,
    )
    role_arn, provider_arn, token_file = (value(n) for n in _OIDC_VARIABLES)
    oidc = None
    if role_arn and provider_arn and token_file:
        oidc = Spec(
            OIDC,
            where="environment",
            label=f"OIDC {role_arn}, token file {token_file}",
            role_arn=role_arn,
            provider_arn=provider_arn,
            token_file=token_file,
        )
    unset = [n for n in _OIDC_VARIABLES if not value(n)]
    note = "not set" if len(unset) == 3 else f"{', '.join(unset)} not set" if unset else "set"
    uri_text = value(ENV_CREDENTIALS_URI)
    uri = None
    if uri_text:
        label = f"{ENV_CREDENTIALS_URI} {shown_uri(uri_text)}"
        uri = Spec(URI, where="environment", label=label, uri=uri_text)
    role = value(ENV_ECS_METADATA)
    ecs = None
    if role:
        ecs = Spec(
            ECS_RAM_ROLE,
            where="environment",
            label=f"{ENV_ECS_METADATA}, ECS RAM role {role!r}",
            role_name=role,
        )
    return EnvironmentSources(oidc, uri, ecs, note), settings


# ---- building ----------------------------------------------------------------------------


def _read_token(path: str) -> Secret | Problem:
    """The OIDC token file's text, wrapped; or what is wrong (never the text)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return Problem(f"the OIDC token file {path} does not exist")
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(f"cannot read the OIDC token file {path} ({type(exc).__name__})")
    if not text:
        return Problem(f"the OIDC token file {path} is empty")
    return Secret(text)


def _sts_host(spec: Spec, settings: Settings) -> str:
    from cms_magic.credentials.sources import sts_endpoint

    if settings.sts_endpoint:
        return settings.sts_endpoint
    if spec.sts_endpoint:
        return spec.sts_endpoint
    vpc = spec.vpc if spec.vpc is not None else settings.vpc
    return sts_endpoint(spec.sts_region or settings.region, vpc=vpc, environ={})


def _metadata_base(settings: Settings) -> str | Problem:
    if settings.metadata_problem is not None:
        return settings.metadata_problem
    if settings.metadata_disabled:
        return Problem(
            "an ECS RAM role was asked for, but the instance metadata is disabled by "
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true"
        )
    base = settings.metadata_url or DEFAULT_METADATA_URL
    try:
        parts = urlsplit(base)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        return Problem("must be an http(s) URL", ENV_METADATA_URL)
    return base


def build(spec: Spec, settings: Settings) -> RefreshingCredentials | Problem:
    """The refreshing source ``spec`` configures; nothing is contacted."""
    from cms_magic.credentials import sources

    session = spec.session_name or settings.session_name or _DEFAULT_SESSION
    duration = spec.duration or _DEFAULT_DURATION
    known: list[Secret] = []
    fetch: Fetch
    if spec.kind == ASSUME_ROLE:
        if spec.signer is None or spec.role_arn is None:  # pragma: no cover - readers ensure
            return Problem(f"{spec.source}: no key to sign AssumeRole with")
        kwargs: dict[str, Any] = {
            "session_name": session,
            "duration": duration,
            "sts_endpoint": _sts_host(spec, settings),
            "policy": spec.policy,
            "external_id": spec.external_id,
            "client": settings.client,
            "clock": settings.clock,
        }
        if isinstance(spec.signer, Draft):
            signer = Credentials(
                spec.signer.key_id, spec.signer.secret, spec.signer.token, source=spec.where
            )
            known += [signer.access_key_secret] + (
                [signer.security_token] if signer.security_token is not None else []
            )
            fetch = sources.assume_role(signer, spec.role_arn, **kwargs)
        else:
            inner = build(spec.signer, settings)
            if isinstance(inner, Problem):
                return inner
            fetch = _chained(inner, spec.role_arn, kwargs)
        key = spec.role_arn
    elif spec.kind == OIDC:
        if spec.role_arn is None or spec.provider_arn is None or spec.token_file is None:
            return Problem(f"{spec.source}: incomplete OIDC configuration")  # pragma: no cover
        token = _read_token(spec.token_file)
        if isinstance(token, Problem):
            return Problem(f"{spec.source}: {token.message}")
        known.append(token)
        fetch = sources.assume_role_with_oidc(
            spec.role_arn,
            spec.provider_arn,
            Path(spec.token_file).expanduser(),
            session_name=session,
            duration=duration,
            sts_endpoint=_sts_host(spec, settings),
            policy=spec.policy,
            client=settings.client,
            clock=settings.clock,
        )
        key = spec.role_arn
    elif spec.kind == URI:
        checked = _check_uri(spec)
        if isinstance(checked, Problem):
            return checked
        fetch = sources.credentials_uri(checked, client=settings.client)
        known += _uri_secrets(checked)
        key = f"uri:{shown_uri(checked)}"
    else:
        base = _metadata_base(settings)
        if isinstance(base, Problem):
            return base
        fetch = sources.ecs_ram_role(
            spec.role_name,
            metadata_base=base,
            allow_v1=settings.allow_imds_v1,
            client=settings.client,
        )
        key = f"ecs-ram-role:{spec.role_name or '(instance role)'}@{shown_uri(base)}"
    options: dict[str, Any] = {} if settings.clock is None else {"clock": settings.clock}
    return RefreshingCredentials(
        fetch, source=spec.source, quota_key=key, known_secrets=known, **options
    )


def _check_uri(spec: Spec) -> str | Problem:
    uri = spec.uri or ""
    try:
        parts = urlsplit(uri)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        return Problem(f"{spec.source}: the credentials URI must be an http(s) URL")
    return uri


def _uri_secrets(uri: str) -> list[Secret]:
    """What in a credentials URI may be a key: its password, its user info as the Basic
    header carries it, its query and each query value (scrubbed from any error)."""
    import base64
    from urllib.parse import parse_qsl, unquote

    parts = urlsplit(uri)
    found: list[str] = []
    if parts.password:
        found.append(unquote(parts.password))
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        found.append(base64.b64encode(userinfo.encode("utf-8")).decode("ascii"))
    if parts.query:
        found.append(parts.query)
        found += [v for _, v in parse_qsl(parts.query, keep_blank_values=True) if len(v) >= 4]
    return [Secret(text) for text in found if text]


def _chained(inner: RefreshingCredentials, role_arn: str, kwargs: dict[str, Any]) -> Fetch:
    """AssumeRole signed with the triple ``inner`` hands out at each fetch (a source profile
    that is itself refreshing: an ECS role, OIDC, a URI, another role)."""
    from cms_magic.credentials import sources

    async def fetch() -> Triple:
        triple = await inner.current()
        signer = triple.to_credentials(inner.source)
        return await sources.assume_role(signer, role_arn, **kwargs)()

    return fetch
