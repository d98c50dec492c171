"""The refresh machinery (issue 14, "Refresh"), on a virtual clock: nothing here sleeps.

:class:`VirtualClock` is the monotonic clock, its ``wall`` the wall clock, and its ``sleep``
waits until the test moves time past the deadline (so a backoff is seen as it is asked for,
and a loop that did not wait would show as extra fetches).
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from cms_magic.credentials import Credentials, Secret
from cms_magic.credentials.refreshing import RefreshingCredentials, Triple, refresh_ahead
from cms_magic.errors import CredentialsError
from cms_magic.redact import MARK

T = TypeVar("T")

WALL0 = 1_700_000_000.0
SECRET = "SECRET-rf7kRefreshCanary3141"
TOKEN = "TOKEN-rf7kRefreshCanary2718"
LONG_LIVED = "LONGLIVED-rf7kRefreshCanary1618"
FRAGMENTS = ("rf7k", "RefreshCanary")
SOURCE = "STS AssumeRole (profile 'team')"


def run(main: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(main, 10))


async def settle() -> None:
    """Let every ready task run to its next wait (scheduling only, no time passes)."""
    for _ in range(20):
        await asyncio.sleep(0)


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            due = sorted(
                (s for s in self._sleepers if s[0] <= target and not s[1].done()),
                key=lambda s: s[0],
            )
            if not due:
                break
            deadline, future = due[0]
            self._sleepers.remove(due[0])
            self.now = max(self.now, deadline)
            future.set_result(None)
            await settle()
        self._sleepers = [s for s in self._sleepers if not s[1].done()]
        self.now = target
        await settle()


class Source:
    """A fake STS: each call mints a numbered triple of ``lifetime`` seconds, or fails while
    ``failing`` (with an error text that echoes every secret it could)."""

    def __init__(self, clock: VirtualClock, lifetime: float | None = 10.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[float] = []
        self.failing = False
        self.same = False  # answer with the first triple's keys and expiry again
        self._first_expiry: float | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> Triple:
        self.calls.append(self.clock.now)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        n = 1 if self.same else len(self.calls)
        if self.failing:
            raise ConnectionError(
                f"STS refused: SecurityToken={TOKEN}-1 secret {SECRET}-1 key {LONG_LIVED}"
            )
        expires = None if self.lifetime is None else self.clock.wall() + self.lifetime
        if self.same and self._first_expiry is not None:
            expires = self._first_expiry
        self._first_expiry = self._first_expiry or expires
        return Triple(
            f"STS.Key{n:04d}abcdefgh", Secret(f"{SECRET}-{n}"), Secret(f"{TOKEN}-{n}"), expires
        )


def machinery(clock: VirtualClock, source: Source, **options: Any) -> RefreshingCredentials:
    return RefreshingCredentials(
        source,
        source=SOURCE,
        known_secrets=[Secret(LONG_LIVED)],
        clock=clock.wall,
        monotonic=clock,
        sleep=clock.sleep,
        **options,
    )


def leaked(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


# -- Triple -----------------------------------------------------------------------------------


def test_triple_is_immutable_and_round_trips_through_credentials() -> None:
    triple = Triple("LTAI5tAbCdEfGh1234abcd", Secret(SECRET), Secret(TOKEN), WALL0 + 900)
    with pytest.raises(AttributeError):
        triple.secret = Secret("other-secret-value")  # type: ignore[misc]
    credentials = triple.to_credentials("STS AssumeRole")
    assert isinstance(credentials, Credentials)
    assert credentials.access_key_secret == SECRET
    assert credentials.security_token == TOKEN
    assert credentials.source == "STS AssumeRole"
    back = Triple.from_credentials(credentials, WALL0 + 900)
    assert back == triple
    assert Triple.from_credentials(credentials).expires_at is None
    assert not hasattr(triple, "__dict__")  # slots


@pytest.mark.parametrize(
    ("fields", "option"),
    [
        (("", Secret(SECRET), None, None), "access_key_id"),
        (("LTAI5tAbCdEfGh1234abcd", "", None, None), "access_key_secret"),
        (("LTAI5tAbCdEfGh1234abcd", b"SECRET-rf7k", None, None), "access_key_secret"),
        (("LTAI5tAbCdEfGh1234abcd", SECRET, 42, None), "security_token"),
        (("LTAI5tAbCdEfGh1234abcd", Secret(SECRET), None, float("nan")), "expires_at"),
        (("LTAI5tAbCdEfGh1234abcd", Secret(SECRET), None, "soon"), "expires_at"),
    ],
)
def test_triple_refuses_wrong_fields_without_showing_them(
    fields: tuple[Any, ...], option: str
) -> None:
    with pytest.raises(CredentialsError) as info:
        Triple(*fields)
    assert info.value.option == option
    assert not leaked(str(info.value))
    tb = info.value.__traceback__
    assert tb is not None
    info.value.with_traceback(tb.tb_next)  # from the library's frames on (``fields`` is ours)
    rendered = "".join(
        traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
    )
    assert "Triple.__init__" in rendered or "__init__" in rendered
    assert not leaked(rendered)


def test_plain_strings_are_wrapped() -> None:
    triple = Triple("LTAI5tAbCdEfGh1234abcd", SECRET, TOKEN, 1)
    assert isinstance(triple.secret, Secret)
    assert isinstance(triple.token, Secret)
    assert triple.secret == SECRET
    assert triple.expires_at == 1.0
    assert isinstance(triple.expires_at, float)


def test_no_repr_str_or_describe_shows_the_secret_or_token() -> None:
    clock = VirtualClock()
    source = Source(clock, lifetime=900)
    refreshing = machinery(clock, source)
    before = refreshing.describe()
    assert before["access_key_id"] is None
    assert before["expires_at"] is None

    triple = run(refreshing.current())
    shown = [repr(triple), str(triple), f"{triple}", repr(refreshing), str(refreshing.describe())]
    for text in shown:
        assert not leaked(text), text
    assert repr(triple) == (
        "Triple(access_key_id='STS.****efgh', token=<set>, expires_at='2023-11-14T22:28:20Z')"
    )
    described = refreshing.describe()
    assert described == {
        "source": SOURCE,
        "access_key_id": "STS.****efgh",
        "security_token": True,
        "expires_at": "2023-11-14T22:28:20Z",
        "expires_in": 900.0,
        "fetches": 1,
        "refresh_error": None,
    }


# -- single flight, refresh ahead -------------------------------------------------------------


def test_fifty_concurrent_callers_share_one_fetch() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=900)
        source.gate = asyncio.Event()
        refreshing = machinery(clock, source)
        callers = [asyncio.ensure_future(refreshing.current()) for _ in range(50)]
        await settle()
        assert len(source.calls) == 1  # all 50 are waiting on the one fetch
        source.gate.set()
        triples = await asyncio.gather(*callers)
        assert len(source.calls) == 1
        assert all(t is triples[0] for t in triples)
        # and the next 50 get it without fetching
        again = await asyncio.gather(*(refreshing.current() for _ in range(50)))
        assert all(t is triples[0] for t in again)
        assert len(source.calls) == 1

    run(main())


def test_refresh_ahead_is_a_third_of_the_lifetime_at_most_five_minutes() -> None:
    assert refresh_ahead(9) == 3
    assert refresh_ahead(900) == 300
    assert refresh_ahead(3600) == 300
    assert refresh_ahead(-1) == 0


@pytest.mark.parametrize(
    ("lifetime", "duration", "interval"), [(10.0, 30.0, 0.05), (900.0, 3600.0, 1.0)]
)
def test_a_long_send_fetches_about_once_per_lifetime(
    lifetime: float, duration: float, interval: float
) -> None:
    """A request every ``interval`` for ``duration``: each gets a whole, unexpired triple with
    at least its margin left, and the source is called about once per lifetime."""

    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=lifetime)
        refreshing = machinery(clock, source)
        margin = min(30.0, refresh_ahead(lifetime) / 2)
        requests = round(duration / interval)
        # Keyed by id, holding each triple: a freed triple's id could be reused by the next.
        handed: dict[int, object] = {}
        for _ in range(requests):
            triple = await refreshing.current()
            assert triple.expires_at is not None
            assert triple.expires_at - clock.wall() >= margin - 1e-9
            handed[id(triple)] = triple
            await clock.advance(interval)
        calls = source.calls
        assert len(calls) == len(handed)  # one fetch per triple handed out
        assert duration / lifetime <= len(calls) <= 2 * duration / lifetime + 1
        for start in calls:  # never more than two in any one lifetime
            assert sum(start <= c < start + lifetime for c in calls) <= 2
        assert clock.sleeps == []  # no failure, so no backoff

    run(main())


def test_credentials_that_never_expire_are_fetched_once() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=None)
        refreshing = machinery(clock, source)
        for _ in range(100):
            await refreshing.current()
            await clock.advance(3600)
        assert len(source.calls) == 1
        assert refreshing.describe()["expires_in"] is None

    run(main())


# -- failures ---------------------------------------------------------------------------------


def test_a_failed_refresh_keeps_the_valid_triple_and_retries_with_backoff() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=900)  # refresh from 600 s, usable until 870 s
        refreshing = machinery(clock, source)
        first = await refreshing.current()
        await clock.advance(600)
        source.failing = True
        assert await refreshing.current() is first  # starts the refresh in the background
        await settle()
        assert len(source.calls) == 2
        assert clock.sleeps == [1.0]
        assert "ConnectionError" in str(refreshing.describe()["refresh_error"])

        for _ in range(20):  # callers meanwhile: the old triple, and no extra fetch
            assert await refreshing.current() is first
        await clock.advance(0.5)
        assert len(source.calls) == 2  # waiting out the backoff, not looping
        await clock.advance(0.5)
        assert len(source.calls) == 3
        assert clock.sleeps == [1.0, 2.0]
        source.failing = False
        await clock.advance(2.0)
        assert len(source.calls) == 4
        fresh = await refreshing.current()
        assert fresh is not first
        assert fresh.access_key_id == "STS.Key0004abcdefgh"
        assert refreshing.describe()["refresh_error"] is None
        await clock.advance(100)
        assert await refreshing.current() is fresh
        assert len(source.calls) == 4

    run(main())


def test_retries_are_bounded_and_end_when_the_triple_expires() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=900)
        refreshing = machinery(clock, source)
        first = await refreshing.current()
        await clock.advance(600)
        source.failing = True
        assert await refreshing.current() is first
        for _ in range(269):  # to 869 s, just inside the usable time
            await clock.advance(1)
        assert await refreshing.current() is first
        # 1, 2, 4, ... capped at 60 s: a dozen attempts in 270 s, not one per second
        assert 6 <= len(source.calls) - 1 <= 12
        assert max(clock.sleeps) <= 60.0
        assert clock.sleeps[:4] == [1.0, 2.0, 4.0, 8.0]
        await clock.advance(2)  # the backoff's wait ends where the triple stops being usable
        calls = len(source.calls)
        with pytest.raises(CredentialsError) as info:
            await refreshing.current()
        assert len(source.calls) <= calls + 1
        assert SOURCE in str(info.value)
        assert "could not be refreshed" in str(info.value)

    run(main())


def test_a_source_that_serves_the_same_triple_again_is_not_asked_per_request() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=900)
        source.same = True
        refreshing = machinery(clock, source)
        first = await refreshing.current()
        for _ in range(869):  # a request a second up to the margin before expiry
            assert await refreshing.current() is first
            await clock.advance(1)
        assert 6 <= len(source.calls) - 1 <= 12  # backed off, not once per request
        assert "same credentials again" in str(refreshing.describe()["refresh_error"])
        await clock.advance(1)
        with pytest.raises(CredentialsError, match="same credentials again"):
            await refreshing.current()

    run(main())


def test_expired_and_failing_names_the_source_and_why_scrubbed() -> None:
    async def main() -> CredentialsError:
        clock = VirtualClock()
        source = Source(clock, lifetime=10)
        refreshing = machinery(clock, source)
        await refreshing.current()
        source.failing = True
        await clock.advance(20)  # no caller during the refresh window: expired now
        with pytest.raises(CredentialsError) as info:
            await refreshing.current()
        return info.value

    error = run(main())
    text = str(error)
    assert text.startswith(f"credentials from {SOURCE} could not be refreshed: ConnectionError: ")
    assert "STS refused" in text
    assert MARK in text
    assert not leaked(text), text
    assert error.__cause__ is None
    assert error.__context__ is None


def test_a_first_fetch_that_fails_raises_at_once() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock)
        source.failing = True
        refreshing = machinery(clock, source)
        results = await asyncio.gather(
            *(refreshing.current() for _ in range(10)), return_exceptions=True
        )
        assert len(source.calls) == 1
        assert all(isinstance(r, CredentialsError) for r in results)
        assert "could not be fetched" in str(results[0])
        assert clock.sleeps == []

    run(main())


def test_an_expired_triple_from_the_source_is_a_failure() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=-5)
        refreshing = machinery(clock, source)
        with pytest.raises(CredentialsError, match="expired at 2023-11-14T22:13:15Z"):
            await refreshing.current()

    run(main())


def renderings(exc: BaseException) -> str:
    parts = list(
        traceback.TracebackException.from_exception(exc, capture_locals=True).format(chain=True)
    )
    parts += [repr(exc), str(exc), repr(exc.args), repr(vars(exc))]
    for item in (exc, exc.__cause__, exc.__context__):
        tb = None if item is None else item.__traceback__
        while tb is not None:
            parts += [f"{k}={v!r}" for k, v in tb.tb_frame.f_locals.items()]
            tb = tb.tb_next
    return "\n".join(parts)


def test_a_traceback_with_locals_of_the_error_holds_no_secret() -> None:
    clock = VirtualClock()
    source = Source(clock, lifetime=10)
    refreshing = machinery(clock, source)

    async def main() -> None:
        await refreshing.current()
        source.failing = True
        await clock.advance(20)
        await refreshing.current()

    caught: BaseException | None = None
    try:
        run(main())
    except CredentialsError as exc:
        caught = exc
    assert caught is not None
    rendered = renderings(caught)
    assert "RefreshingCredentials(source=" in rendered  # the frames' locals were rendered
    assert not leaked(rendered), leaked(rendered)


# -- force_refresh ----------------------------------------------------------------------------


def test_force_refresh_makes_one_refresh_for_every_refused_upload() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=900)
        refreshing = machinery(clock, source)
        stale = await refreshing.current()
        await clock.advance(10)
        # ten uploads signed with ``stale`` are all answered "token expired"
        fresh = await asyncio.gather(*(refreshing.force_refresh(stale) for _ in range(10)))
        assert len(source.calls) == 2
        assert all(t is fresh[0] for t in fresh)
        assert fresh[0] is not stale
        assert await refreshing.current() is fresh[0]
        # a late refusal of the stale triple does not refresh again
        assert await refreshing.force_refresh(stale) is fresh[0]
        assert len(source.calls) == 2
        # without a triple named, it always refreshes
        newest = await refreshing.force_refresh()
        assert newest is not fresh[0]
        assert len(source.calls) == 3

    run(main())


def test_force_refresh_does_not_wait_out_a_backoff_and_fails_loudly() -> None:
    async def main() -> None:
        clock = VirtualClock()
        source = Source(clock, lifetime=900)
        refreshing = machinery(clock, source)
        stale = await refreshing.current()
        await clock.advance(600)
        source.failing = True
        await refreshing.current()
        await settle()
        assert clock.sleeps == [1.0]  # the background refresh waits out its backoff
        with pytest.raises(CredentialsError, match="could not be refreshed"):
            await refreshing.force_refresh(stale)
        assert len(source.calls) == 3  # tried at once, not after the backoff
        source.failing = False
        fresh = await refreshing.force_refresh(stale)
        assert fresh is not stale
        assert len(source.calls) == 4
        await clock.advance(5)  # the cancelled backoff does not fetch again
        assert len(source.calls) == 4

    run(main())


def test_it_works_across_event_loops() -> None:
    clock = VirtualClock()
    source = Source(clock, lifetime=9)
    refreshing = machinery(clock, source)

    async def leave_a_refresh_pending() -> Triple:
        triple = await refreshing.current()
        clock.now += 7  # into the refresh window
        source.gate = asyncio.Event()  # the refresh started below never ends on this loop
        assert await refreshing.current() is triple
        await settle()
        return triple

    first = run(leave_a_refresh_pending())
    source.gate = None
    clock.now += 5  # expired: the next loop needs a new triple, and gets it
    second = run(refreshing.current())
    assert second is not first
    assert len(source.calls) == 3
