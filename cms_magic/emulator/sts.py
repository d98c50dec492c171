"""STS as a plain request -> response handler: ``AssumeRole`` and ``AssumeRoleWithOIDC``.

Like :class:`cms_magic.emulator.service.Emulator`, :class:`StsEmulator` has state and no
sockets: ``handle(method, target, headers, body)`` returns an
:class:`~cms_magic.emulator.service.EmulatorResponse`. The server reaches it through the
OpenAPI front (:mod:`cms_magic.emulator.openapi`): ``GET`` or ``POST /`` with
``Action=AssumeRole`` (RPC style) or ``x-acs-action: AssumeRole`` (ACS3), version
``2015-04-01`` (:attr:`EmulatorServer.sts_url <cms_magic.emulator.server.EmulatorServer.sts_url>`).

- ``AssumeRole``, signed with RPC v2 (``Signature`` in the parameters) or ACS3-HMAC-SHA256
  (``Authorization`` header), verified (:class:`~cms_magic.emulator.verify.OpenApiVerifier`)
  against the emulator's known keys and the keys it minted itself, with their token, so a
  chained AssumeRole works;
- ``AssumeRoleWithOIDC``, anonymous. **The OIDC token is not verified**: it only has to be
  present and non-empty (no issuer, audience, expiry or signature check); the emulator is
  for the client's plumbing, not for RRSA's trust rules.

Every credential minted goes into one :class:`~cms_magic.emulator.minted.MintedRegistry`
(shared with the upload check and the handlers of :mod:`cms_magic.emulator.endpoints`) and
lives ``lifetime_seconds`` (default 3600; a request's ``DurationSeconds`` may ask for less,
never more), measured on an injectable ``clock`` (epoch seconds). Errors have the service's
shape ``{"Code", "Message", "RequestId"}``; no message shows a secret, a security token or
an OIDC token.

Error codes (the emulator's choice where the reference gives none): ``MissingParameter``,
``InvalidParameter[.<name>]`` (400); ``InvalidAction.NotFound`` (404);
``InvalidTimeStamp.Expired`` (400); ``IncompleteSignature`` (400); ``SignatureDoesNotMatch``
(400); ``InvalidAccessKeyId.NotFound`` (404); ``InvalidSecurityToken.Expired``,
``InvalidSecurityToken.MismatchWithAccessKey`` (400); with :attr:`StsEmulator.fail_with`
set, HTTP 500 with that code.

The registry and the other two handlers are importable from here too (their old home).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from cms_magic.credentials.static import Credentials, mask
from cms_magic.emulator.endpoints import (
    IMDS_CREDENTIALS_PREFIX,
    IMDS_TOKEN_HEADER,
    IMDS_TOKEN_PATH,
    IMDS_TTL_HEADER,
    CredentialsUriEmulator,
    MetadataEmulator,
)
from cms_magic.emulator.minted import (
    DEFAULT_LIFETIME_SECONDS,
    UPLOAD_TOKEN_EXPIRED_CODE,
    Minted,
    MintedRegistry,
    TokenStatus,
    check_lifetime,
    check_minted_key,
    upload_token_expired_message,
)
from cms_magic.emulator.openapi import (
    INVALID_ACTION_CODE,
    ActionRefusal,
    Headers,
    error_response,
    missing,
    request_fields,
    request_id,
    request_params,
)
from cms_magic.emulator.service import EmulatorResponse, demo_credentials, json_response
from cms_magic.emulator.validation import show
from cms_magic.emulator.verify import MAX_SKEW_SECONDS, NonceLedger, OpenApiVerifier
from cms_magic.openapi import signing

__all__ = [
    "DEFAULT_LIFETIME_SECONDS",
    "IMDS_CREDENTIALS_PREFIX",
    "IMDS_TOKEN_HEADER",
    "IMDS_TOKEN_PATH",
    "IMDS_TTL_HEADER",
    "MAX_SKEW_SECONDS",
    "STS_ACTIONS",
    "STS_VERSION",
    "UPLOAD_TOKEN_EXPIRED_CODE",
    "CredentialsUriEmulator",
    "MetadataEmulator",
    "Minted",
    "MintedRegistry",
    "StsEmulator",
    "TokenStatus",
    "check_minted_key",
    "upload_token_expired_message",
]

STS_VERSION: Final = "2015-04-01"
#: The actions :class:`StsEmulator` answers.
STS_ACTIONS: Final = ("AssumeRole", "AssumeRoleWithOIDC")

_ROLE_ARN: Final = re.compile(r"^acs:ram::(\d+):role/([\w.@+=,-]{1,64})$", re.ASCII)
_OIDC_PROVIDER_ARN: Final = re.compile(r"^acs:ram::\d+:oidc-provider/[\w.@+=,-]{1,128}$", re.ASCII)
_SESSION_NAME: Final = re.compile(r"^[\w.@-]{2,64}$", re.ASCII)


def _iso(epoch: float) -> str:
    return signing.format_date(epoch)


class StsEmulator:
    """STS ``AssumeRole`` and ``AssumeRoleWithOIDC`` as a request -> response handler.

    ``credentials`` are the long-term keys whose signatures are accepted (default: the
    emulator's demo key); keys minted in ``registry`` are accepted too, with their token
    (``SecurityToken`` / ``x-acs-security-token``), until they expire. Every credential
    minted lives ``lifetime_seconds``, or ``DurationSeconds`` when the request asks for
    less; ``DurationSeconds`` below ``min_duration_seconds`` (900, as the service) is
    refused. With ``nonces`` (a :class:`~cms_magic.emulator.verify.NonceLedger`) a replayed
    AssumeRole is refused (``SignatureNonceUsed``). ``calls`` counts answered requests by
    action (successes only), ``refused``
    the requests answered with an error. ``fail_with``, when set, makes every answer an
    HTTP 500 with that ``Code`` (a failing STS, to exercise a refresh that fails).
    """

    def __init__(
        self,
        credentials: Credentials | Iterable[Credentials] | None = None,
        *,
        registry: MintedRegistry | None = None,
        lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS,
        min_duration_seconds: int = 900,
        clock: Callable[[], float] = time.time,
        max_skew_seconds: float = MAX_SKEW_SECONDS,
        nonces: NonceLedger | None = None,
    ) -> None:
        if credentials is None:
            keys: tuple[Credentials, ...] = (demo_credentials(),)
        elif isinstance(credentials, Credentials):
            keys = (credentials,)
        else:
            keys = tuple(credentials)
        self.credentials = keys
        self.registry = MintedRegistry() if registry is None else registry
        self.lifetime_seconds = check_lifetime(lifetime_seconds)
        self.min_duration_seconds = min_duration_seconds
        self.clock = clock
        self.max_skew_seconds = max_skew_seconds
        self.nonces = nonces
        self.fail_with: str | None = None
        self.calls: Counter[str] = Counter()
        self.refused = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        ids = ", ".join(mask(c.access_key_id) for c in self.credentials)
        return f"StsEmulator(keys=[{ids}], lifetime={self.lifetime_seconds:g}s)"

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> EmulatorResponse:
        """Answer one STS request (path ``/``, parameters in the query and/or a form body)."""
        now = self.clock()
        try:
            if self.fail_with is not None:
                raise ActionRefusal(500, self.fail_with, "injected failure of the STS")
            action, payload = self._handle(
                method.upper(), target, request_fields(headers), body, now
            )
        except ActionRefusal as exc:
            with self._lock:
                self.refused += 1
            return error_response(exc.status, exc.code, exc.message, now)
        with self._lock:
            self.calls[action] += 1
        return json_response(200, payload, now)

    def _handle(
        self, method: str, target: str, fields: dict[str, str], body: bytes, now: float
    ) -> tuple[str, dict[str, object]]:
        if method not in ("GET", "POST"):
            raise ActionRefusal(
                405, "InvalidParameter", f"method {method} is not allowed: GET or POST"
            )
        path, pairs, params = request_params(target, fields, body)
        action = params.get("Action") or fields.get("x-acs-action", "")
        version = params.get("Version") or fields.get("x-acs-version", "")
        if not action:
            raise missing("Action")
        if action not in STS_ACTIONS:
            raise ActionRefusal(
                404, INVALID_ACTION_CODE, f"action {show(action)} is not served by this STS"
            )
        if version != STS_VERSION:
            raise ActionRefusal(
                400, "InvalidParameter", f"Version must be {STS_VERSION!r}, got {show(version)}"
            )
        lifetime = self._lifetime(params)
        if action == "AssumeRole":
            self._verifier().verify(method, path, pairs, params, fields, body, now)
            role_arn, account, role = self._role(params)
            session = params.get("RoleSessionName", "")
            if not session:
                raise missing("RoleSessionName")
            self._check_session(session)
            minted = self.registry.mint(
                lifetime, now, source="STS AssumeRole", role_arn=role_arn, session_name=session
            )
            return action, self._answer(minted, account, role, session)
        # AssumeRoleWithOIDC: anonymous; the OIDC token's content is not verified.
        self._verifier().check_time(
            params.get("Timestamp") or fields.get("x-acs-date"), now, required=False
        )
        role_arn, account, role = self._role(params)
        provider = params.get("OIDCProviderArn", "")
        if not provider:
            raise missing("OIDCProviderArn")
        if not _OIDC_PROVIDER_ARN.match(provider):
            raise ActionRefusal(
                400,
                "InvalidParameter.OIDCProviderArn",
                "OIDCProviderArn must look like acs:ram::<account id>:oidc-provider/<name>",
            )
        if not params.get("OIDCToken", "").strip():
            raise missing("OIDCToken")
        session = params.get("RoleSessionName") or f"oidc-{int(now)}"
        self._check_session(session)
        minted = self.registry.mint(
            lifetime, now, source="STS AssumeRoleWithOIDC", role_arn=role_arn, session_name=session
        )
        payload = self._answer(minted, account, role, session)
        payload["OIDCTokenInfo"] = {
            "Issuer": "https://oidc.cms-magic.emulator",
            "Subject": "system:serviceaccount:emulator:default",
            "ClientIds": "sts.aliyuncs.com",
            "IssuanceTime": _iso(now),
            "ExpirationTime": minted.expiration,
            "VerificationInfo": "not verified: the emulator accepts any non-empty OIDCToken",
        }
        return action, payload

    # ---- parameters

    def _lifetime(self, params: Mapping[str, str]) -> float:
        raw = params.get("DurationSeconds")
        if raw is None or raw == "":
            return self.lifetime_seconds
        if not raw.isdigit():
            raise ActionRefusal(
                400,
                "InvalidParameter.DurationSeconds",
                f"DurationSeconds must be a whole number of seconds, got {show(raw)}",
            )
        seconds = int(raw)
        if seconds < self.min_duration_seconds:
            raise ActionRefusal(
                400,
                "InvalidParameter.DurationSeconds",
                f"DurationSeconds must be at least {self.min_duration_seconds}, got {seconds}",
            )
        return min(float(seconds), self.lifetime_seconds)

    @staticmethod
    def _role(params: Mapping[str, str]) -> tuple[str, str, str]:
        arn = params.get("RoleArn", "")
        if not arn:
            raise missing("RoleArn")
        match = _ROLE_ARN.match(arn)
        if match is None:
            raise ActionRefusal(
                400,
                "InvalidParameter.RoleArn",
                f"RoleArn must look like acs:ram::<account id>:role/<role name>, got {show(arn)}",
            )
        return arn, match.group(1), match.group(2)

    @staticmethod
    def _check_session(session: str) -> None:
        if not _SESSION_NAME.match(session):
            raise ActionRefusal(
                400,
                "InvalidParameter.RoleSessionName",
                f"RoleSessionName must be 2-64 letters, digits or . @ - _, got {show(session)}",
            )

    @staticmethod
    def _answer(minted: Minted, account: str, role: str, session: str) -> dict[str, object]:
        return {
            "RequestId": request_id(),
            "AssumedRoleUser": {
                "Arn": f"acs:ram::{account}:assumed-role/{role}/{session}",
                "AssumedRoleId": f"3{account[-8:]:0>8}{int(hashlib.sha256(role.encode()).hexdigest()[:8], 16) % 10**9:09d}:{session}",
            },
            "Credentials": minted.wire(),
        }

    def _verifier(self) -> OpenApiVerifier:
        return OpenApiVerifier(
            self.credentials,
            self.registry,
            max_skew_seconds=self.max_skew_seconds,
            nonces=self.nonces,
        )
