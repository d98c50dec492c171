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
:class:`~cms_magic.emulator.openapi.ActionRefusal` with the services' codes:
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
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Final
from urllib.parse import unquote

from cms_magic.credentials.secret import Secret
from cms_magic.credentials.static import Credentials, mask
from cms_magic.emulator.minted import MintedRegistry, TokenStatus
from cms_magic.emulator.openapi import (
    ActionRefusal,
    Headers,
    missing,
    request_fields,
    request_params,
)
from cms_magic.emulator.service import EmulatorResponse
from cms_magic.emulator.validation import TOKEN_MARKER, show
from cms_magic.openapi import signing

__all__ = ["MAX_SKEW_SECONDS", "NONCE_USED_CODE", "NonceLedger", "OpenApiVerifier", "SignedAction"]

#: How far a request's Timestamp / x-acs-date may be from the clock (15 minutes).
MAX_SKEW_SECONDS: Final = 900.0
_ACS3_AUTH: Final = re.compile(
    r"^ACS3-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]*)\s*,"
    r"\s*Signature=([0-9a-fA-F]+)\s*$"
)


#: The services' code for a replayed request (a nonce seen before).
NONCE_USED_CODE: Final = "SignatureNonceUsed"


def _iso(epoch: float) -> str:
    return signing.format_date(epoch)


class NonceLedger:
    """The nonces of verified requests, each kept ``window_seconds``: a second use is a replay.

    The window is twice the time skew allowed, so a request is refused as a replay for as
    long as its time stamp would still pass. Thread-safe; old nonces are dropped as time
    moves on.
    """

    def __init__(self, window_seconds: float = 2 * MAX_SKEW_SECONDS) -> None:
        self.window_seconds = window_seconds
        self._seen: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def use(self, nonce: str, now: float) -> bool:
        """Record ``nonce`` at ``now``; False if it was already used within the window."""
        with self._lock:
            while self._order and self._order[0][0] <= now:
                expiry, old = self._order.popleft()
                if self._seen.get(old) == expiry:
                    del self._seen[old]
            if nonce in self._seen:
                return False
            expiry = now + self.window_seconds
            self._seen[nonce] = expiry
            self._order.append((expiry, nonce))
            return True


class OpenApiVerifier:
    """Checks OpenAPI signatures against ``credentials`` and the keys minted in ``registry``.

    ``credentials`` may change after construction (assign a new tuple). With ``nonces`` (a
    :class:`NonceLedger`, shared by every verifier of one server), a correctly signed
    request whose nonce (``SignatureNonce`` / ``x-acs-signature-nonce``) was used before is
    refused: 400 ``SignatureNonceUsed``. Otherwise the verifier holds no request state.
    """

    def __init__(
        self,
        credentials: Iterable[Credentials],
        registry: MintedRegistry,
        *,
        max_skew_seconds: float = MAX_SKEW_SECONDS,
        nonces: NonceLedger | None = None,
    ) -> None:
        self.credentials = tuple(credentials)
        self.registry = registry
        self.max_skew_seconds = max_skew_seconds
        self.nonces = nonces

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
        """Check the request's signature; the AccessKeyId that signed it, else ActionRefusal.

        ``pairs``/``params``: the parameters as sent (query, then form body), as
        :func:`~cms_magic.emulator.openapi.request_params` reads them; ``fields`` the
        lower-cased headers.
        """
        auth = fields.get("authorization", "")
        if "Signature" in params:
            key_id = self._verify_rpc(method, pairs, params, now)
            self._check_nonce(params.get("SignatureNonce", ""), now)
            return key_id
        if auth.startswith(signing.ACS3_ALGORITHM):
            key_id = self._verify_acs3(method, path, pairs, fields, body, now)
            self._check_nonce(fields.get("x-acs-signature-nonce", ""), now)
            return key_id
        raise ActionRefusal(
            400,
            "IncompleteSignature",
            "the request must be signed: RPC v2 (Signature, AccessKeyId, ... parameters) "
            "or ACS3-HMAC-SHA256 (Authorization header)",
        )

    def _check_nonce(self, nonce: str, now: float) -> None:
        if self.nonces is None:
            return
        if not nonce:
            raise missing("SignatureNonce")
        if not self.nonces.use(nonce, now):
            raise ActionRefusal(
                400,
                NONCE_USED_CODE,
                "Specified signature nonce was used already: sign every request, and every "
                "retry, with a new nonce",
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
            raise ActionRefusal(
                400,
                "InvalidTimeStamp.Format",
                f"the timestamp must be UTC YYYY-MM-DDThh:mm:ssZ, got {show(stamp)}",
            ) from None
        if abs(when - now) > self.max_skew_seconds:
            raise ActionRefusal(
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
                raise ActionRefusal(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    f"the security token sent does not belong to AccessKeyId {mask(key_id)}",
                )
            return key.access_key_secret
        minted = self.registry.lookup(key_id)
        if minted is None:
            raise ActionRefusal(
                404, "InvalidAccessKeyId.NotFound", f"AccessKeyId {mask(key_id)} is not known"
            )
        status = self.registry.is_valid(key_id, token, now)
        if status is TokenStatus.UNKNOWN:
            raise ActionRefusal(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                f"the security token sent does not belong to AccessKeyId {mask(key_id)}",
            )
        if status is TokenStatus.EXPIRED:
            raise ActionRefusal(
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
            raise ActionRefusal(
                400,
                "InvalidParameter",
                f"SignatureMethod must be {signing.RPC_SIGNATURE_METHOD}, "
                f"got {show(params['SignatureMethod'])}",
            )
        if params["SignatureVersion"] != signing.RPC_SIGNATURE_VERSION:
            raise ActionRefusal(
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
            raise ActionRefusal(
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
            raise ActionRefusal(
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
            raise ActionRefusal(
                400,
                "IncompleteSignature",
                f"these headers must be signed: {', '.join(unsigned)}",
            )
        absent = [name for name in signed if name not in fields]
        if absent:
            raise ActionRefusal(
                400, "IncompleteSignature", f"signed headers not sent: {', '.join(absent)}"
            )
        digest = fields.get("x-acs-content-sha256", "")
        if digest != signing.hashed_payload(body):
            raise ActionRefusal(
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
            raise ActionRefusal(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. "
                f"server canonical request is:{canonical(shown)}",
            )
        return key_id


class SignedAction:
    """A handler for OpenAPI actions that want a signed request (the table's
    :class:`~cms_magic.emulator.openapi.Handler`): it verifies the signature, then answers
    with ``answer(params, now, key_id)``, the request's decoded parameters (query, then a
    form body), the time and the AccessKeyId that signed it.

    ``calls`` counts requests passed to ``answer``, ``refused`` those refused here (method,
    signature, time, token, nonce). ``verifier`` and ``clock`` are the server's.
    """

    def __init__(
        self,
        answer: Callable[[Mapping[str, str], float, str], EmulatorResponse],
        verifier: OpenApiVerifier,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.answer = answer
        self.verifier = verifier
        self.clock = clock
        self.calls = 0
        self.refused = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SignedAction({getattr(self.answer, '__name__', 'answer')}, calls={self.calls})"

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> EmulatorResponse:
        """Verify one request and answer it (or refuse it in the services' shape)."""
        now = self.clock()
        method = method.upper()
        fields = request_fields(headers)
        path, pairs, params = request_params(target, fields, body)
        try:
            if method not in ("GET", "POST"):
                raise ActionRefusal(405, "InvalidParameter", f"method {method} is not allowed")
            key_id = self.verifier.verify(method, path, pairs, params, fields, body, now)
        except ActionRefusal as exc:
            with self._lock:
                self.refused += 1
            return exc.response(now)
        with self._lock:
            self.calls += 1
        return self.answer(params, now, key_id)
