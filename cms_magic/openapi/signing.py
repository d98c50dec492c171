"""Alibaba Cloud OpenAPI signatures as pure steps: ACS3-HMAC-SHA256 (v3) and RPC v2.

ACS3-HMAC-SHA256, the steps named after the published algorithm::

    CanonicalRequest = METHOD "\\n" CanonicalURI "\\n" CanonicalQueryString "\\n"
                       CanonicalHeaders "\\n" SignedHeaders "\\n" HashedRequestPayload
    StringToSign     = "ACS3-HMAC-SHA256" "\\n" hex(SHA256(CanonicalRequest))
    Signature        = hex(HMAC-SHA256(secret, StringToSign))
    Authorization    = "ACS3-HMAC-SHA256 Credential=" id ",SignedHeaders=" ... ",Signature=" ...

RPC v2 (``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``), for RPC-style calls::

    CanonicalizedQueryString = sorted encode(key) "=" encode(value), joined by "&"
    StringToSign = METHOD "&" encode("/") "&" encode(CanonicalizedQueryString)
    Signature    = base64(HMAC-SHA1(secret "&", StringToSign))

Anonymous calls (STS ``AssumeRoleWithOIDC``) carry the parameters and no signature.

Encoding everywhere: the UTF-8 bytes, keeping only ``A-Z a-z 0-9 - _ . ~`` (space ``%20``,
``*`` ``%2A``, ``/`` ``%2F``; a path keeps its ``/``). Only decoded values are signed, so the
wire may use ``+`` for space. Each step is a pure function of its arguments: the date and
the nonce are arguments, no step reads a clock or a random source (:func:`new_nonce` and
:func:`format_date` are the helpers for callers). Secrets are accepted as
:class:`~cms_magic.credentials.secret.Secret` or ``str`` and revealed only at the HMAC.
The emulator is meant to verify with these same steps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import quote

from cms_magic.credentials.secret import Secret

__all__ = [
    "ACS3_ALGORITHM",
    "EMPTY_PAYLOAD_SHA256",
    "RPC_SIGNATURE_METHOD",
    "RPC_SIGNATURE_VERSION",
    "UNSIGNED_HEADERS",
    "CredentialsLike",
    "StaticCredentials",
    "acs3_headers",
    "anonymous_rpc_query",
    "authorization",
    "canonical_headers",
    "canonical_query_string",
    "canonical_request",
    "canonical_uri",
    "format_date",
    "hashed_payload",
    "new_nonce",
    "percent_encode",
    "rpc_canonicalized_query_string",
    "rpc_hmac_key",
    "rpc_query",
    "rpc_signature",
    "rpc_string_to_sign",
    "signature",
    "string_to_sign",
]

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
RPC_SIGNATURE_METHOD = "HMAC-SHA1"
RPC_SIGNATURE_VERSION = "1.0"
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()
#: Headers never signed: added or changed by the HTTP layer after signing.
UNSIGNED_HEADERS = frozenset(
    {
        "authorization",
        "content-length",
        "accept-encoding",
        "connection",
        "transfer-encoding",
        "expect",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
    }
)

Pairs = Mapping[str, str] | Iterable[tuple[str, str]]
"""Parameters or headers: a mapping, or (name, value) pairs."""


class CredentialsLike(Protocol):
    """What the builders read: :class:`cms_magic.credentials.Credentials` fits."""

    @property
    def access_key_id(self) -> str: ...

    @property
    def access_key_secret(self) -> str | Secret: ...

    @property
    def security_token(self) -> str | Secret | None: ...


class StaticCredentials:
    """A minimal (id, secret, token) triple for the builders; secrets held as :class:`Secret`.

    Immutable; the repr shows no secret or token. :class:`cms_magic.credentials.Credentials`
    (with its checks and masked id) serves as well.
    """

    __slots__ = ("access_key_id", "access_key_secret", "security_token")
    access_key_id: str
    access_key_secret: Secret
    security_token: Secret | None

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str | Secret,
        security_token: str | Secret | None = None,
    ) -> None:
        object.__setattr__(self, "access_key_id", access_key_id)
        object.__setattr__(self, "access_key_secret", Secret(access_key_secret))
        token = Secret(security_token) if security_token else None
        del access_key_secret, security_token
        object.__setattr__(self, "security_token", token)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"StaticCredentials are immutable (cannot set {name!r})")

    def __repr__(self) -> str:
        token = ", security_token=<set>" if self.security_token else ""
        return f"StaticCredentials(access_key_id={self.access_key_id!r}{token})"


def _reveal(secret: str | Secret) -> str:
    return secret.reveal() if isinstance(secret, Secret) else secret


def _pairs(items: Pairs) -> list[tuple[str, str]]:
    return list(items.items()) if isinstance(items, Mapping) else list(items)


# ---- shared ------------------------------------------------------------------------------


def percent_encode(text: str) -> str:
    """RFC 3986 encoding of the UTF-8 bytes: only ``A-Z a-z 0-9 - _ . ~`` are kept."""
    return quote(text, safe="")


def format_date(epoch_seconds: float) -> str:
    """The UTC date both signatures use: ``YYYY-MM-DDThh:mm:ssZ`` (seconds, truncated)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def new_nonce() -> str:
    """A fresh nonce, 32 hex characters (for callers: no pure step calls this)."""
    return secrets.token_hex(16)


# ---- ACS3-HMAC-SHA256 --------------------------------------------------------------------


def canonical_uri(path: str) -> str:
    """The path, percent-encoded with its ``/`` kept; an empty path is ``/``."""
    return quote(path or "/", safe="/")


def canonical_query_string(query: Pairs) -> str:
    """``encode(key)=encode(value)`` pairs sorted by key (then value), joined by ``&``.

    An empty value gives ``key=``; no parameters give the empty string.
    """
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in _pairs(query))
    return "&".join(f"{key}={value}" for key, value in encoded)


def canonical_headers(headers: Pairs) -> tuple[str, str]:
    """``(CanonicalHeaders, SignedHeaders)`` for exactly the headers given.

    Names are lower-cased before sorting, values trimmed; each header is a
    ``name:value\\n`` line (so the text ends with a newline); the signed headers are the
    names joined by ``;``. A name given twice has its values joined by ``,``.
    """
    merged: dict[str, list[str]] = {}
    for name, value in _pairs(headers):
        merged.setdefault(name.strip().lower(), []).append(value.strip())
    names = sorted(merged)
    text = "".join(f"{name}:{','.join(merged[name])}\n" for name in names)
    return text, ";".join(names)


def hashed_payload(body: bytes) -> str:
    """``x-acs-content-sha256``: the lower-case hex SHA-256 of the body bytes."""
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    canonical_uri: str,
    canonical_query_string: str,
    canonical_headers: str,
    signed_headers: str,
    hashed_payload: str,
) -> str:
    """The six parts joined by ``\\n`` (the canonical headers bring their own last newline)."""
    return "\n".join(
        (
            method.upper(),
            canonical_uri,
            canonical_query_string,
            canonical_headers,
            signed_headers,
            hashed_payload,
        )
    )


def string_to_sign(canonical_request: str) -> str:
    """``ACS3-HMAC-SHA256\\n`` and the hex SHA-256 of the UTF-8 canonical request."""
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ACS3_ALGORITHM}\n{digest}"


def signature(secret: str | Secret, string_to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256 of the string to sign, keyed by the UTF-8 secret."""
    key = _reveal(secret).encode("utf-8")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(access_key_id: str, signed_headers: str, signature: str) -> str:
    """The ``Authorization`` header value."""
    return (
        f"{ACS3_ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )


def acs3_headers(
    method: str,
    host: str,
    path: str,
    query: Pairs,
    headers: Pairs,
    body: bytes,
    credentials: CredentialsLike | None,
    *,
    action: str,
    version: str,
    date: str,
    nonce: str,
) -> dict[str, str]:
    """Every header of an ACS3 request, ``authorization`` included (lower-case names).

    Writes ``host``, ``x-acs-action``, ``x-acs-version``, ``x-acs-date`` (``date``, as
    :func:`format_date` gives it), ``x-acs-signature-nonce``, ``x-acs-content-sha256``, and
    with a security token ``x-acs-accesskey-id`` + ``x-acs-security-token``; the given
    ``headers`` are kept (the builder's own names win). Every header returned is signed but
    those in :data:`UNSIGNED_HEADERS`. ``credentials=None`` builds an anonymous request: the
    same headers and no ``authorization``. ``query`` is sent as the URL query (any encoding
    that decodes to the same text), ``body`` as is.
    """
    out: dict[str, str] = {}
    for name, value in _pairs(headers):
        lower = name.strip().lower()
        if lower != "authorization":
            out[lower] = value
    out.update(
        {
            "host": host,
            "x-acs-action": action,
            "x-acs-version": version,
            "x-acs-date": date,
            "x-acs-signature-nonce": nonce,
            "x-acs-content-sha256": hashed_payload(body),
        }
    )
    if credentials is None:
        return out
    token = credentials.security_token
    if token:
        out["x-acs-accesskey-id"] = credentials.access_key_id
        out["x-acs-security-token"] = _reveal(token)
    text, signed = canonical_headers(
        [(name, value) for name, value in out.items() if name not in UNSIGNED_HEADERS]
    )
    request = canonical_request(
        method,
        canonical_uri(path),
        canonical_query_string(query),
        text,
        signed,
        out["x-acs-content-sha256"],
    )
    digest = signature(credentials.access_key_secret, string_to_sign(request))
    out["authorization"] = authorization(credentials.access_key_id, signed, digest)
    return out


# ---- RPC v2 (HMAC-SHA1) ------------------------------------------------------------------


def rpc_canonicalized_query_string(params: Pairs) -> str:
    """Every parameter but ``Signature``, ``encode(key)=encode(value)`` sorted, joined by ``&``."""
    return canonical_query_string((k, v) for k, v in _pairs(params) if k != "Signature")


def rpc_string_to_sign(method: str, canonicalized_query_string: str) -> str:
    """``METHOD&%2F&`` and the percent-encoded canonicalized query string."""
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonicalized_query_string)}"


def rpc_hmac_key(secret: str | Secret) -> str:
    """The HMAC key: the secret followed by ``&``."""
    return _reveal(secret) + "&"


def rpc_signature(secret: str | Secret, string_to_sign: str) -> str:
    """Base64 HMAC-SHA1 of the string to sign, keyed by ``secret + "&"`` (before URL-encoding)."""
    key = rpc_hmac_key(secret).encode("utf-8")
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _rpc_common(
    params: Pairs, action: str, version: str, date: str, response_format: str
) -> dict[str, str]:
    out = dict(_pairs(params))
    out.update({"Action": action, "Format": response_format, "Version": version, "Timestamp": date})
    return out


def rpc_query(
    method: str,
    params: Pairs,
    credentials: CredentialsLike,
    *,
    action: str,
    version: str,
    date: str,
    nonce: str,
    response_format: str = "JSON",
) -> dict[str, str]:
    """Every parameter of a signed RPC v2 request, ``Signature`` included.

    ``params`` are the action's own (query and form together: both are signed); the common
    ones are added: ``Action``, ``Format``, ``Version``, ``Timestamp`` (``date``),
    ``SignatureNonce``, ``SignatureMethod``, ``SignatureVersion``, ``AccessKeyId`` and
    ``SecurityToken`` when the credentials carry one. No header is signed.
    """
    out = _rpc_common(params, action, version, date, response_format)
    out.update(
        {
            "SignatureNonce": nonce,
            "SignatureMethod": RPC_SIGNATURE_METHOD,
            "SignatureVersion": RPC_SIGNATURE_VERSION,
            "AccessKeyId": credentials.access_key_id,
        }
    )
    out.pop("Signature", None)
    token = credentials.security_token
    if token:
        out["SecurityToken"] = _reveal(token)
    to_sign = rpc_string_to_sign(method, rpc_canonicalized_query_string(out))
    out["Signature"] = rpc_signature(credentials.access_key_secret, to_sign)
    return out


def anonymous_rpc_query(
    params: Pairs,
    *,
    action: str,
    version: str,
    date: str,
    nonce: str | None = None,
    response_format: str = "JSON",
) -> dict[str, str]:
    """The parameters of an anonymous RPC call (``AssumeRoleWithOIDC``): no signature.

    ``Action``, ``Format``, ``Version``, ``Timestamp`` and (when given) ``SignatureNonce``
    are added; ``AccessKeyId``, ``SignatureMethod``, ``SignatureVersion``, ``SecurityToken``
    and ``Signature`` are never present.
    """
    out = _rpc_common(params, action, version, date, response_format)
    if nonce is not None:
        out["SignatureNonce"] = nonce
    for name in (
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SecurityToken",
        "Signature",
    ):
        out.pop(name, None)
    return out
