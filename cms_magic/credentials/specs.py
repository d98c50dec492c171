"""What a credentials source says, as data: a static key (:class:`Draft`), a refreshing
source (:class:`Spec`), or what is wrong (:class:`Problem`).

The readers of files and of the environment produce these and never raise; the chain
(:mod:`cms_magic.credentials.static`) turns a :class:`Draft` into
:class:`~cms_magic.credentials.accesskey.Credentials`, a :class:`Spec` into a
:class:`~cms_magic.credentials.refreshing.RefreshingCredentials`
(:mod:`cms_magic.credentials.chain`), and raises a :class:`Problem` from a frame that holds
no file text. Nothing here contacts anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from cms_magic.credentials.secret import Secret
from cms_magic.errors import CredentialsError

__all__ = [
    "ASSUME_ROLE",
    "CONFIGURING_VARIABLES",
    "ECS_RAM_ROLE",
    "ENV_CREDENTIALS_URI",
    "ENV_ECS_METADATA",
    "ENV_ECS_METADATA_DISABLED",
    "ENV_OIDC_PROVIDER_ARN",
    "ENV_OIDC_TOKEN_FILE",
    "ENV_ROLE_ARN",
    "ENV_ROLE_SESSION_NAME",
    "OIDC",
    "URI",
    "Draft",
    "Kind",
    "Problem",
    "Spec",
    "shown_uri",
]

#: The environment variables of the refreshing sources (the official libraries' names).
ENV_ROLE_ARN: Final = "ALIBABA_CLOUD_ROLE_ARN"
ENV_OIDC_PROVIDER_ARN: Final = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
ENV_OIDC_TOKEN_FILE: Final = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"  # noqa: S105 - a variable name
ENV_ROLE_SESSION_NAME: Final = "ALIBABA_CLOUD_ROLE_SESSION_NAME"
ENV_CREDENTIALS_URI: Final = "ALIBABA_CLOUD_CREDENTIALS_URI"
ENV_ECS_METADATA: Final = "ALIBABA_CLOUD_ECS_METADATA"
ENV_ECS_METADATA_DISABLED: Final = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"

#: Variables whose presence says the real cloud's credentials are configured here (a skin
#: then never assumes the local emulator): the static keys, a profile or credentials file,
#: and each refreshing source's (OIDC's role ARN or token file, the URI, the ECS role name).
CONFIGURING_VARIABLES: Final = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    ENV_ROLE_ARN,
    ENV_OIDC_TOKEN_FILE,
    ENV_CREDENTIALS_URI,
    ENV_ECS_METADATA,
)

Kind = Literal["assume_role", "oidc", "uri", "ecs_ram_role"]
ASSUME_ROLE: Final = "assume_role"
OIDC: Final = "oidc"
URI: Final = "uri"
ECS_RAM_ROLE: Final = "ecs_ram_role"


@dataclass(frozen=True)
class Problem:
    """What is wrong, to be raised by a caller whose frame holds no raw text."""

    message: str
    option: str | None = None

    def error(self) -> CredentialsError:
        return CredentialsError(self.message, option=self.option)


@dataclass(frozen=True)
class Draft:
    """A profile's key as read (checked by :class:`~cms_magic.credentials.Credentials`).
    The repr shows neither the secret nor the token (they are :class:`Secret` values)."""

    key_id: str
    secret: Secret
    token: Secret | None


@dataclass(frozen=True, repr=False)
class Spec:
    """A refreshing source as configured, not yet contacted.

    ``kind`` says which fetch: ``assume_role`` (STS AssumeRole signed with ``signer``: the
    profile's own key, or the source profile's, static or refreshing), ``oidc`` (STS
    AssumeRoleWithOIDC with the token in ``token_file``), ``uri`` (GET ``uri``) or
    ``ecs_ram_role`` (the instance metadata; ``role_name`` ``None``: the instance's role).
    ``where`` names the place (``aliyun CLI profile 'ci'``), ``label`` the mode and role
    (``RamRoleArn acs:ram::1:role/x``), ``file`` the file shown after them (or ``None``).
    ``duration`` ``None`` is the default lifetime; the STS fields ``None`` fall back to the
    settings (see :func:`cms_magic.credentials.chain.sts_host`).
    """

    kind: Kind
    where: str
    label: str
    file: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    duration: int | None = None
    policy: str | None = None
    external_id: str | None = None
    sts_region: str | None = None
    sts_endpoint: str | None = None
    vpc: bool | None = None
    signer: Draft | Spec | None = None
    provider_arn: str | None = None
    token_file: str | None = None
    uri: str | None = None
    role_name: str | None = None

    def __repr__(self) -> str:
        # Only what ``source`` shows: a URI's query or user info may hold a key.
        return f"Spec({self.kind!r}, {self.source!r})"

    @property
    def source(self) -> str:
        """``aliyun CLI profile 'ci' (RamRoleArn acs:ram::1:role/x, ~/.aliyun/config.json)``."""
        detail = self.label if self.file is None else f"{self.label}, {self.file}"
        return f"{self.where} ({detail})"


def shown_uri(uri: str | None) -> str:
    """A URI as a source string shows it: no user info, no query (either may hold a key)."""
    try:
        parts = urlsplit(uri or "")
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a malformed URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"
