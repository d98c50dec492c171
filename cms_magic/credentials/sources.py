"""The refreshing sources (issue 14, "Sources"): each factory gives a ``fetch`` coroutine
function returning a :class:`~cms_magic.credentials.refreshing.Triple`, for
:class:`~cms_magic.credentials.refreshing.RefreshingCredentials`.

- :func:`assume_role`: STS ``AssumeRole``, RPC v2 signed with the caller's key.
- :func:`assume_role_with_oidc`: STS ``AssumeRoleWithOIDC`` (anonymous), the token file
  re-read at each fetch.
- :func:`credentials_uri`: ``GET`` of a credentials service.
- :func:`ecs_ram_role`: the instance metadata (IMDSv2 token first; v1 only if allowed).

Every call goes through an injected :class:`httpx.AsyncClient` (or a transport; else a
client made per fetch) with bounded timeouts. Nothing here runs on import, and nothing
contacts an address on its own: a factory only builds a function (which source the
environment and the files configure is :mod:`cms_magic.credentials.chain`'s). Errors are
:class:`~cms_magic.errors.CredentialsError` naming the source, the service's code and
message, scrubbed of every secret and token; URLs (which carry an OIDC token or a
signature) are never put in them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx

from cms_magic.credentials.refreshing import Fetch, Triple
from cms_magic.credentials.secret import Secret
from cms_magic.credentials.specs import (
    ENV_CREDENTIALS_URI,
    ENV_ECS_METADATA,
    ENV_OIDC_PROVIDER_ARN,
    ENV_OIDC_TOKEN_FILE,
    ENV_ROLE_ARN,
    ENV_ROLE_SESSION_NAME,
    shown_uri,
)
from cms_magic.errors import CredentialsError
from cms_magic.openapi.signing import (
    CredentialsLike,
    anonymous_rpc_query,
    format_date,
    new_nonce,
    rpc_query,
)
from cms_magic.redact import scrub
from cms_magic.settings import ENV_STS_ENDPOINT

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENV_CREDENTIALS_URI",
    "ENV_ECS_METADATA",
    "ENV_OIDC_PROVIDER_ARN",
    "ENV_OIDC_TOKEN_FILE",
    "ENV_ROLE_ARN",
    "ENV_ROLE_SESSION_NAME",
    "ENV_STS_ENDPOINT",
    "METADATA_TOKEN_TTL",
    "STS_VERSION",
    "assume_role",
    "assume_role_with_oidc",
    "credentials_uri",
    "ecs_ram_role",
    "parse_expiration",
    "sts_endpoint",
]

STS_VERSION: Final = "2015-04-01"

#: Connect 5 s, everything else 10 s (the credentials library's URI timeouts).
DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
#: The IMDSv2 token's lifetime asked for (seconds).
METADATA_TOKEN_TTL: Final = 21600
DEFAULT_DURATION: Final = 3600
DEFAULT_SESSION_NAME: Final = "cms-magic"
_MAX_MESSAGE_CHARS: Final = 300
_METADATA_ROLE_PATH: Final = "/latest/meta-data/ram/security-credentials/"

Client = httpx.AsyncClient | httpx.AsyncBaseTransport | None
"""An injected client (used as is, never closed here), a transport (a client is made around
it per fetch), or ``None`` (a default client per fetch)."""


# ---- shared ------------------------------------------------------------------------------


def parse_expiration(text: object) -> float:
    """STS's ``Expiration`` (``YYYY-MM-DDThh:mm:ssZ``, UTC; fractional seconds accepted) as
    a POSIX timestamp."""
    if not isinstance(text, str):
        raise CredentialsError("must be an ISO 8601 UTC time", option="Expiration")
    cleaned = text.strip()
    for layout in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            moment = datetime.strptime(cleaned, layout)
        except ValueError:
            continue
        return moment.replace(tzinfo=timezone.utc).timestamp()
    raise CredentialsError("must be an ISO 8601 UTC time", option="Expiration", value=cleaned[:40])


def _error(source: str, detail: str, secrets: tuple[Secret, ...]) -> CredentialsError:
    text = scrub(f"{source}: {detail}", [s.reveal() for s in secrets])
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 1] + "…"
    return CredentialsError(text)


def _short(value: object) -> str:
    return str(value)[:200] if value is not None else ""


async def _request(
    client: Client,
    source: str,
    method: str,
    url: str,
    secrets: tuple[Secret, ...],
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One request; a transport failure becomes an error naming only its kind (no URL)."""
    failure: str | None = None
    try:
        if isinstance(client, httpx.AsyncClient):
            response = await client.request(
                method, url, params=params, headers=headers, timeout=DEFAULT_TIMEOUT
            )
        else:
            async with httpx.AsyncClient(transport=client, timeout=DEFAULT_TIMEOUT) as own:
                response = await own.request(method, url, params=params, headers=headers)
            await response.aread()
    except httpx.HTTPError as exc:
        failure = f"request failed ({type(exc).__name__})"
        del exc
    del params, headers  # signed queries and tokens are not left for a traceback
    if failure is not None:
        raise _error(source, failure, secrets) from None
    return response


def _json(response: httpx.Response, source: str, secrets: tuple[Secret, ...]) -> dict[str, object]:
    try:
        data: object = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _error(source, f"HTTP {response.status_code}, not a JSON object", secrets)
    return data


def _triple(
    data: dict[str, object], source: str, secrets: tuple[Secret, ...], *, code: str | None
) -> Triple:
    """The triple in ``data`` (the secret and token wrapped at once, taken out of ``data``);
    ``code``: the ``Code`` a good answer must carry (``None``: STS, which has none)."""
    secret_text = data.pop("AccessKeySecret", None)
    token_text = data.pop("SecurityToken", None)
    secret = Secret(secret_text) if isinstance(secret_text, str) and secret_text else None
    token = Secret(token_text) if isinstance(token_text, str) and token_text else None
    del secret_text, token_text
    known = secrets + tuple(s for s in (secret, token) if s is not None)
    got_code = data.get("Code")
    if code is not None and got_code != code:
        error = _code_error(got_code, data.get("Message"), source, known)
        data.clear()  # an echoed message is not left in this frame for a traceback
        del got_code
        raise error
    key_id = data.get("AccessKeyId")
    missing = [
        name
        for name, value in (
            ("AccessKeyId", key_id if isinstance(key_id, str) and key_id else None),
            ("AccessKeySecret", secret),
            ("SecurityToken", token),
            ("Expiration", data.get("Expiration")),
        )
        if value is None
    ]
    if missing:
        data.clear()
        raise _error(source, "the answer lacks " + ", ".join(missing), known)
    if not isinstance(key_id, str) or secret is None or token is None:  # pragma: no cover
        raise _error(source, "the answer lacks credentials", known)
    try:
        expires_at = parse_expiration(data.get("Expiration"))
    except CredentialsError as exc:
        raise _error(source, f"bad Expiration ({exc})", known) from None
    return Triple(key_id, secret, token, expires_at)


def _code_error(
    code: object, message: object, source: str, secrets: tuple[Secret, ...]
) -> CredentialsError:
    detail = f"{_short(code) or 'no Code'}: {_short(message)}".rstrip(": ")
    return _error(source, detail, secrets)


def _sts_answer(
    response: httpx.Response, source: str, secrets: tuple[Secret, ...]
) -> dict[str, object]:
    """The ``Credentials`` object of an STS answer, or the error its ``{Code, Message}`` says."""
    data = _json(response, source, secrets)
    inner = data.get("Credentials")
    if response.status_code < 400 and isinstance(inner, dict):
        return inner
    error = _answer_error(data, response.status_code, source, secrets)
    data.clear()  # what the service echoed is not left in this frame for a traceback
    del data, inner
    raise error


def _answer_error(
    data: dict[str, object], status: int, source: str, secrets: tuple[Secret, ...]
) -> CredentialsError:
    """The error a ``{Code, Message}`` answer says (built here: this frame is gone when the
    caller raises it)."""
    code = _short(data.get("Code") or data.get("code")) or f"HTTP {status}"
    message = _short(data.get("Message") or data.get("message"))
    request_id = _short(data.get("RequestId"))
    detail = f"{code}: {message}" if message else code
    if request_id:
        detail += f" (RequestId {request_id})"
    return _error(source, detail, secrets)


def _sts_url(endpoint: str) -> str:
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def _check_duration(duration: int) -> None:
    if isinstance(duration, bool) or not isinstance(duration, int) or duration < 900:
        raise CredentialsError("must be an integer >= 900 (seconds)", option="duration")


# ---- the endpoint ------------------------------------------------------------------------


def sts_endpoint(
    region: str | None = None, *, vpc: bool = False, environ: Mapping[str, str] = os.environ
) -> str:
    """STS's host: ``CMS_MAGIC_STS_ENDPOINT`` when set (a host or a URL), else
    ``sts.<region>.aliyuncs.com`` (``sts-vpc.`` with ``vpc``), ``sts.aliyuncs.com`` with no
    region."""
    override = environ.get(ENV_STS_ENDPOINT, "").strip()
    if override:
        return override
    prefix = "sts-vpc" if vpc else "sts"
    if region is None or not region.strip():
        return f"{prefix}.aliyuncs.com"
    return f"{prefix}.{region.strip()}.aliyuncs.com"


# ---- the sources -------------------------------------------------------------------------


def assume_role(
    credentials: CredentialsLike,
    role_arn: str,
    *,
    session_name: str = DEFAULT_SESSION_NAME,
    duration: int = DEFAULT_DURATION,
    sts_endpoint: str,
    policy: str | None = None,
    external_id: str | None = None,
    client: Client = None,
    clock: Callable[[], float] | None = None,
) -> Fetch:
    """STS ``AssumeRole`` with ``credentials`` (RPC v2, ``GET``); ``sts_endpoint`` a host
    or a URL."""
    _check_duration(duration)
    source = f"STS AssumeRole ({role_arn})"
    url = _sts_url(sts_endpoint)
    wall = clock
    own: list[Secret] = [Secret(credentials.access_key_secret)]
    if credentials.security_token:
        own.append(Secret(credentials.security_token))
    secrets = tuple(own)
    del own

    async def fetch() -> Triple:
        params = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": str(duration),
        }
        if policy is not None:
            params["Policy"] = policy
        if external_id is not None:
            params["ExternalId"] = external_id
        now = wall() if wall is not None else datetime.now(timezone.utc).timestamp()
        query = rpc_query(
            "GET",
            params,
            credentials,
            action="AssumeRole",
            version=STS_VERSION,
            date=format_date(now),
            nonce=new_nonce(),
        )
        response = await _request(client, source, "GET", url, secrets, params=query)
        del query
        return _triple(_sts_answer(response, source, secrets), source, secrets, code=None)

    return fetch


def assume_role_with_oidc(
    role_arn: str,
    provider_arn: str,
    token_file: str | os.PathLike[str],
    *,
    session_name: str = DEFAULT_SESSION_NAME,
    duration: int = DEFAULT_DURATION,
    sts_endpoint: str,
    policy: str | None = None,
    client: Client = None,
    clock: Callable[[], float] | None = None,
) -> Fetch:
    """STS ``AssumeRoleWithOIDC`` (anonymous); the token file is read at each fetch."""
    _check_duration(duration)
    source = f"STS AssumeRoleWithOIDC ({role_arn})"
    url = _sts_url(sts_endpoint)
    path = Path(token_file)
    wall = clock

    async def fetch() -> Triple:
        try:
            token = Secret(path.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError) as exc:
            reason = f"cannot read the OIDC token file {str(path)!r} ({type(exc).__name__})"
            del exc
            raise CredentialsError(f"{source}: {reason}") from None
        if not len(token):
            raise CredentialsError(f"{source}: the OIDC token file {str(path)!r} is empty")
        secrets = (token,)
        params = {
            "RoleArn": role_arn,
            "OIDCProviderArn": provider_arn,
            "OIDCToken": token.reveal(),
            "RoleSessionName": session_name,
            "DurationSeconds": str(duration),
        }
        if policy is not None:
            params["Policy"] = policy
        now = wall() if wall is not None else datetime.now(timezone.utc).timestamp()
        query = anonymous_rpc_query(
            params,
            action="AssumeRoleWithOIDC",
            version=STS_VERSION,
            date=format_date(now),
            nonce=new_nonce(),
        )
        del params
        response = await _request(client, source, "GET", url, secrets, params=query)
        del query
        return _triple(_sts_answer(response, source, secrets), source, secrets, code=None)

    return fetch


def credentials_uri(uri: str, *, client: Client = None) -> Fetch:
    """``GET uri``: JSON with ``Code`` ``Success`` and the four credentials fields."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialsError("must be an http(s) URL", option=ENV_CREDENTIALS_URI)
    source = f"credentials URI ({shown_uri(uri)})"  # no user info or query: either may hold a key

    async def fetch() -> Triple:
        response = await _request(client, source, "GET", uri, ())
        return _triple(_json(response, source, ()), source, (), code="Success")

    return fetch


def ecs_ram_role(
    role_name: str | None = None,
    *,
    metadata_base: str,
    allow_v1: bool = False,
    client: Client = None,
) -> Fetch:
    """The instance's RAM role from the metadata at ``metadata_base``: an IMDSv2 token
    (``PUT /latest/api/token``), then the role's name (unless given) and its credentials.
    Without a token, IMDSv1 (no token header) only with ``allow_v1``."""
    base = metadata_base.rstrip("/")
    source = f"ECS RAM role ({role_name or 'the instance role'})"

    async def metadata_token() -> Secret | None:
        failure: str
        try:
            response = await _request(
                client,
                source,
                "PUT",
                base + "/latest/api/token",
                (),
                headers={"X-aliyun-ecs-metadata-token-ttl-seconds": str(METADATA_TOKEN_TTL)},
            )
        except CredentialsError as exc:
            failure = str(exc).removeprefix(f"{source}: ")
            del exc
        else:
            if response.status_code == 200 and response.text.strip():
                return Secret(response.text.strip())
            failure = f"HTTP {response.status_code}"
        if allow_v1:
            return None
        raise CredentialsError(
            f"{source}: the metadata token (IMDSv2) could not be had ({failure}), "
            "and IMDSv1 is not allowed"
        )

    async def get(path: str, token: Secret | None) -> httpx.Response:
        headers = {} if token is None else {"X-aliyun-ecs-metadata-token": token.reveal()}
        secrets = () if token is None else (token,)
        return await _request(client, source, "GET", base + path, secrets, headers=headers)

    async def fetch() -> Triple:
        token = await metadata_token()
        secrets = () if token is None else (token,)
        role = role_name
        if not role:
            named = await get(_METADATA_ROLE_PATH, token)
            role = named.text.strip().splitlines()[0].strip() if named.text.strip() else ""
            if named.status_code != 200 or not role:
                raise _error(source, f"no role name (HTTP {named.status_code})", secrets)
        response = await get(_METADATA_ROLE_PATH + role, token)
        if response.status_code != 200:
            raise _error(source, f"HTTP {response.status_code} for role {role!r}", secrets)
        return _triple(_json(response, source, secrets), source, secrets, code="Success")

    return fetch
