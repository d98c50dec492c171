"""A static AccessKey pair (:class:`Credentials`) and how a key id is shown (:func:`mask`).

Kept apart from the chain (:mod:`cms_magic.credentials.static`) so that the refreshing
machinery, which hands out :class:`Credentials` built from its triples, and the chain, which
builds refreshing sources, import it without importing each other.

A secret never appears in a repr, a str or an exception message: the AccessKey id is shown
masked, a token only as present or not. The secret and the token are wrapped in a
:class:`~cms_magic.credentials.secret.Secret` the moment they are read, and the helpers that
see a plain value return a value or a :class:`~cms_magic.credentials.files.Problem`, never
raise, so no traceback's frames hold the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from cms_magic.credentials.secret import Secret
from cms_magic.credentials.specs import Problem
from cms_magic.errors import CredentialsError

__all__ = ["Credentials", "mask"]


def mask(value: str) -> str:
    """Mask a key for display: ``LTAI5tAbCdEfGh1234abcd`` -> ``LTAI****abcd``.

    Values of 12 characters or more keep their first and last 4; from 6 to 11
    characters only the last 2; shorter values show nothing.
    """
    if len(value) >= 12:
        return f"{value[:4]}****{value[-4:]}"
    if len(value) >= 6:
        return f"****{value[-2:]}"
    return "****"


def _wrap(value: object, option: str, *, optional: bool) -> Secret | Problem | None:
    """``value`` stripped and wrapped in a :class:`Secret`, or what is wrong with it.

    ``None`` (and, when ``optional``, an empty value) gives ``None``. Never raises, so
    this frame, which holds the text, is never on a traceback.
    """
    if value is None and optional:
        return None
    if isinstance(value, Secret | str):
        text = (value.reveal() if isinstance(value, Secret) else value).strip()
    else:
        kind = "a string or None" if optional else "a string"
        return Problem(f"must be {kind}, got a {type(value).__name__}", option)
    if not text:
        return None if optional else Problem("must not be empty", option)
    if not text.isprintable():
        return Problem("must not contain control characters", option)
    return Secret(text)


def _as_secret(value: object) -> Secret | Problem:
    wrapped = _wrap(value, "access_key_secret", optional=False)
    return Problem("must not be empty", "access_key_secret") if wrapped is None else wrapped


def _as_token(value: object) -> Secret | Problem | None:
    return _wrap(value, "security_token", optional=True)


def _check_id(value: object) -> str | Problem:
    if not isinstance(value, str):
        return Problem(f"must be a string, got a {type(value).__name__}", "access_key_id")
    text = value.strip()
    if not text:
        return Problem("must not be empty", "access_key_id")
    if any(ch.isspace() or ch == ":" or not ch.isprintable() for ch in text):
        return Problem(
            f"must not contain whitespace, ':' or control characters, got {mask(text)!r} (masked)",
            "access_key_id",
        )
    return text


@dataclass(frozen=True, init=False)
class Credentials:
    """An AccessKey pair, an optional STS token, and a note of where they came from.

    ``access_key_secret`` and ``security_token`` are :class:`Secret` values (given as
    plain strings, they are wrapped): masked in every rendering, their text only
    through ``.reveal()``. Values are stripped of surrounding whitespace; an empty
    token becomes ``None``. The repr and str show only the masked id, whether a token
    is set, and the source.
    """

    access_key_id: str
    access_key_secret: Secret
    security_token: Secret | None
    source: str

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str | Secret,
        security_token: str | Secret | None = None,
        source: str = "explicit",
    ) -> None:
        secret = _as_secret(access_key_secret)
        token = _as_token(security_token)
        del access_key_secret, security_token  # this frame may be on the traceback below
        key_id = _check_id(access_key_id)
        if isinstance(key_id, Problem):
            raise key_id.error()
        if isinstance(secret, Problem):
            raise secret.error()
        if isinstance(token, Problem):
            raise token.error()
        if not isinstance(source, str):
            raise CredentialsError(
                f"must be a string, got a {type(source).__name__}", option="source"
            )
        object.__setattr__(self, "access_key_id", key_id)
        object.__setattr__(self, "access_key_secret", secret)
        object.__setattr__(self, "security_token", token)
        object.__setattr__(self, "source", source)

    @property
    def masked_id(self) -> str:
        """The AccessKey id, masked for display."""
        return mask(self.access_key_id)

    @property
    def quota_key(self) -> str:
        """Which account quota requests signed with these keys share: the AccessKey id (a
        :class:`~cms_magic.credentials.refreshing.RefreshingCredentials` names its source)."""
        return self.access_key_id

    def describe(self) -> dict[str, object]:
        """What ``whoami`` shows, with the keys of
        :meth:`RefreshingCredentials.describe <cms_magic.credentials.refreshing.RefreshingCredentials.describe>`:
        the source, the masked key id, whether a token is set; static keys never expire and
        are never fetched. Never the secret or the token."""
        return {
            "source": self.source,
            "access_key_id": self.masked_id,
            "security_token": self.security_token is not None,
            "expires_at": None,
            "expires_in": None,
            "fetches": 0,
            "refresh_error": None,
        }

    def __repr__(self) -> str:
        # getattr: a half-built instance (its __init__ raising) is repr'd by traceback tools
        key_id = getattr(self, "access_key_id", None)
        token = "<set>" if getattr(self, "security_token", None) else "None"
        return (
            f"Credentials(access_key_id={None if key_id is None else mask(key_id)!r}, "
            f"security_token={token}, source={getattr(self, 'source', None)!r})"
        )

    __str__ = __repr__
