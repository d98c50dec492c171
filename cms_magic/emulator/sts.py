"""STS, a credentials URI and ECS instance metadata as plain request -> response handlers.

Like :class:`cms_magic.emulator.service.Emulator`, each handler has state and no sockets:
``handle(method, target, headers, body)`` returns an
:class:`~cms_magic.emulator.service.EmulatorResponse`. All three mint credentials into one
:class:`MintedRegistry`, which the upload check can ask about a temporary key
(:meth:`MintedRegistry.is_valid`, :func:`check_minted_key`).

- :class:`StsEmulator`: ``AssumeRole`` (RPC style, version ``2015-04-01``), signed with RPC v2
  (``Signature`` in the parameters) or ACS3-HMAC-SHA256 (``Authorization`` header), verified
  with the steps of :mod:`cms_magic.openapi.signing` against the emulator's known keys (and
  keys it minted itself, so a chained AssumeRole works); and ``AssumeRoleWithOIDC``,
  anonymous. **The OIDC token is not verified**: it only has to be present and non-empty
  (no issuer, audience, expiry or signature check); the emulator is for the client's
  plumbing, not for RRSA's trust rules.
- :class:`CredentialsUriEmulator`: ``GET`` -> ``{Code: "Success", AccessKeyId,
  AccessKeySecret, SecurityToken, Expiration}``.
- :class:`MetadataEmulator`: ECS IMDS, v2 token first (``PUT /latest/api/token``), v1
  (no token) refused unless made with ``allow_v1=True``.

Credentials live ``lifetime_seconds`` (default 3600; a request's ``DurationSeconds`` may ask
for less, never more), measured on an injectable ``clock`` (epoch seconds). Errors have the
service's shape ``{"Code", "Message", "RequestId"}``; no message shows a secret, a security
token or an OIDC token (a string to sign is shown with the token replaced by
:data:`~cms_magic.emulator.validation.TOKEN_MARKER`).

Error codes (the emulator's choice where the reference gives none): ``MissingParameter``,
``InvalidParameter`` (400); ``InvalidAction.NotFound`` (400); ``InvalidTimeStamp.Expired``
(400); ``IncompleteSignature`` (400); ``SignatureDoesNotMatch`` (400);
``InvalidAccessKeyId.NotFound`` (404); ``InvalidSecurityToken.Expired``,
``InvalidSecurityToken.MismatchWithAccessKey`` (400).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from cms_magic.credentials.secret import Secret
from cms_magic.credentials.static import Credentials, mask
from cms_magic.emulator.service import EmulatorResponse, demo_credentials, json_response
from cms_magic.emulator.validation import (
    TOKEN_MARKER,
    Refusal,
    header_fields,
    header_pairs,
    show,
)
from cms_magic.openapi import signing

__all__ = [
    "DEFAULT_LIFETIME_SECONDS",
    "IMDS_CREDENTIALS_PREFIX",
    "IMDS_TOKEN_HEADER",
    "IMDS_TOKEN_PATH",
    "IMDS_TTL_HEADER",
    "MAX_SKEW_SECONDS",
    "STS_VERSION",
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
DEFAULT_LIFETIME_SECONDS: Final = 3600.0
#: How far a request's Timestamp / x-acs-date may be from the clock (15 minutes).
MAX_SKEW_SECONDS: Final = 900.0
IMDS_TOKEN_PATH: Final = "/latest/api/token"  # noqa: S105 - a path
IMDS_TTL_HEADER: Final = "x-aliyun-ecs-metadata-token-ttl-seconds"
IMDS_TOKEN_HEADER: Final = "x-aliyun-ecs-metadata-token"  # noqa: S105 - a header name
IMDS_CREDENTIALS_PREFIX: Final = "/latest/meta-data/ram/security-credentials/"
IMDS_MAX_TTL_SECONDS: Final = 21600

_ROLE_ARN: Final = re.compile(r"^acs:ram::(\d+):role/([\w.@+=,-]{1,64})$", re.ASCII)
_OIDC_PROVIDER_ARN: Final = re.compile(r"^acs:ram::\d+:oidc-provider/[\w.@+=,-]{1,128}$", re.ASCII)
_SESSION_NAME: Final = re.compile(r"^[\w.@-]{2,64}$", re.ASCII)
_ALNUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ACS3_AUTH: Final = re.compile(
    r"^ACS3-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]*)\s*,"
    r"\s*Signature=([0-9a-fA-F]+)\s*$"
)


def _iso(epoch: float) -> str:
    return signing.format_date(epoch)


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _error(status: int, code: str, message: str, now: float) -> EmulatorResponse:
    return json_response(
        status, {"Code": code, "Message": message, "RequestId": _request_id()}, now
    )


def _text(status: int, text: str, now: float) -> EmulatorResponse:
    headers = {"Content-Type": "text/plain; charset=utf-8", "Date": signing.format_date(now)}
    return EmulatorResponse(status, headers, text.encode("utf-8"))


def _fields(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    return header_fields(header_pairs(headers))  # the upload handler's own reading


# --------------------------------------------------------------------------- the registry


class TokenStatus(str, Enum):
    """What :meth:`MintedRegistry.is_valid` says of a temporary key and token."""

    KNOWN = "known"
    """Minted here, the token is its own, not expired."""
    EXPIRED = "expired"
    """Minted here with this token, and its expiry has passed."""
    UNKNOWN = "unknown"
    """Never minted here, or sent with another token."""


@dataclass(frozen=True, repr=False)
class Minted:
    """One minted triple and its expiry; the repr shows the masked id and expiry only."""

    access_key_id: str
    access_key_secret: Secret
    security_token: Secret
    expires_at: float
    issued_at: float
    source: str
    role_arn: str | None = None
    session_name: str | None = None

    @property
    def expiration(self) -> str:
        """``Expiration`` as the services write it: ``YYYY-MM-DDThh:mm:ssZ`` (UTC)."""
        return _iso(self.expires_at)

    def credentials(self) -> Credentials:
        """The triple as :class:`Credentials` (what the upload signature check takes)."""
        return Credentials(
            self.access_key_id,
            self.access_key_secret,
            self.security_token,
            source=f"cms_magic emulator {self.source}",
        )

    def wire(self) -> dict[str, str]:
        """The four fields every source answers, the secret and token revealed."""
        return {
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret.reveal(),
            "SecurityToken": self.security_token.reveal(),
            "Expiration": self.expiration,
        }

    def __repr__(self) -> str:
        return (
            f"Minted(access_key_id={mask(self.access_key_id)!r}, expires={self.expiration!r}, "
            f"source={self.source!r})"
        )


class MintedRegistry:
    """Every temporary key minted by the emulator's STS, URI and metadata handlers.

    Thread-safe. Keys are ``STS.`` and 28 letters/digits; secrets 30 characters; tokens
    long and opaque. Nothing is ever forgotten (expired keys stay, to be told apart from
    unknown ones) until :meth:`clear`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minted: dict[str, Minted] = {}

    def __repr__(self) -> str:
        return f"MintedRegistry({len(self)} minted)"

    def __len__(self) -> int:
        with self._lock:
            return len(self._minted)

    def mint(
        self,
        lifetime_seconds: float,
        now: float,
        *,
        source: str,
        role_arn: str | None = None,
        session_name: str | None = None,
    ) -> Minted:
        """A new triple valid from ``now`` for ``lifetime_seconds``."""
        key_id = "STS." + "".join(secrets.choice(_ALNUM) for _ in range(28))
        minted = Minted(
            access_key_id=key_id,
            access_key_secret=Secret(secrets.token_urlsafe(23)[:30]),
            security_token=Secret("CAIS" + secrets.token_urlsafe(96)),
            expires_at=now + lifetime_seconds,
            issued_at=now,
            source=source,
            role_arn=role_arn,
            session_name=session_name,
        )
        with self._lock:
            self._minted[key_id] = minted
        return minted

    def lookup(self, access_key_id: str) -> Minted | None:
        """The minted triple with this id, expired or not, else None."""
        with self._lock:
            return self._minted.get(access_key_id)

    def is_valid(self, access_key_id: str, token: str | Secret | None, now: float) -> TokenStatus:
        """Whether ``access_key_id`` with ``token`` is a live key minted here, at ``now``.

        ``UNKNOWN`` when the id was never minted or the token is not its own (compared in
        constant time); ``EXPIRED`` when ``now`` is at or past its expiry; else ``KNOWN``.
        """
        minted = self.lookup(access_key_id)
        if minted is None or not token:
            return TokenStatus.UNKNOWN
        sent = token.reveal() if isinstance(token, Secret) else token
        if not hmac.compare_digest(
            sent.encode("utf-8"), minted.security_token.reveal().encode("utf-8")
        ):
            return TokenStatus.UNKNOWN
        if now >= minted.expires_at:
            return TokenStatus.EXPIRED
        return TokenStatus.KNOWN

    def minted(self) -> list[Minted]:
        """Every triple minted, oldest first."""
        with self._lock:
            return list(self._minted.values())

    def clear(self) -> None:
        """Forget every minted key."""
        with self._lock:
            self._minted.clear()


def upload_token_expired_message(access_key_id: str, expiration: str) -> str:
    """The upload refusal for an expired token (the emulator's wording: the reference gives
    no message for this case; it names the token and says it expired)."""
    return (
        f"the security token of AccessKeyId {show(access_key_id)} expired at {expiration}: "
        "get fresh temporary credentials (AssumeRole again) and sign the request with them"
    )


def check_minted_key(
    registry: MintedRegistry, key_id: str, fields: Mapping[str, str], now: float
) -> Credentials:
    """For the upload check: the minted key ``key_id`` as :class:`Credentials`, or a 403.

    ``fields`` are the upload's lower-cased header fields (``x-cms-security-token``). Meant
    to be called by the upload check when ``key_id`` is not one of its static keys;
    the returned credentials then go to the signature check as a static key's would.
    """
    minted = registry.lookup(key_id)
    if minted is None:
        raise Refusal(403, f"unknown AccessKeyId {show(key_id)}")
    sent = fields.get("x-cms-security-token", "")
    if not sent:
        raise Refusal(
            403,
            f"AccessKeyId {show(key_id)} is a temporary (STS) key: send its security "
            "token in x-cms-security-token, with x-cms-caller-type: token",
        )
    status = registry.is_valid(key_id, sent, now)
    if status is TokenStatus.UNKNOWN:
        raise Refusal(
            403,
            f"x-cms-security-token does not match the token of AccessKeyId {show(key_id)} "
            "(from another AssumeRole call?)",
        )
    if status is TokenStatus.EXPIRED:
        raise Refusal(403, upload_token_expired_message(key_id, minted.expiration))
    if fields.get("x-cms-caller-type") != "token":
        raise Refusal(
            403,
            "header x-cms-caller-type must be 'token' when a security token is sent, "
            f"got {show(fields.get('x-cms-caller-type'))}",
        )
    return minted.credentials()


# --------------------------------------------------------------------------- STS


class _StsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _missing(name: str) -> _StsError:
    return _StsError(400, "MissingParameter", f"the input parameter {name!r} is missing")


def _check_lifetime(lifetime_seconds: float) -> float:
    if (
        isinstance(lifetime_seconds, bool)
        or not isinstance(lifetime_seconds, int | float)
        or not lifetime_seconds > 0
    ):
        raise ValueError(f"lifetime_seconds must be a number > 0, got {lifetime_seconds!r}")
    return float(lifetime_seconds)


class StsEmulator:
    """STS ``AssumeRole`` and ``AssumeRoleWithOIDC`` as a request -> response handler.

    ``credentials`` are the long-term keys whose signatures are accepted (default: the
    emulator's demo key); keys minted in ``registry`` are accepted too, with their token
    (``SecurityToken`` / ``x-acs-security-token``), until they expire. Every credential
    minted lives ``lifetime_seconds``, or ``DurationSeconds`` when the request asks for
    less; ``DurationSeconds`` below ``min_duration_seconds`` (900, as the service) is
    refused. ``calls`` counts answered requests by action (successes only).
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
    ) -> None:
        if credentials is None:
            keys: tuple[Credentials, ...] = (demo_credentials(),)
        elif isinstance(credentials, Credentials):
            keys = (credentials,)
        else:
            keys = tuple(credentials)
        self.credentials = keys
        self.registry = MintedRegistry() if registry is None else registry
        self.lifetime_seconds = _check_lifetime(lifetime_seconds)
        self.min_duration_seconds = min_duration_seconds
        self.clock = clock
        self.max_skew_seconds = max_skew_seconds
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        ids = ", ".join(mask(c.access_key_id) for c in self.credentials)
        return f"StsEmulator(keys=[{ids}], lifetime={self.lifetime_seconds:g}s)"

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> EmulatorResponse:
        """Answer one STS request (path ``/``, parameters in the query and/or a form body)."""
        now = self.clock()
        try:
            action, payload = self._handle(method.upper(), target, _fields(headers), body, now)
        except _StsError as exc:
            return _error(exc.status, exc.code, exc.message, now)
        with self._lock:
            self.calls[action] += 1
        return json_response(200, payload, now)

    def _handle(
        self, method: str, target: str, fields: dict[str, str], body: bytes, now: float
    ) -> tuple[str, dict[str, object]]:
        if method not in ("GET", "POST"):
            raise _StsError(405, "InvalidParameter", f"method {method} is not allowed: GET or POST")
        split = urlsplit(target)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        if body and "application/x-www-form-urlencoded" in fields.get("content-type", ""):
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = dict(pairs)
        action = params.get("Action") or fields.get("x-acs-action", "")
        version = params.get("Version") or fields.get("x-acs-version", "")
        if not action:
            raise _missing("Action")
        if action not in ("AssumeRole", "AssumeRoleWithOIDC"):
            raise _StsError(
                400, "InvalidAction.NotFound", f"action {show(action)} is not served here"
            )
        if version != STS_VERSION:
            raise _StsError(
                400, "InvalidParameter", f"Version must be {STS_VERSION!r}, got {show(version)}"
            )
        lifetime = self._lifetime(params)
        if action == "AssumeRole":
            self._verify(method, split.path, pairs, params, fields, body, now)
            role_arn, account, role = self._role(params)
            session = params.get("RoleSessionName", "")
            if not session:
                raise _missing("RoleSessionName")
            self._check_session(session)
            minted = self.registry.mint(
                lifetime, now, source="STS AssumeRole", role_arn=role_arn, session_name=session
            )
            return action, self._answer(minted, account, role, session)
        # AssumeRoleWithOIDC: anonymous; the OIDC token's content is not verified.
        self._check_time(params.get("Timestamp") or fields.get("x-acs-date"), now, required=False)
        role_arn, account, role = self._role(params)
        provider = params.get("OIDCProviderArn", "")
        if not provider:
            raise _missing("OIDCProviderArn")
        if not _OIDC_PROVIDER_ARN.match(provider):
            raise _StsError(
                400,
                "InvalidParameter.OIDCProviderArn",
                "OIDCProviderArn must look like acs:ram::<account id>:oidc-provider/<name>",
            )
        if not params.get("OIDCToken", "").strip():
            raise _missing("OIDCToken")
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
            raise _StsError(
                400,
                "InvalidParameter.DurationSeconds",
                f"DurationSeconds must be a whole number of seconds, got {show(raw)}",
            )
        seconds = int(raw)
        if seconds < self.min_duration_seconds:
            raise _StsError(
                400,
                "InvalidParameter.DurationSeconds",
                f"DurationSeconds must be at least {self.min_duration_seconds}, got {seconds}",
            )
        return min(float(seconds), self.lifetime_seconds)

    @staticmethod
    def _role(params: Mapping[str, str]) -> tuple[str, str, str]:
        arn = params.get("RoleArn", "")
        if not arn:
            raise _missing("RoleArn")
        match = _ROLE_ARN.match(arn)
        if match is None:
            raise _StsError(
                400,
                "InvalidParameter.RoleArn",
                f"RoleArn must look like acs:ram::<account id>:role/<role name>, got {show(arn)}",
            )
        return arn, match.group(1), match.group(2)

    @staticmethod
    def _check_session(session: str) -> None:
        if not _SESSION_NAME.match(session):
            raise _StsError(
                400,
                "InvalidParameter.RoleSessionName",
                f"RoleSessionName must be 2-64 letters, digits or . @ - _, got {show(session)}",
            )

    @staticmethod
    def _answer(minted: Minted, account: str, role: str, session: str) -> dict[str, object]:
        return {
            "RequestId": _request_id(),
            "AssumedRoleUser": {
                "Arn": f"acs:ram::{account}:assumed-role/{role}/{session}",
                "AssumedRoleId": f"3{account[-8:]:0>8}{int(hashlib.sha256(role.encode()).hexdigest()[:8], 16) % 10**9:09d}:{session}",
            },
            "Credentials": minted.wire(),
        }

    # ---- signatures

    def _check_time(self, stamp: str | None, now: float, *, required: bool) -> None:
        if not stamp:
            if required:
                raise _missing("Timestamp")
            return
        try:
            when = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            raise _StsError(
                400,
                "InvalidTimeStamp.Format",
                f"the timestamp must be UTC YYYY-MM-DDThh:mm:ssZ, got {show(stamp)}",
            ) from None
        if abs(when - now) > self.max_skew_seconds:
            raise _StsError(
                400,
                "InvalidTimeStamp.Expired",
                f"the timestamp {stamp} is more than {self.max_skew_seconds:g} s from the "
                f"server's time {_iso(now)}: sign with the current time",
            )

    def _key(self, key_id: str, token: str | None, now: float) -> Secret:
        """The secret of a known key sent with the right token, else the service's error."""
        for key in self.credentials:
            if key.access_key_id != key_id:
                continue
            expected = key.security_token
            if expected is not None and (
                not token
                or not hmac.compare_digest(token.encode("utf-8"), expected.reveal().encode("utf-8"))
            ):
                raise _StsError(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    f"the security token sent does not belong to AccessKeyId {mask(key_id)}",
                )
            return key.access_key_secret
        minted = self.registry.lookup(key_id)
        if minted is None:
            raise _StsError(
                404, "InvalidAccessKeyId.NotFound", f"AccessKeyId {mask(key_id)} is not known"
            )
        status = self.registry.is_valid(key_id, token, now)
        if status is TokenStatus.UNKNOWN:
            raise _StsError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                f"the security token sent does not belong to AccessKeyId {mask(key_id)}",
            )
        if status is TokenStatus.EXPIRED:
            raise _StsError(
                400,
                "InvalidSecurityToken.Expired",
                f"the security token of AccessKeyId {mask(key_id)} expired at {minted.expiration}",
            )
        return minted.access_key_secret

    def _verify(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        params: Mapping[str, str],
        fields: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> None:
        auth = fields.get("authorization", "")
        if "Signature" in params:
            self._verify_rpc(method, pairs, params, now)
        elif auth.startswith(signing.ACS3_ALGORITHM):
            self._verify_acs3(method, path, pairs, fields, body, now)
        else:
            raise _StsError(
                400,
                "IncompleteSignature",
                "AssumeRole must be signed: RPC v2 (Signature, AccessKeyId, ... parameters) "
                "or ACS3-HMAC-SHA256 (Authorization header)",
            )

    def _verify_rpc(
        self, method: str, pairs: list[tuple[str, str]], params: Mapping[str, str], now: float
    ) -> None:
        for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce"):
            if not params.get(name):
                raise _missing(name)
        if params["SignatureMethod"] != signing.RPC_SIGNATURE_METHOD:
            raise _StsError(
                400,
                "InvalidParameter",
                f"SignatureMethod must be {signing.RPC_SIGNATURE_METHOD}, "
                f"got {show(params['SignatureMethod'])}",
            )
        if params["SignatureVersion"] != signing.RPC_SIGNATURE_VERSION:
            raise _StsError(
                400,
                "InvalidParameter",
                f"SignatureVersion must be {signing.RPC_SIGNATURE_VERSION}, "
                f"got {show(params['SignatureVersion'])}",
            )
        self._check_time(params.get("Timestamp"), now, required=True)
        secret = self._key(params["AccessKeyId"], params.get("SecurityToken"), now)
        unsigned = [(k, v) for k, v in pairs if k != "Signature"]
        to_sign = signing.rpc_string_to_sign(
            method, signing.rpc_canonicalized_query_string(unsigned)
        )
        expected = signing.rpc_signature(secret, to_sign)
        if not hmac.compare_digest(expected.encode("ascii"), params["Signature"].encode("utf-8")):
            shown = [(k, TOKEN_MARKER if k == "SecurityToken" else v) for k, v in unsigned]
            shown_to_sign = signing.rpc_string_to_sign(
                method, signing.rpc_canonicalized_query_string(shown)
            )
            raise _StsError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{shown_to_sign}",
            )

    def _verify_acs3(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        fields: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> None:
        match = _ACS3_AUTH.match(fields["authorization"])
        if match is None:
            raise _StsError(
                400,
                "IncompleteSignature",
                "Authorization must be 'ACS3-HMAC-SHA256 Credential=<id>,"
                "SignedHeaders=<a;b>,Signature=<hex>'",
            )
        key_id, signed_text, sent = match.groups()
        signed = signed_text.split(";") if signed_text else []
        required = {"host"} | {n for n in fields if n.startswith("x-acs-")}
        if "content-type" in fields:
            required.add("content-type")
        unsigned = sorted(required - set(signed))
        if unsigned:
            raise _StsError(
                400,
                "IncompleteSignature",
                f"these headers must be signed: {', '.join(unsigned)}",
            )
        missing = [name for name in signed if name not in fields]
        if missing:
            raise _StsError(
                400, "IncompleteSignature", f"signed headers not sent: {', '.join(missing)}"
            )
        digest = fields.get("x-acs-content-sha256", "")
        if digest != signing.hashed_payload(body):
            raise _StsError(
                400,
                "InvalidParameter",
                "x-acs-content-sha256 must be the hex SHA-256 of the body as sent",
            )
        self._check_time(fields.get("x-acs-date"), now, required=True)
        token = fields.get("x-acs-security-token")
        secret = self._key(key_id, token, now)

        def canonical(values: Mapping[str, str]) -> str:
            text, names = signing.canonical_headers([(n, values[n]) for n in signed])
            request = signing.canonical_request(
                method,
                signing.canonical_uri(unquote(path)),
                signing.canonical_query_string(pairs),
                text,
                names,
                digest,
            )
            return request

        expected = signing.signature(secret, signing.string_to_sign(canonical(fields)))
        if not hmac.compare_digest(expected.encode("ascii"), sent.lower().encode("ascii")):
            shown = {
                n: TOKEN_MARKER if n == "x-acs-security-token" else v for n, v in fields.items()
            }
            raise _StsError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server canonical request is:{canonical(shown)}",
            )


# --------------------------------------------------------------------------- credentials URI


class CredentialsUriEmulator:
    """A credentials service: ``GET`` (any path, any query) -> freshly minted credentials.

    ``fail_with``, when set, makes every answer an HTTP 500 with that ``Code`` (to exercise a
    failing source); ``calls`` counts the successful answers.
    """

    def __init__(
        self,
        *,
        registry: MintedRegistry | None = None,
        lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = MintedRegistry() if registry is None else registry
        self.lifetime_seconds = _check_lifetime(lifetime_seconds)
        self.clock = clock
        self.fail_with: str | None = None
        self.calls = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CredentialsUriEmulator(lifetime={self.lifetime_seconds:g}s, calls={self.calls})"

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> EmulatorResponse:
        """Answer one credentials request."""
        now = self.clock()
        if method.upper() != "GET":
            answer = _error(405, "MethodNotAllowed", "the credentials URI answers GET only", now)
            answer.headers["Allow"] = "GET"
            return answer
        if self.fail_with is not None:
            return _error(500, self.fail_with, "injected failure of the credentials URI", now)
        minted = self.registry.mint(self.lifetime_seconds, now, source="credentials URI")
        with self._lock:
            self.calls += 1
        return json_response(200, {"Code": "Success", **minted.wire()}, now)


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
    credentials answers, ``token_calls`` tokens handed out.
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
        self.lifetime_seconds = _check_lifetime(lifetime_seconds)
        self.allow_v1 = allow_v1
        self.clock = clock
        self.calls = 0
        self.token_calls = 0
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"MetadataEmulator(role={self.role_name!r}, allow_v1={self.allow_v1}, "
            f"calls={self.calls})"
        )

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> EmulatorResponse:
        """Answer one metadata request."""
        now = self.clock()
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
