"""The temporary credentials the emulator mints, and what the upload check asks of them.

One :class:`MintedRegistry` is shared by the upload handler
(:class:`~cms_magic.emulator.service.Emulator`) and the handlers that mint: STS
(:class:`~cms_magic.emulator.sts.StsEmulator`), the credentials URI and the instance
metadata (:mod:`cms_magic.emulator.endpoints`). An upload signed with a minted key is
checked by :func:`check_minted_key`: the key must be known, sent with its own token, and not
expired. An expired token is refused as the services refuse it: HTTP 403, body
``{"code": "InvalidSecurityToken.Expired", "msg": "Specified SecurityToken is expired: ...",
"requestId": ...}`` (:data:`UPLOAD_TOKEN_EXPIRED_CODE`, :func:`upload_token_expired_message`),
so a sender can tell "get fresh credentials and sign again" from any other refusal.

No repr, str or message here shows a secret or a token.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from cms_magic.credentials.secret import Secret
from cms_magic.credentials.static import Credentials, mask
from cms_magic.emulator.validation import Refusal, show
from cms_magic.openapi import signing

__all__ = [
    "DEFAULT_LIFETIME_SECONDS",
    "UPLOAD_TOKEN_EXPIRED_CODE",
    "Minted",
    "MintedRegistry",
    "TokenStatus",
    "check_lifetime",
    "check_minted_key",
    "upload_token_expired_message",
]

#: How long minted credentials live unless told otherwise (one hour, as the services' default).
DEFAULT_LIFETIME_SECONDS: Final = 3600.0
#: The ``code`` of an upload refused because its security token expired (HTTP 403).
UPLOAD_TOKEN_EXPIRED_CODE: Final = "InvalidSecurityToken.Expired"  # noqa: S105 - an error code
_ALNUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def check_lifetime(lifetime_seconds: float) -> float:
    """``lifetime_seconds`` as a float, if it is a number > 0 (else ValueError)."""
    if (
        isinstance(lifetime_seconds, bool)
        or not isinstance(lifetime_seconds, int | float)
        or not lifetime_seconds > 0
    ):
        raise ValueError(f"lifetime_seconds must be a number > 0, got {lifetime_seconds!r}")
    return float(lifetime_seconds)


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
        return signing.format_date(self.expires_at)

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


def upload_token_expired_message(expiration: str) -> str:
    """The ``msg`` of an upload refused for an expired token.

    The reference gives no message for this case; this one starts with the services' own
    words for it (``Specified SecurityToken is expired``) and says when and what to do. It
    names no key: a sender knows which triple it signed with.
    """
    return (
        f"Specified SecurityToken is expired: the security token sent expired at {expiration}; "
        "get fresh temporary credentials (AssumeRole again) and sign the request with them"
    )


def check_minted_key(
    registry: MintedRegistry, key_id: str, fields: Mapping[str, str], now: float
) -> Credentials:
    """For the upload check: the minted key ``key_id`` as :class:`Credentials`, or a 403.

    ``fields`` are the upload's lower-cased header fields (``x-cms-security-token``). Called
    by the upload check when ``key_id`` is not one of its static keys; the returned
    credentials then go to the signature check as a static key's would. An expired token is
    refused with ``code`` :data:`UPLOAD_TOKEN_EXPIRED_CODE`.
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
        raise Refusal(
            403, upload_token_expired_message(minted.expiration), code=UPLOAD_TOKEN_EXPIRED_CODE
        )
    if fields.get("x-cms-caller-type") != "token":
        raise Refusal(
            403,
            "header x-cms-caller-type must be 'token' when a security token is sent, "
            f"got {show(fields.get('x-cms-caller-type'))}",
        )
    return minted.credentials()
