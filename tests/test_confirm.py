"""SendResult.confirm() over ambiguous answers, and exactly-once by confirm -> retry (issue 15).

The sends go over loopback to a served emulator whose faults (``cms_magic.emulator.faults``)
leave rows ``unknown``: answers lost after the events were stored (``reset_after``, an
answer held past the client's timeout (``delay``), a ``malformed`` 200) and before
(``error_500``, ``reset_before``). ``confirm()`` then reads back through the real
OpenAPI path (``Client.lookup()``: ``DescribeCustomEventAttribute`` over HTTP) with the
faults off, and every row must end with the verdict the store proves and the copies it
holds; ``retry()`` then leaves exactly one copy of each row, identical rows included, with
and without a time column (without one the service stamps the arrival time).

The hostile server's store-then-5xx / close-after-headers / trickle modes (their answers
come after storing) are confirmed through a ``lookup`` over what that server stored.

The index lag: the emulator's store hides events for ``delay`` seconds; on a fake clock
shared by the emulator, the sender and ``confirm(clock=, sleep=)``, a ``wait`` shorter than
the lag gives up with rows unconfirmed (never "not stored"), a longer one polls until they
show, and rows never stored are "not stored" only once their lag has passed.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cms_magic.confirm import StoredEvent, confirm
from cms_magic.credentials.static import Credentials
from cms_magic.emulator.faults import Faults
from cms_magic.errors import ConfigError
from cms_magic.openapi.errors import OpenApiError
from cms_magic.results import SendResult
from cms_magic.sending.client import Client
from cms_magic.sending.retry import RetryPolicy
from tests.conftest import FakeClock

from .sending.hostile import HostileServer

TIMEOUT = 0.5
POLICY = RetryPolicy(max_attempts=3, max_time=10.0, base_wait=0.01, max_wait=0.05)
BASE = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


def rows_frame(n: int, *, timed: bool, repeat: int = 1) -> pd.DataFrame:
    """``n`` rows; with ``repeat`` > 1, each content (and time) appears ``repeat`` times."""
    keys = [i // repeat for i in range(n)]
    frame = pd.DataFrame({"name": "confirm", "content": [f"row-{k:04d} 内容" for k in keys]})
    if timed:
        frame["time"] = [BASE + timedelta(milliseconds=7 * k) for k in keys]
    out: pd.DataFrame = frame
    return out


def sender(server: Any, **options: Any) -> Client:
    options.setdefault("timeout", TIMEOUT)
    return Client(
        server.url,
        credentials=server.credentials,
        qps=0,
        concurrency=4,
        retry=POLICY,
        retry_ambiguous=False,
        random=lambda: 0.5,
        quota="off",
        max_events=10,
        **options,
    )


def send(client: Client, frame: pd.DataFrame) -> SendResult:
    mapping: dict[str, Any] = {"name_col": "name", "content_col": "content"}
    if "time" in frame:
        mapping["time_col"] = "time"
    result: SendResult = client.send(frame, progress=False, **mapping)
    return result


def held(server: Any) -> collections.Counter[str]:
    """Copies of each content the emulator's store holds."""
    return collections.Counter(
        event.content for event in server.emulator.store.query(_everything())
    )


def _everything() -> Any:
    from cms_magic.emulator.store import EventQuery

    return EventQuery()


def _input(result: SendResult) -> pd.DataFrame:
    assert result.request is not None
    frame: pd.DataFrame = result.request.data
    return frame


def statuses(result: SendResult) -> list[str]:
    return result.events["status"].astype(str).tolist()


def check_verdicts(
    result: SendResult, confirmed: SendResult, store: collections.Counter[str]
) -> None:
    """Every row checked ends accepted (with the copies held) or not_sent (none held)."""
    frame = confirmed.events
    contents = _input(result)["content"].tolist()
    multiplicity = collections.Counter(contents)
    assert "unknown" not in statuses(confirmed), confirmed.summary()
    for position in np.flatnonzero(result.events["status"].astype(str) == "unknown").tolist():
        status = str(frame["status"].iloc[position])
        content = contents[position]
        if multiplicity[content] == 1:
            copies = int(frame["copies"].iloc[position])
            assert copies == store[content], (position, status, copies, store[content])
            assert status == ("accepted" if store[content] else "not_sent"), (position, status)
    # Identical rows: as many of them accepted as the store holds copies.
    accepted = collections.Counter(
        c for c, s in zip(contents, statuses(confirmed), strict=True) if s == "accepted"
    )
    for content, n in multiplicity.items():
        assert accepted[content] == min(n, store[content]), (content, n, store[content])


# ------------------------------------------------------------------ emulator faults

#: (fault id, Faults, stored?) at rate 1 on every request of the first send.
SINGLE_FAULTS = [
    ("reset_after", Faults(reset_after=1.0), True),
    ("delay", Faults(delay=1.0, delay_seconds=1.5), True),
    ("malformed", Faults(malformed=1.0), True),
    ("error_500", Faults(error_500=1.0), False),
    ("reset_before", Faults(reset_before=1.0), False),
]


@pytest.mark.parametrize(
    ("fault", "stored"),
    [pytest.param(f, s, id=i) for i, f, s in SINGLE_FAULTS],
)
@pytest.mark.parametrize("timed", [True, False], ids=["time-col", "service-stamped"])
def test_every_unknown_row_gets_the_verdict_the_store_proves(
    make_emulator: Callable[..., Any], fault: Faults, stored: bool, timed: bool
) -> None:
    server = make_emulator(faults=fault)
    client = sender(server)
    result = send(client, rows_frame(30, timed=timed))
    server.emulator.set_faults(Faults())
    unknown = statuses(result).count("unknown")
    assert unknown > 0, result.summary()
    store = held(server)
    assert sum(store.values()) == (30 - statuses(result).count("not_sent") if stored else 0)

    confirmed = result.confirm(wait=5, poll=0.05, lag=0)
    check_verdicts(result, confirmed, store)
    assert confirmed.confirmed is not None
    assert statuses(result).count("unknown") == unknown  # the first result is unchanged

    final = confirmed.retry()
    assert statuses(final) == ["accepted"] * 30, final.summary()
    assert held(server) == collections.Counter(_input(result)["content"]), "not exactly once"


@pytest.mark.parametrize("timed", [True, False], ids=["time-col", "service-stamped"])
@pytest.mark.parametrize("repeat", [1, 3], ids=["distinct", "identical-rows"])
@pytest.mark.parametrize("seed", [1, 2])
def test_mixed_faults_then_confirm_then_retry_is_exactly_once(
    make_emulator: Callable[..., Any], timed: bool, repeat: int, seed: int
) -> None:
    faults = Faults(
        seed=seed, reset_before=0.1, error_500=0.15, reset_after=0.2, malformed=0.1, delay=0.05,
        delay_seconds=1.0,
    )  # fmt: skip
    server = make_emulator(faults=faults)
    client = sender(server)
    frame = rows_frame(120, timed=timed, repeat=repeat)
    result = send(client, frame)
    server.emulator.set_faults(Faults())
    counts = collections.Counter(statuses(result))
    assert counts["unknown"] > 0, counts
    assert counts["accepted"] > 0, counts
    store = held(server)
    assert all(n <= repeat for n in store.values()), "stored twice by the send itself"

    confirmed = result.confirm(wait=5, poll=0.05, lag=0)
    check_verdicts(result, confirmed, store)
    final = confirmed.retry()
    assert collections.Counter(statuses(final)) == {"accepted": 120}, final.summary()
    assert held(server) == collections.Counter(frame["content"]), "not exactly once"


def test_confirm_of_a_result_without_unknown_rows_looks_nothing_up(
    make_emulator: Callable[..., Any],
) -> None:
    server = make_emulator()
    result = send(sender(server), rows_frame(5, timed=True))
    calls: list[Any] = []

    def lookup(*args: Any) -> list[StoredEvent]:
        calls.append(args)
        return []

    confirmed = result.confirm(lookup=lookup)
    assert calls == []
    assert statuses(confirmed) == ["accepted"] * 5


class Front:
    """A TCP front for an emulator on 127.0.0.1: while ``swallow`` is set, each new
    connection is read and never answered nor forwarded (a timeout before anything is
    stored); after, each new connection is piped to the emulator. Every socket has a
    timeout; ``close()`` stops it."""

    def __init__(self, target: str) -> None:
        self.target = ("127.0.0.1", int(target.rsplit(":", 1)[1]))
        self.swallow = True
        self.swallowed = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = [threading.Thread(target=self._accept)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5.0)
            worker = threading.Thread(target=self._handle, args=(conn, self.swallow))
            self._threads.append(worker)
            worker.start()

    def _handle(self, conn: socket.socket, swallow: bool) -> None:
        with conn:
            if swallow:
                self.swallowed += 1
                with contextlib.suppress(OSError):
                    while conn.recv(65536):
                        pass
                return
            with socket.create_connection(self.target, timeout=5.0) as upstream:
                back = threading.Thread(target=_pipe, args=(upstream, conn))
                back.start()
                _pipe(conn, upstream)
                back.join(6.0)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(6.0)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("timed", [True, False], ids=["time-col", "service-stamped"])
def test_a_timeout_before_storing_is_not_stored_and_resent_once(
    make_emulator: Callable[..., Any], timed: bool
) -> None:
    """The request reaches a front that never answers (the client times out: ``unknown``)
    and nothing is stored; read back through the front once it forwards: not stored,
    and the retry stores each row once."""
    server = make_emulator()
    front = Front(server.url)
    try:
        client = Client(
            front.url,
            credentials=server.credentials,
            qps=0,
            concurrency=4,
            timeout=TIMEOUT,
            retry=POLICY,
            random=lambda: 0.5,
            quota="off",
            max_events=10,
        )
        frame = rows_frame(30, timed=timed)
        result = send(client, frame)
        assert statuses(result) == ["unknown"] * 30, result.summary()
        assert front.swallowed >= 1
        assert sum(held(server).values()) == 0
        front.swallow = False
        confirmed = result.confirm(wait=5, poll=0.05, lag=0)
        assert statuses(confirmed) == ["not_sent"] * 30, confirmed.summary()
        assert confirmed.events["copies"].tolist() == [0] * 30
        final = confirmed.retry()
        assert statuses(final) == ["accepted"] * 30, final.summary()
        assert held(server) == collections.Counter(frame["content"])
    finally:
        front.close()


# ------------------------------------------------------------------ the hostile server


def hostile_lookup(server: HostileServer) -> Callable[[str, int, int], list[StoredEvent]]:
    """What the hostile server stored, as a read-back would show it (timed rows only)."""
    from cms_magic.confirm import _time_ms

    def lookup(name: str, start: int, end: int) -> list[StoredEvent]:
        out = []
        for item in server.stored():
            event = item.event
            if event.get("name") != name:
                continue
            when = _time_ms(str(event["time"]))
            if start <= when <= end:
                out.append(StoredEvent(name, int(event.get("groupId", 0)), when, event["content"]))
        return out

    return lookup


@pytest.mark.parametrize(
    "mode",
    ["store_then_500", "store_then_502", "store_then_504", "close_after_headers", "trickle_status"],
)
def test_hostile_answers_after_storing_are_confirmed_with_one_copy(mode: str) -> None:
    with HostileServer(mode, interval=0.3, lifetime=60) as server:
        client = Client(
            server.url,
            credentials=Credentials("LTAIconfirmtest01", "confirm-secret"),
            qps=0,
            timeout=TIMEOUT,
            retry=POLICY,
            random=lambda: 0.5,
            quota="off",
        )
        frame = rows_frame(40, timed=True)
        result = send(client, frame)
        assert statuses(result) == ["unknown"] * 40, result.summary()
        confirmed = result.confirm(lookup=hostile_lookup(server), wait=0, lag=0)
        server.wait_idle()
    assert statuses(confirmed) == ["accepted"] * 40, confirmed.summary()
    assert confirmed.events["copies"].tolist() == [1] * 40
    assert "40 confirmed" in str(confirmed.confirmed)
    assert confirmed.retry_mask().sum() == 0  # nothing left to resend


def test_a_stored_twice_row_is_confirmed_with_two_copies_and_marked() -> None:
    """retry_ambiguous=True after store-then-500: accepted, possible duplicate, 2 copies."""
    with HostileServer("store_then_500", fail_first=1, lifetime=60) as server:
        client = Client(
            server.url,
            credentials=Credentials("LTAIconfirmtest01", "confirm-secret"),
            qps=0,
            timeout=TIMEOUT,
            retry=POLICY,
            retry_ambiguous=True,
            random=lambda: 0.5,
            quota="off",
        )
        result = send(client, rows_frame(20, timed=True))
        assert result.events["possible_duplicate"].all()
        confirmed = result.confirm(lookup=hostile_lookup(server), wait=0, lag=0)
    assert statuses(confirmed) == ["accepted"] * 20
    assert confirmed.events["copies"].tolist() == [2] * 20
    assert confirmed.events["possible_duplicate"].all()


# ------------------------------------------------------------------ the index lag


def lagging(
    make_emulator: Callable[..., Any], faults: Faults, delay: float
) -> tuple[Any, FakeClock]:
    clock = FakeClock(now=float(int(datetime.now(timezone.utc).timestamp())))
    server = make_emulator(faults=faults, clock=clock)
    server.emulator.store.delay = delay
    return server, clock


def test_a_wait_shorter_than_the_lag_gives_up_unconfirmed(
    make_emulator: Callable[..., Any],
) -> None:
    server, clock = lagging(make_emulator, Faults(reset_after=1.0), delay=5.0)
    result = send(sender(server, clock=clock), rows_frame(20, timed=True))
    server.emulator.set_faults(Faults())
    assert statuses(result) == ["unknown"] * 20
    began = clock.now
    confirmed = result.confirm(wait=2, poll=0.5, lag=10, clock=clock, sleep=clock.advance)
    assert statuses(confirmed) == ["unknown"] * 20, confirmed.summary()
    assert clock.now - began == pytest.approx(2.0)
    reasons = confirmed.events["reason"].astype(str)
    assert reasons.str.contains("gave up after wait=2 s").all(), reasons.iloc[0]
    assert confirmed.retry_mask().sum() == 0  # nothing is called safe to resend
    # Asked again after the lag: confirmed, nothing resent, one copy each.
    again = confirmed.confirm(wait=30, poll=0.5, lag=10, clock=clock, sleep=clock.advance)
    assert statuses(again) == ["accepted"] * 20
    assert again.events["copies"].tolist() == [1] * 20


def test_confirm_polls_until_lagging_events_show(make_emulator: Callable[..., Any]) -> None:
    server, clock = lagging(make_emulator, Faults(reset_after=1.0), delay=5.0)
    result = send(sender(server, clock=clock), rows_frame(20, timed=False))
    server.emulator.set_faults(Faults())
    sent = clock.now
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    confirmed = result.confirm(wait=30, poll=1.0, lag=10, clock=clock, sleep=sleep)
    assert statuses(confirmed) == ["accepted"] * 20, confirmed.summary()
    assert 5.0 <= clock.now - sent <= 6.0  # found at the first poll after the delay
    assert sleeps == [1.0] * len(sleeps)


def test_not_stored_only_once_the_lag_has_passed(make_emulator: Callable[..., Any]) -> None:
    server, clock = lagging(make_emulator, Faults(error_500=1.0), delay=5.0)
    client = sender(server, clock=clock)
    frame = rows_frame(20, timed=False)
    result = send(client, frame)
    server.emulator.set_faults(Faults())
    assert statuses(result) == ["unknown"] * 20
    sent = clock.now
    confirmed = result.confirm(wait=60, poll=2.0, lag=8, clock=clock, sleep=clock.advance)
    assert statuses(confirmed) == ["not_sent"] * 20
    assert clock.now - sent >= 8.0
    assert confirmed.events["copies"].tolist() == [0] * 20
    final = confirmed.retry()
    assert statuses(final) == ["accepted"] * 20
    clock.advance(10)  # past the store's delay: what a reader sees now
    assert held(server) == collections.Counter(frame["content"])


# ------------------------------------------------------------------ the pure rules


def _result_with(frame: pd.DataFrame, status: list[str], duplicate: list[bool]) -> Any:
    """A real SendResult from a dry run, its statuses set as given."""
    from cms_magic.sending.client import Client as _Client

    client = _Client(
        "http://127.0.0.1:9", credentials=Credentials("LTAIx", "y"), qps=0, quota="off"
    )
    base = send_dry(client, frame)
    result = base
    result._status = np.array([_code(s) for s in status], dtype=base._status.dtype)
    result._duplicate = np.array(duplicate, dtype=bool)
    return result


def send_dry(client: Client, frame: pd.DataFrame) -> SendResult:
    mapping: dict[str, Any] = {"name_col": "name", "content_col": "content"}
    if "time" in frame:
        mapping["time_col"] = "time"
    result: SendResult = client.send(frame, progress=False, dry_run=True, **mapping)
    return result


def _code(status: str) -> Any:
    from cms_magic import results

    return {
        "accepted": results.ACCEPTED,
        "unknown": results.UNKNOWN,
        "not_sent": results.NOT_SENT,
    }[status]


def _stored_from(
    result: Any, positions: Iterable[int], stamp_ms: int | None = None
) -> list[StoredEvent]:
    from cms_magic.confirm import wanted_events

    wanted = wanted_events(result, np.asarray(list(positions), dtype=np.int64))
    return [
        StoredEvent(
            w.name,
            w.group_id,
            w.time_ms if w.time_ms is not None else (stamp_ms or w.sent_ms),
            w.content,
        )
        for w in wanted
    ]


@pytest.mark.parametrize("timed", [True, False])
def test_identical_rows_accepted_outright_hold_their_own_copies(timed: bool) -> None:
    """Three identical rows: one accepted, two unknown, the service holds two copies: one
    of the unknown rows is stored, the other is not (resending it gives three)."""
    frame = rows_frame(3, timed=timed, repeat=3)
    result = _result_with(frame, ["accepted", "unknown", "unknown"], [False] * 3)
    stored = _stored_from(result, [0, 1])
    found = confirm(result, lambda *a: stored, wait=0, lag=0)
    assert sorted(found.verdicts) == ["confirmed", "not_stored"]
    assert sorted(found.copies.tolist()) == [0, 1]


def test_a_possible_duplicate_and_an_unknown_identical_row_are_not_guessed() -> None:
    frame = rows_frame(2, timed=True, repeat=2)
    result = _result_with(frame, ["accepted", "unknown"], [True, False])
    stored = _stored_from(result, [0, 0])  # two copies: the duplicate's twice, or one each
    found = confirm(result, lambda *a: stored, wait=0, lag=0)
    assert found.verdicts == ["confirmed", "unconfirmed"]
    assert found.note is not None
    assert "cannot be told" in found.note
    # One copy only: the duplicate holds it, the unknown row is not stored.
    found = confirm(result, lambda *a: stored[:1], wait=0, lag=0)
    assert found.verdicts == ["confirmed", "not_stored"]


def test_an_accepted_possible_duplicate_is_never_called_not_stored() -> None:
    """Not found (the lag was too short, a clock far off): unconfirmed, not resent."""
    result = _result_with(rows_frame(2, timed=True), ["accepted", "unknown"], [True, False])
    found = confirm(result, lambda *a: [], wait=0, lag=0)
    assert found.verdicts == ["unconfirmed", "not_stored"]
    assert found.note is not None
    assert "accepted, yet not found" in found.note


def test_a_failed_read_back_leaves_rows_unconfirmed_with_why() -> None:
    frame = rows_frame(3, timed=True)
    result = _result_with(frame, ["unknown"] * 3, [False] * 3)

    def broken(*_: Any) -> list[StoredEvent]:
        raise OpenApiError("Forbidden.RAM", "the read-back was refused", http_status=403)

    found = confirm(result, broken, wait=0, lag=0)
    assert found.verdicts == ["unconfirmed"] * 3
    assert found.note is not None
    assert "read-back failed" in found.note


@pytest.mark.parametrize("option", ["wait", "poll", "lag"])
def test_bad_waits_are_refused(option: str) -> None:
    result = _result_with(rows_frame(1, timed=True), ["unknown"], [False])
    with pytest.raises(ConfigError, match=option):
        confirm(result, lambda *a: [], **{option: -1.0})  # type: ignore[arg-type]
