"""The keys a run signs with: one whole triple per request, refreshed when it runs out.

A run is given either static :class:`~cms_magic.credentials.static.Credentials` or a
:class:`~cms_magic.credentials.refreshing.RefreshingCredentials`. :class:`Keys` hides the
difference from the run: :meth:`Keys.signer` gives the :class:`Signer` for the next
request, a :class:`~cms_magic.signing.CmsAuth` and the credentials it was built from (for
scrubbing an answer and wording a refusal), built once per triple, never per request.
With a refreshing source it awaits the source's ``current()`` (a refresh ahead of expiry
runs in the background on the same loop; callers keep the old triple meanwhile), so every
request is signed with one triple, never a mix; and :meth:`Keys.refresh` answers an
upload refused because its token expired (one refresh for every request refused at once).

A source that cannot give usable credentials any more raises
:class:`~cms_magic.errors.CredentialsError` from :meth:`Keys.signer`, naming the source and
why; the run stops with it (the rows not sent stay ``not_sent``, resumable with
``retry()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cms_magic.credentials.refreshing import RefreshingCredentials, Triple
from cms_magic.credentials.static import Credentials
from cms_magic.identity import AnyCredentials
from cms_magic.signing import CmsAuth

__all__ = ["AnyCredentials", "Keys", "Signer", "is_token_expired", "quota_key"]

#: Words of an upload refusal that says the STS token expired (the service's and the
#: emulator's wording; its code, where one is given, says the same).
_EXPIRED_WORDS: Final = ("expired", "expire")


def is_token_expired(code: str | None, message: str | None) -> bool:
    """Whether a refusal says the security token expired (not: a wrong secret)."""
    text = f"{code or ''} {message or ''}".lower()
    return "token" in text and any(word in text for word in _EXPIRED_WORDS)


def quota_key(credentials: Credentials | RefreshingCredentials) -> str:
    """Which account quota requests with ``credentials`` share: the AccessKey id, or for a
    refreshing source (whose minted key ids change at each refresh) the source itself."""
    return credentials.quota_key


@dataclass(frozen=True, slots=True)
class Signer:
    """The signer of one request and the credentials (one triple) it signs with."""

    auth: CmsAuth
    credentials: Credentials
    triple: Triple | None = None


class Keys:
    """The run's keys (see the module): static, or a refreshing source's triples."""

    __slots__ = ("_clock", "_last", "_source", "_source_ip", "_static")

    def __init__(
        self,
        credentials: Credentials | RefreshingCredentials,
        *,
        source_ip: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source_ip = source_ip
        self._clock = clock
        self._static: Signer | None = None
        self._source: RefreshingCredentials | None = None
        self._last: Signer | None = None
        if isinstance(credentials, Credentials):
            self._static = self._build(credentials, None)
        else:
            self._source = credentials

    @property
    def refreshing(self) -> bool:
        """Whether the keys come from a source that refreshes them."""
        return self._source is not None

    @property
    def source(self) -> str:
        return self._source.source if self._source is not None else "static credentials"

    def __repr__(self) -> str:
        return f"Keys(source={self.source!r})"

    def preview(self) -> Signer | None:
        """The signer a request would use now without contacting anything (a dry run): the
        static keys, or the triple a refreshing source last gave (None before its first)."""
        return self._static if self._static is not None else self._last

    async def signer(self) -> Signer:
        """The signer for the next request (raises CredentialsError when none is usable)."""
        if self._static is not None:
            return self._static
        assert self._source is not None
        triple = await self._source.current()
        return self._for(triple)

    async def refresh(self, used: Signer) -> Signer | None:
        """After an upload signed by ``used`` was refused for an expired token: a fresh
        signer (one refresh for all requests refused with the same triple), or None for
        static keys (nothing to refresh)."""
        if self._source is None:
            return None
        triple = await self._source.force_refresh(stale=used.triple)
        return self._for(triple)

    def _for(self, triple: Triple) -> Signer:
        last = self._last
        if last is not None and last.triple is triple:
            return last
        signer = self._build(triple.to_credentials(self.source), triple)
        self._last = signer
        return signer

    def _build(self, credentials: Credentials, triple: Triple | None) -> Signer:
        auth = CmsAuth.from_credentials(credentials, source_ip=self._source_ip, clock=self._clock)
        return Signer(auth, credentials, triple)
