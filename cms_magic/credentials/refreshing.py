"""Credentials that expire and are fetched again: the refresh machinery, for any source.

A refreshing source (STS ``AssumeRole``, ``AssumeRoleWithOIDC``, a credentials URI, the
instance metadata) is a ``fetch`` coroutine function returning a :class:`Triple`: an
immutable AccessKey id, secret, token and expiry. :class:`RefreshingCredentials` wraps it:

- ``await current()`` hands out one whole triple, valid for at least a margin; each request
  is signed with one triple, never a mix of two.
- It refreshes ahead of expiry, when ``min(lifetime / 3, 300 s)`` is left, in a background
  task on the running event loop, while callers keep getting the old triple. One fetch per
  triple handed out, never one per request (also for 900-second credentials), and one for
  all concurrent callers (single flight: an :class:`asyncio.Task` they share, never a
  threading lock on the loop).
- A refresh that fails while the old triple is still valid is retried with a bounded
  exponential backoff (the injected ``sleep``), each wait ending at the latest when the old
  triple stops being usable. Once it has expired, callers get a
  :class:`~cms_magic.errors.CredentialsError` naming the source and why (the fetch's error
  text, scrubbed of every secret the machinery knows).
- A source that answers with the triple it gave last time (same key id and expiry: not
  renewed yet) has not refreshed: the old schedule holds and the retry backs off.
- :meth:`RefreshingCredentials.force_refresh` answers an upload's "token expired": the
  triple is dropped, one refresh is made, and every caller gets the new triple.
- :meth:`RefreshingCredentials.describe` says the source, the masked key id and when the
  triple expires, never the secret or token.

Expiry is wall time (``expires_at``, what STS's ``Expiration`` says); the machinery turns it
into a monotonic deadline when a triple arrives, so a wall clock that jumps later changes
nothing. Clocks and sleep are injectable; tests run on a fake clock and never sleep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Final

from cms_magic.credentials.accesskey import Credentials, mask
from cms_magic.credentials.secret import Secret
from cms_magic.errors import CredentialsError
from cms_magic.redact import scrub

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "MAX_REFRESH_AHEAD",
    "Fetch",
    "RefreshingCredentials",
    "Triple",
    "refresh_ahead",
]


async def _asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


#: At most this many seconds before expiry a refresh starts (else a third of the lifetime).
MAX_REFRESH_AHEAD: Final = 300.0

#: Seconds of validity a handed-out triple keeps at least (less for short-lived triples:
#: at most half of the refresh-ahead window, so a fresh triple is always usable).
DEFAULT_MARGIN: Final = 30.0

#: The first wait after a failed background refresh, doubled after each failure up to the cap.
DEFAULT_BACKOFF: Final = 1.0
DEFAULT_BACKOFF_CAP: Final = 60.0

#: The longest error text kept from a failed fetch.
_MAX_REASON_CHARS: Final = 500


def refresh_ahead(lifetime: float) -> float:
    """Seconds before expiry a refresh starts: a third of ``lifetime``, at most 5 minutes."""
    return max(0.0, min(lifetime / 3.0, MAX_REFRESH_AHEAD))


@dataclass(frozen=True, slots=True, repr=False, init=False)
class Triple:
    """An AccessKey id, its secret, an optional STS token and the wall time it expires at.

    Immutable, so a request signed with a triple is signed with all of it. ``secret`` and
    ``token`` are :class:`~cms_magic.credentials.secret.Secret` values (given as plain
    strings, they are wrapped); ``expires_at`` is a POSIX timestamp (``None``: it never
    expires). The repr and str show the masked id, whether a token is set, and the expiry,
    never the secret or the token.
    """

    access_key_id: str
    secret: Secret
    token: Secret | None
    expires_at: float | None

    def __init__(
        self,
        access_key_id: str,
        secret: Secret | str,
        token: Secret | str | None = None,
        expires_at: float | None = None,
    ) -> None:
        # Checked as ``object``: callers without type checking may pass anything.
        key_id: object = access_key_id
        wrapped_secret = _wrapped(secret)
        wrapped_token = None if token is None else _wrapped(token)
        del secret, token  # a plain secret is not left in this frame for a traceback
        if not isinstance(key_id, str) or not key_id.strip():
            raise CredentialsError("must be a non-empty string", option="access_key_id")
        if isinstance(wrapped_secret, str):
            raise CredentialsError(wrapped_secret, option="access_key_secret")
        if isinstance(wrapped_token, str):
            raise CredentialsError(wrapped_token, option="security_token")
        expires: object = expires_at
        if expires is not None and (
            isinstance(expires, bool)
            or not isinstance(expires, int | float)
            or not math.isfinite(expires)
        ):
            raise CredentialsError(
                "must be a finite POSIX timestamp or None", option="expires_at", value=expires
            )
        object.__setattr__(self, "access_key_id", key_id)
        object.__setattr__(self, "secret", wrapped_secret)
        object.__setattr__(self, "token", wrapped_token)
        object.__setattr__(self, "expires_at", None if expires_at is None else float(expires_at))

    @property
    def masked_id(self) -> str:
        """The AccessKey id, masked for display."""
        return mask(self.access_key_id)

    @classmethod
    def from_credentials(cls, credentials: Credentials, expires_at: float | None = None) -> Triple:
        """The triple of ``credentials`` (which carry no expiry: give it, or it never expires)."""
        return cls(
            credentials.access_key_id,
            credentials.access_key_secret,
            credentials.security_token,
            expires_at,
        )

    def to_credentials(self, source: str) -> Credentials:
        """These keys as :class:`~cms_magic.credentials.static.Credentials`, for the signer."""
        return Credentials(self.access_key_id, self.secret, self.token, source=source)

    def __repr__(self) -> str:
        # getattr: a half-built instance (its __post_init__ raising) is repr'd by tracebacks
        key_id = getattr(self, "access_key_id", None)
        shown = mask(key_id) if isinstance(key_id, str) else None
        token = "<set>" if getattr(self, "token", None) is not None else "None"
        expires = getattr(self, "expires_at", None)
        return f"Triple(access_key_id={shown!r}, token={token}, expires_at={_iso(expires)!r})"

    __str__ = __repr__


#: What a refreshing source is: a coroutine function giving a fresh triple each call.
Fetch = Callable[[], Awaitable[Triple]]


@dataclass(frozen=True, slots=True)
class _Failure:
    """A fetch that failed: its error text, already scrubbed."""

    reason: str


def _wrapped(value: object) -> Secret | str:
    """``value`` as a :class:`Secret`, or what is wrong with it (naming only its type)."""
    if isinstance(value, Secret):
        return value
    if isinstance(value, str) and value:
        return Secret(value)
    if isinstance(value, str):
        return "must not be empty"
    return f"must be a Secret or a str, got a {type(value).__name__}"


def _iso(timestamp: object) -> str | None:
    if not isinstance(timestamp, int | float) or not math.isfinite(timestamp):
        return None
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class RefreshingCredentials:
    """Hands out triples from ``fetch`` and refreshes them ahead of expiry (see the module).

    ``source`` names the source and its profile or role in errors and :meth:`describe`
    (``"aliyun CLI profile 'ci' (RamRoleArn acs:ram::1:role/x, ~/.aliyun/config.json)"``).
    ``quota_key`` is what requests signed with its triples share a quota by (each minted key
    id differs, so: the role ARN, the URI...; default: ``source``). ``known_secrets`` are the
    source's own long-lived secrets (the AccessKey secret AssumeRole signs with, an OIDC
    token): scrubbed, with every triple's secret and token, out of any error text. ``clock``
    is the wall clock (expiry), ``monotonic`` the clock of the schedule, ``sleep`` the
    backoff's wait. Building one contacts nothing: the first :meth:`current` fetches.
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        source: str,
        quota_key: str | None = None,
        known_secrets: Iterable[Secret] = (),
        margin: float = DEFAULT_MARGIN,
        backoff: float = DEFAULT_BACKOFF,
        backoff_cap: float = DEFAULT_BACKOFF_CAP,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not isinstance(source, str) or not source.strip():
            raise CredentialsError("must be a non-empty string", option="source")
        for option, number in (("margin", margin), ("backoff", backoff)):
            if not math.isfinite(number) or number < 0:
                raise CredentialsError("must be a finite number >= 0", option=option, value=number)
        if not math.isfinite(backoff_cap) or backoff_cap < backoff:
            raise CredentialsError(
                "must be a finite number >= backoff", option="backoff_cap", value=backoff_cap
            )
        if quota_key is not None and (not isinstance(quota_key, str) or not quota_key.strip()):
            raise CredentialsError("must be a non-empty string or None", option="quota_key")
        self._fetch = fetch
        self.source = source
        #: What requests signed with this source's triples share a quota by.
        self.quota_key = source if quota_key is None else quota_key
        self._known: tuple[Secret, ...] = tuple(Secret(s) for s in known_secrets)
        self._margin = margin
        self._backoff = backoff
        self._backoff_cap = backoff_cap
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep if sleep is not None else _asyncio_sleep

        self._triple: Triple | None = None
        self._previous: Triple | None = None
        #: Monotonic times: the triple is handed out until ``_usable_until``; a background
        #: refresh starts at ``_refresh_at``.
        self._usable_until = -math.inf
        self._refresh_at = -math.inf
        self._task: asyncio.Task[Triple | _Failure] | None = None
        #: The refresh task while it waits out a backoff (so a caller in need replaces it).
        self._sleeper: asyncio.Task[Triple | _Failure] | None = None
        self._failures = 0
        self._last_error: str | None = None
        #: How many fetches were made (each one a call to the source).
        self.fetches = 0

    # -- what callers use ------------------------------------------------------------------

    async def current(self) -> Triple:
        """A triple valid for at least the margin; fetched (once for all callers) if needed."""
        now = self._monotonic()
        triple = self._triple
        if triple is not None and now < self._usable_until:
            if now >= self._refresh_at and self._inflight() is None:
                self._start()  # ahead of expiry: in the background, the old triple meanwhile
            return triple
        return await self._refresh_now()

    async def force_refresh(self, stale: Triple | None = None) -> Triple:
        """Drop the triple (the service said its token expired) and fetch a new one.

        With ``stale`` (the triple the refused request was signed with), a triple already
        replaced is not dropped again: every upload refused at once makes one refresh.
        """
        if stale is not None and self._triple is not None and self._triple is not stale:
            return await self.current()
        self._usable_until = self._refresh_at = -math.inf  # the old triple is handed out no more
        return await self._refresh_now()

    @property
    def masked_id(self) -> str | None:
        """The current triple's AccessKey id, masked; ``None`` before the first fetch."""
        triple = self._triple
        return None if triple is None else triple.masked_id

    def describe(self) -> dict[str, object]:
        """Where the credentials come from and when they expire (for ``whoami``); the key id
        masked, never the secret or the token."""
        triple = self._triple
        expires_at = None if triple is None else triple.expires_at
        return {
            "source": self.source,
            "access_key_id": None if triple is None else triple.masked_id,
            "security_token": None if triple is None else triple.token is not None,
            "expires_at": _iso(expires_at),
            "expires_in": None if expires_at is None else round(expires_at - self._clock(), 1),
            "fetches": self.fetches,
            "refresh_error": self._last_error,
        }

    def __repr__(self) -> str:
        triple = self._triple
        shown = None if triple is None else triple.masked_id
        return f"RefreshingCredentials(source={self.source!r}, access_key_id={shown!r})"

    # -- the machinery ---------------------------------------------------------------------

    def _inflight(self) -> asyncio.Task[Triple | _Failure] | None:
        """The refresh task running on this loop, if any (one left on a closed loop is gone)."""
        task = self._task
        if task is None or task.done():
            return None
        import asyncio

        if task.get_loop() is not asyncio.get_running_loop():
            self._task = self._sleeper = None
            return None
        return task

    def _start(self) -> asyncio.Task[Triple | _Failure]:
        import asyncio

        task = asyncio.get_running_loop().create_task(self._attempts())
        self._task = task
        return task

    async def _refresh_now(self) -> Triple:
        """Wait for a refresh, starting one unless one is fetching already (one waiting out
        its backoff is replaced: the caller needs a triple now)."""
        task = self._inflight()
        if task is not None and task is self._sleeper:
            task.cancel()
            self._sleeper = task = None
        if task is None:
            task = self._start()
        import asyncio

        outcome = await asyncio.shield(task)
        if isinstance(outcome, _Failure):
            # A fresh error in the caller's own frame: nothing chained, no fetch frame on it.
            verb = "fetched" if self._triple is None else "refreshed"
            raise CredentialsError(
                f"credentials from {self.source} could not be {verb}: {outcome.reason}"
            )
        return outcome

    async def _attempts(self) -> Triple | _Failure:
        """Fetch until a triple arrives; after a failure, wait (backoff) and try again while
        the old triple is still usable, else give the failure. Never raises."""
        import asyncio

        me = asyncio.current_task()
        while True:
            outcome = await self._attempt()
            if isinstance(outcome, Triple):
                return outcome
            left = self._usable_until - self._monotonic()
            if left <= 0:
                return outcome
            delay = min(self._backoff * 2.0 ** (self._failures - 1), self._backoff_cap, left)
            self._sleeper = me
            try:
                await self._sleep(max(delay, 0.0))
            except Exception:  # a broken sleep ends the retries; the callers get the failure
                return outcome
            finally:
                if self._sleeper is me:
                    self._sleeper = None

    async def _attempt(self) -> Triple | _Failure:
        """One fetch: the triple installed, or the failure recorded (its text scrubbed)."""
        import asyncio

        self.fetches += 1
        reason: str | None = None
        got: object = None
        try:
            got = await self._fetch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of the source is reported, scrubbed
            reason = self._scrubbed(f"{type(exc).__name__}: {exc}")
            del exc
        triple = got if isinstance(got, Triple) else None
        if reason is None and triple is None:
            reason = f"the source gave a {type(got).__name__}, not a Triple"
        del got
        if triple is not None:
            reason = self._install(triple)
        if reason is None and triple is not None:
            self._failures = 0
            self._last_error = None
            return triple
        self._failures += 1
        self._last_error = reason or "the source gave no credentials"
        return _Failure(self._last_error)

    def _install(self, triple: Triple) -> str | None:
        """Hand ``triple`` out from now on; or why it cannot be (it has expired already)."""
        wall, now = self._clock(), self._monotonic()
        held = self._triple
        if (
            held is not None
            and triple.expires_at is not None
            and triple.expires_at == held.expires_at
            and triple.access_key_id == held.access_key_id
        ):
            # Not renewed yet (a URI or metadata service may serve the same keys for a while):
            # a failed refresh, so the schedule of the first arrival holds and backoff applies.
            return (
                f"the source gave the same credentials again (expiring at {_iso(held.expires_at)})"
            )
        if triple.expires_at is None:
            usable_until = refresh_at = math.inf
        else:
            lifetime = triple.expires_at - wall
            if lifetime <= 0:
                return f"the source gave credentials that expired at {_iso(triple.expires_at)}"
            ahead = refresh_ahead(lifetime)
            usable_until = now + lifetime - min(self._margin, ahead / 2.0)
            refresh_at = now + lifetime - ahead
        self._previous, self._triple = self._triple, triple
        self._usable_until, self._refresh_at = usable_until, refresh_at
        return None

    def _scrubbed(self, text: str) -> str:
        secrets: list[str] = [s.reveal() for s in self._known]
        for triple in (self._triple, self._previous):
            if triple is not None:
                secrets.append(triple.secret.reveal())
                if triple.token is not None:
                    secrets.append(triple.token.reveal())
        cleaned = scrub(text, secrets)
        del secrets
        if len(cleaned) > _MAX_REASON_CHARS:
            cleaned = cleaned[: _MAX_REASON_CHARS - 1] + "…"
        return cleaned
