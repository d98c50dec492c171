"""Where the AccessKey comes from: arguments, the environment, OIDC / RRSA, a credentials
URI, the aliyun CLI's config, ``credentials.ini`` and, when asked for, the ECS RAM role (see
:mod:`cms_magic.credentials.static` for the chain)."""

from cms_magic.credentials.refreshing import RefreshingCredentials
from cms_magic.credentials.secret import Secret
from cms_magic.credentials.static import (
    ENV_ACCESS_KEY_ID,
    ENV_ACCESS_KEY_SECRET,
    ENV_CREDENTIALS_FILE,
    ENV_PROFILE,
    ENV_SECURITY_TOKEN,
    Credentials,
    ResolvedCredentials,
    mask,
    resolve_credentials,
)

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
