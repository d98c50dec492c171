"""A credentials URI and ECS instance metadata as plain request -> response handlers.

Both mint into the emulator's one :class:`~cms_magic.emulator.minted.MintedRegistry`, so the
keys they hand out sign uploads (and STS calls) until they expire. On the server's port
(:class:`~cms_magic.emulator.server.EmulatorServer`):

- ``GET /credentials`` (:attr:`~cms_magic.emulator.server.EmulatorServer.credentials_uri`)
  -> :class:`CredentialsUriEmulator`: ``{Code: "Success", AccessKeyId, AccessKeySecret,
  SecurityToken, Expiration}``, what ``ALIBABA_CLOUD_CREDENTIALS_URI`` points at;
- ``/latest/...`` (:attr:`~cms_magic.emulator.server.EmulatorServer.metadata_url` is the
  base) -> :class:`MetadataEmulator`, ECS IMDS for one RAM role: v2 token first
  (``PUT /latest/api/token``), then ``GET /latest/meta-data/ram/security-credentials/``
  (the role's name) and ``.../<role>`` (its credentials); v1 (no token) refused unless
  made with ``allow_v1=True`` (``--metadata-v1``).

Credentials live ``lifetime_seconds`` (default 3600) on an injectable ``clock``. ``calls``
counts credentials answered, ``refused`` the requests answered with an error; ``fail_with``
makes every answer an HTTP 500 (a failing source).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlsplit

from cms_magic.emulator.minted import DEFAULT_LIFETIME_SECONDS, MintedRegistry, check_lifetime
from cms_magic.emulator.openapi import Headers, error_response, request_fields, text_response
from cms_magic.emulator.service import EmulatorResponse, json_response
from cms_magic.emulator.validation import show
from cms_magic.openapi import signing

__all__ = [
    "CREDENTIALS_URI_PATH",
    "IMDS_CREDENTIALS_PREFIX",
    "IMDS_PREFIX",
    "IMDS_TOKEN_HEADER",
    "IMDS_TOKEN_PATH",
    "IMDS_TTL_HEADER",
    "CredentialsUriEmulator",
    "MetadataEmulator",
]

#: Where the server answers the credentials URI.
CREDENTIALS_URI_PATH: Final = "/credentials"
#: Every path under this goes to the instance metadata.
IMDS_PREFIX: Final = "/latest/"
IMDS_TOKEN_PATH: Final = "/latest/api/token"  # noqa: S105 - a path
IMDS_TTL_HEADER: Final = "x-aliyun-ecs-metadata-token-ttl-seconds"
IMDS_TOKEN_HEADER: Final = "x-aliyun-ecs-metadata-token"  # noqa: S105 - a header name
IMDS_CREDENTIALS_PREFIX: Final = "/latest/meta-data/ram/security-credentials/"
IMDS_MAX_TTL_SECONDS: Final = 21600

_error = error_response
_text = text_response
_fields = request_fields


def _iso(epoch: float) -> str:
    return signing.format_date(epoch)


class CredentialsUriEmulator:
    """A credentials service: ``GET`` (any path, any query) -> freshly minted credentials.

    ``fail_with``, when set, makes every answer an HTTP 500 with that ``Code`` (to exercise a
    failing source); ``calls`` counts the successful answers, ``refused`` the others.
    """

    def __init__(
        self,
        *,
        registry: MintedRegistry | None = None,
        lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = MintedRegistry() if registry is None else registry
        self.lifetime_seconds = check_lifetime(lifetime_seconds)
        self.clock = clock
        self.fail_with: str | None = None
        self.calls = 0
        self.refused = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CredentialsUriEmulator(lifetime={self.lifetime_seconds:g}s, calls={self.calls})"

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> EmulatorResponse:
        """Answer one credentials request."""
        now = self.clock()
        if method.upper() != "GET":
            answer = _error(405, "MethodNotAllowed", "the credentials URI answers GET only", now)
            answer.headers["Allow"] = "GET"
            return self._refused(answer)
        if self.fail_with is not None:
            return self._refused(
                _error(500, self.fail_with, "injected failure of the credentials URI", now)
            )
        minted = self.registry.mint(self.lifetime_seconds, now, source="credentials URI")
        with self._lock:
            self.calls += 1
        return json_response(200, {"Code": "Success", **minted.wire()}, now)

    def _refused(self, answer: EmulatorResponse) -> EmulatorResponse:
        with self._lock:
            self.refused += 1
        return answer


# --------------------------------------------------------------------------- instance metadata


class MetadataEmulator:
    """ECS instance metadata for a RAM role: IMDSv2 tokens, the role name, its credentials.

    - ``PUT /latest/api/token`` with ``X-aliyun-ecs-metadata-token-ttl-seconds: 1..21600``
      -> a token (text) valid that long;
    - ``GET /latest/meta-data/ram/security-credentials/`` -> ``role_name`` (text);
    - ``GET /latest/meta-data/ram/security-credentials/<role_name>`` -> ``{Code: "Success",
      AccessKeyId, AccessKeySecret, SecurityToken, Expiration, LastUpdated}``.

    The GETs want ``X-aliyun-ecs-metadata-token``; without it they are refused (403) unless
    ``allow_v1``; an unknown or expired metadata token is refused (401). ``calls`` counts
    credentials answers, ``token_calls`` tokens handed out, ``refused`` the answers of 400 or
    more; ``fail_with`` (a text), when set, makes every answer an HTTP 500 with that text.
    """

    def __init__(
        self,
        role_name: str = "EcsRamRoleDemo",
        *,
        registry: MintedRegistry | None = None,
        lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS,
        allow_v1: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.role_name = role_name
        self.registry = MintedRegistry() if registry is None else registry
        self.lifetime_seconds = check_lifetime(lifetime_seconds)
        self.allow_v1 = allow_v1
        self.clock = clock
        self.fail_with: str | None = None
        self.calls = 0
        self.token_calls = 0
        self.refused = 0
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"MetadataEmulator(role={self.role_name!r}, allow_v1={self.allow_v1}, "
            f"calls={self.calls})"
        )

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> EmulatorResponse:
        """Answer one metadata request."""
        now = self.clock()
        if self.fail_with is not None:
            answer = _text(500, self.fail_with, now)
        else:
            answer = self._handle(method, target, headers, now)
        if answer.status >= 400:
            with self._lock:
                self.refused += 1
        return answer

    def _handle(self, method: str, target: str, headers: Headers, now: float) -> EmulatorResponse:
        fields = _fields(headers)
        path = urlsplit(target).path
        method = method.upper()
        if path == IMDS_TOKEN_PATH:
            if method != "PUT":
                return _text(405, "the token is fetched with PUT", now)
            return self._token(fields, now)
        if not path.startswith(IMDS_CREDENTIALS_PREFIX):
            return _text(404, "not found", now)
        if method != "GET":
            return _text(405, "metadata is read with GET", now)
        refused = self._check_token(fields, now)
        if refused is not None:
            return refused
        role = path[len(IMDS_CREDENTIALS_PREFIX) :]
        if not role:
            return _text(200, self.role_name, now)
        if role != self.role_name:
            return _text(404, f"no RAM role {show(role)} on this instance", now)
        minted = self.registry.mint(
            self.lifetime_seconds, now, source="ECS instance metadata", role_arn=role
        )
        with self._lock:
            self.calls += 1
        return json_response(
            200, {"Code": "Success", **minted.wire(), "LastUpdated": _iso(now)}, now
        )

    def _token(self, fields: Mapping[str, str], now: float) -> EmulatorResponse:
        raw = fields.get(IMDS_TTL_HEADER, "")
        if not raw.isdigit() or not 1 <= int(raw) <= IMDS_MAX_TTL_SECONDS:
            return _text(
                400,
                f"header X-aliyun-ecs-metadata-token-ttl-seconds must be 1..{IMDS_MAX_TTL_SECONDS}",
                now,
            )
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = now + int(raw)
            self.token_calls += 1
        return _text(200, token, now)

    def _check_token(self, fields: Mapping[str, str], now: float) -> EmulatorResponse | None:
        token = fields.get(IMDS_TOKEN_HEADER)
        if token is None:
            if self.allow_v1:
                return None
            return _text(
                403,
                "IMDSv1 is refused on this instance: PUT /latest/api/token first and send "
                "X-aliyun-ecs-metadata-token",
                now,
            )
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None or now >= expires:
            return _text(401, "the metadata token is unknown or expired: fetch a new one", now)
        return None
