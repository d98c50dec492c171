"""Verifying an OpenAPI request's signature, as the services do: RPC v2 or ACS3-HMAC-SHA256.

:class:`OpenApiVerifier` checks a request against the emulator's long-term keys and the keys
it minted (:class:`~cms_magic.emulator.minted.MintedRegistry`, with their token, until they
expire), with the steps of :mod:`cms_magic.openapi.signing`:

- RPC v2: ``Signature`` among the parameters (query or form body), with ``AccessKeyId``,
  ``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``, ``SignatureNonce``, ``Timestamp``
  and, for a minted key, ``SecurityToken``;
- ACS3: ``Authorization: ACS3-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=...``,
  every ``x-acs-*`` header, ``host`` and ``content-type`` signed, ``x-acs-content-sha256``
  the body's digest, ``x-acs-date`` and, for a minted key, ``x-acs-security-token``.

The time stamp must be within ``max_skew_seconds`` (15 minutes) of the clock. Errors are
:class:`~cms_magic.emulator.openapi.OpenApiError` with the services' codes:
``IncompleteSignature``, ``SignatureDoesNotMatch``, ``InvalidTimeStamp.Format`` /
``.Expired``, ``InvalidAccessKeyId.NotFound`` (404), ``InvalidSecurityToken.Expired``,
``InvalidSecurityToken.MismatchWithAccessKey``, ``MissingParameter``, ``InvalidParameter``;
a string to sign shown in a message has the token replaced by
:data:`~cms_magic.emulator.validation.TOKEN_MARKER`, and no message shows a secret.
Anonymous actions (``AssumeRoleWithOIDC``) skip :meth:`OpenApiVerifier.verify`.
"""

from __future__ import annotations

import calendar
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import unquote

from cms_magic.credentials.secret import Secret
from cms_magic.credentials.static import Credentials, mask
from cms_magic.emulator.minted import MintedRegistry, TokenStatus
from cms_magic.emulator.openapi import OpenApiError, missing
from cms_magic.emulator.validation import TOKEN_MARKER, show
from cms_magic.openapi import signing

__all__ = ["MAX_SKEW_SECONDS", "OpenApiVerifier"]

#: How far a request's Timestamp / x-acs-date may be from the clock (15 minutes).
MAX_SKEW_SECONDS: Final = 900.0
_ACS3_AUTH: Final = re.compile(
    r"^ACS3-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]*)\s*,"
    r"\s*Signature=([0-9a-fA-F]+)\s*$"
)


def _iso(epoch: float) -> str:
    return signing.format_date(epoch)


class OpenApiVerifier:
    """Checks OpenAPI signatures against ``credentials`` and the keys minted in ``registry``.

    ``credentials`` may change after construction (assign a new tuple); the verifier holds
    no request state, so one serves every thread.
    """

    def __init__(
        self,
        credentials: Iterable[Credentials],
        registry: MintedRegistry,
        *,
        max_skew_seconds: float = MAX_SKEW_SECONDS,
    ) -> None:
        self.credentials = tuple(credentials)
        self.registry = registry
        self.max_skew_seconds = max_skew_seconds

    def __repr__(self) -> str:
        ids = ", ".join(mask(c.access_key_id) for c in self.credentials)
        return f"OpenApiVerifier(keys=[{ids}], minted={len(self.registry)})"

    def verify(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        params: Mapping[str, str],
        fields: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> str:
        """Check the request's signature; the AccessKeyId that signed it, else OpenApiError.

        ``pairs``/``params``: the parameters as sent (query, then form body), as
        :func:`~cms_magic.emulator.openapi.request_params` reads them; ``fields`` the
        lower-cased headers.
        """
        auth = fields.get("authorization", "")
        if "Signature" in params:
            return self._verify_rpc(method, pairs, params, now)
        if auth.startswith(signing.ACS3_ALGORITHM):
            return self._verify_acs3(method, path, pairs, fields, body, now)
        raise OpenApiError(
            400,
            "IncompleteSignature",
            "the request must be signed: RPC v2 (Signature, AccessKeyId, ... parameters) "
            "or ACS3-HMAC-SHA256 (Authorization header)",
        )

    def check_time(self, stamp: str | None, now: float, *, required: bool) -> None:
        """``Timestamp`` / ``x-acs-date`` is UTC ``YYYY-MM-DDThh:mm:ssZ`` near ``now``."""
        self._check_time(stamp, now, required=required)

    def _check_time(self, stamp: str | None, now: float, *, required: bool) -> None:
        if not stamp:
            if required:
                raise missing("Timestamp")
            return
        try:
            when = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            raise OpenApiError(
                400,
                "InvalidTimeStamp.Format",
                f"the timestamp must be UTC YYYY-MM-DDThh:mm:ssZ, got {show(stamp)}",
            ) from None
        if abs(when - now) > self.max_skew_seconds:
            raise OpenApiError(
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
                raise OpenApiError(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    f"the security token sent does not belong to AccessKeyId {mask(key_id)}",
                )
            return key.access_key_secret
        minted = self.registry.lookup(key_id)
        if minted is None:
            raise OpenApiError(
                404, "InvalidAccessKeyId.NotFound", f"AccessKeyId {mask(key_id)} is not known"
            )
        status = self.registry.is_valid(key_id, token, now)
        if status is TokenStatus.UNKNOWN:
            raise OpenApiError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                f"the security token sent does not belong to AccessKeyId {mask(key_id)}",
            )
        if status is TokenStatus.EXPIRED:
            raise OpenApiError(
                400,
                "InvalidSecurityToken.Expired",
                f"the security token of AccessKeyId {mask(key_id)} expired at {minted.expiration}",
            )
        return minted.access_key_secret

    def _verify_rpc(
        self, method: str, pairs: list[tuple[str, str]], params: Mapping[str, str], now: float
    ) -> str:
        for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce"):
            if not params.get(name):
                raise missing(name)
        if params["SignatureMethod"] != signing.RPC_SIGNATURE_METHOD:
            raise OpenApiError(
                400,
                "InvalidParameter",
                f"SignatureMethod must be {signing.RPC_SIGNATURE_METHOD}, "
                f"got {show(params['SignatureMethod'])}",
            )
        if params["SignatureVersion"] != signing.RPC_SIGNATURE_VERSION:
            raise OpenApiError(
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
            raise OpenApiError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{shown_to_sign}",
            )
        return params["AccessKeyId"]

    def _verify_acs3(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        fields: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> str:
        match = _ACS3_AUTH.match(fields["authorization"])
        if match is None:
            raise OpenApiError(
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
            raise OpenApiError(
                400,
                "IncompleteSignature",
                f"these headers must be signed: {', '.join(unsigned)}",
            )
        absent = [name for name in signed if name not in fields]
        if absent:
            raise OpenApiError(
                400, "IncompleteSignature", f"signed headers not sent: {', '.join(absent)}"
            )
        digest = fields.get("x-acs-content-sha256", "")
        if digest != signing.hashed_payload(body):
            raise OpenApiError(
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
            raise OpenApiError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server canonical request is:{canonical(shown)}",
            )
        return key_id
