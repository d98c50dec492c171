"""The hostile matrix: every mode of our hostile server against a real send (issue 12, Tests).

Each case sends ``rows`` uniquely marked rows (100-event batches, ``qps=0``, a 1 s
timeout, at most 3 attempts) through :class:`~tests.sending.hostile.HostileServer`
in one mode, once; every check below is then its own test over that one outcome,
so a check that fails today is marked alone (``xfail``, strict: a fix turns the
mark into a failure, which says to remove it).

The invariants, whatever the mode:

- ``one_status``: every row has exactly one final status among accepted, rejected,
  not_sent and unknown, and the counts add up to the rows sent;
- ``accepted_stored``: no row is accepted that the server did not store, and the
  server stored no event that is not one of the rows;
- ``stored_reported``: every row the server stored is accepted or unknown, never
  not_sent or rejected;
- ``copies``: with ``retry_ambiguous=False`` no row is stored twice (only answers
  that prove nothing was stored are retried); with ``retry_ambiguous=True`` a row
  stored twice is unknown or accepted with its ``possible_duplicate`` mark;
- ``bounded``: the send ends by itself well within a bound set by the timeout and
  the retry budget, and the server never held one answer open much longer than
  the client's timeout;
- ``secrets``: the STS token, the secret and the Authorization values the server
  saw appear nowhere in the summary, the reprs, the HTML, the frames, the error or
  the library's DEBUG log.

Then ``expected``: what the issue says each mode must end in, and a few checks of
one mode (``no_compression``, ``hung_up_early``, ``backoff``).
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from cms_magic import AuthError
from cms_magic.credentials.static import Credentials
from cms_magic.results import SendResult
from cms_magic.sending.client import Client
from cms_magic.sending.retry import RetryPolicy

from .hostile import MODES, HostileServer, Response, StoredEvent

KEY_ID = "LTAIhostiletest01"
SECRET = "hostile-secret-value-0001"
TOKEN = "hostile-sts-token-value-0001"
CREDENTIALS = Credentials(KEY_ID, SECRET, TOKEN)

TIMEOUT = 1.0
CONCURRENCY = 4
POLICY = RetryPolicy(max_attempts=3, max_time=10.0, base_wait=0.05, max_wait=0.5)
#: Seconds one answer may be held open: the attempt's deadline, with room for a busy machine.
HELD_BOUND = 2 * TIMEOUT + 0.5
#: Seconds a whole send may take: every attempt at its deadline, the waits, and slack.
WALL_BOUND = POLICY.max_attempts * HELD_BOUND + 2 * POLICY.max_wait + 3.0
#: Past this the send is taken for stuck: it is aborted (and the check fails).
HARD_BOUND = 25.0
FINAL = ("accepted", "rejected", "not_sent", "unknown")
#: What ``mixed`` draws from: the modes that never stop a whole send. A refusal of the
#: credentials stops it, and then which other batches went out depends on timing.
MIXED_POOL = tuple(
    m
    for m in MODES
    if m
    not in {
        "mixed",
        "echo_headers",
        "http_401",
        "http_403_signature",
        "http_403_throttling_empty_msg",
    }
)


@dataclass(frozen=True)
class Case:
    id: str
    mode: str
    retry_ambiguous: bool = False
    fail_first: int | None = None
    seed: int = 0
    rows: int = 300
    policy: RetryPolicy = POLICY
    extra: tuple[str, ...] = ()


def _cases() -> list[Case]:
    cases = [
        Case("ok", "ok"),
        Case("trickle_status", "trickle_status"),
        Case("trickle_status-ambiguous", "trickle_status", retry_ambiguous=True),
        Case("trickle_body", "trickle_body"),
        Case("trickle_body-ambiguous", "trickle_body", retry_ambiguous=True),
        Case("huge_body", "huge_body", extra=("hung_up_early",)),
        Case("gzip_bomb", "gzip_bomb", extra=("no_compression",)),
        Case("echo_headers", "echo_headers"),
    ]
    for mode in ("store_then_500", "store_then_502", "store_then_504", "close_after_headers"):
        cases.append(Case(mode, mode, fail_first=1))
        cases.append(Case(f"{mode}-ambiguous", mode, retry_ambiguous=True, fail_first=1))
    cases += [
        Case("http_401", "http_401"),
        Case("http_403_signature", "http_403_signature"),
        Case("http_403_throttling_empty_msg", "http_403_throttling_empty_msg", fail_first=1),
        Case("http_413", "http_413"),
        Case("http_429_plain", "http_429_plain", fail_first=1),
        Case(
            "retry_after_negative",
            "retry_after_negative",
            fail_first=2,
            policy=RetryPolicy(max_attempts=3, max_time=10.0, base_wait=0.2, max_wait=0.5),
            extra=("backoff",),
        ),
        Case("mixed-1", "mixed", seed=1, rows=1_000),
        Case("mixed-2", "mixed", seed=2, rows=1_000),
        Case("mixed-3-ambiguous", "mixed", seed=3, rows=1_000, retry_ambiguous=True),
    ]
    return cases


CASES = _cases()
CHECKS = ("one_status", "accepted_stored", "stored_reported", "copies", "bounded", "secrets")

#: (case id, check) -> why it fails today. Strict: when a fix lands the mark fails; remove it.
#:
#: Empty since baceab2. On main at 5845015, 38 pairs failed (marked in f006513): the trickles
#: held attempts 3.4-4.6 s and ended accepted (#6); the huge answer was read to its 8 MB, the
#: gzip bomb decoded and accepted, no Accept-Encoding: identity (#7); the echoed token,
#: Authorization and signature reached every rendering (#1); store-then-5xx was retried and
#: stored twice, unmarked (#9); 401 was bisected, 403 Throttling.User stopped the send, a
#: plain 429 left rows unknown (#10); the mixed runs broke #6 and #9 invariants. 35071d6 and
#: baceab2 fixed them all.
XFAIL: dict[tuple[str, str], str] = {}


# ----------------------------------------------------------------- running a case once


@dataclass
class Outcome:
    case: Case
    result: SendResult | None
    failure: BaseException | None
    stored: list[StoredEvent]
    log: list[Response]
    wall: float
    ended_by_itself: bool
    log_text: str
    copies: list[int] = field(default_factory=list)  # stored copies per row

    def require(self) -> SendResult:
        assert self.result is not None, f"the send gave no result: {self.failure!r}"
        return self.result

    def statuses(self) -> list[str]:
        return self.require().events["status"].astype(str).tolist()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def contents(n: int) -> list[str]:
    return [f"hostile-{i:05d}" for i in range(n)]


def _run(case: Case) -> Outcome:
    frame = pd.DataFrame({"name": "hostile", "content": contents(case.rows)})
    logger = logging.getLogger("cms_magic")
    collect = _Collect()
    level = logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.DEBUG)
    result: SendResult | None = None
    failure: BaseException | None = None
    try:
        with HostileServer(
            case.mode, fail_first=case.fail_first, seed=case.seed, mixed_pool=MIXED_POOL
        ) as server:
            client = Client(
                server.url,
                credentials=CREDENTIALS,
                qps=0,
                concurrency=CONCURRENCY,
                timeout=TIMEOUT,
                retry=case.policy,
                retry_ambiguous=case.retry_ambiguous,
                random=lambda: 0.5,
                source_ip="10.0.0.1",
            )
            began = time.monotonic()
            job = client.send(
                frame, background=True, progress=False, name_col="name", content_col="content"
            )
            ended = job.wait(HARD_BOUND)
            wall = time.monotonic() - began
            if not ended:
                job.abort()
                if not job.wait(5):
                    server.stop()  # closes every connection: the send must end now
            try:
                result = job.result(timeout=10)
            except Exception as exc:  # the check that needs the result reports it
                failure = exc
            server.wait_idle()  # the client's last hang-up reaches the log
            stored, log = server.stored(), server.log()
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    outcome = Outcome(case, result, failure, stored, log, wall, ended, "\n".join(collect.lines))
    position = {c: i for i, c in enumerate(contents(case.rows))}
    copies = [0] * case.rows
    for item in stored:
        content = item.event.get("content") if isinstance(item.event, dict) else None
        if content in position:
            copies[position[content]] += 1
    outcome.copies = copies
    return outcome


_outcomes: dict[str, Outcome] = {}


def outcome_of(case: Case) -> Outcome:
    """The case's one send (run at its first check, then shared by its other checks)."""
    if case.id not in _outcomes:
        _outcomes[case.id] = _run(case)
    return _outcomes[case.id]


# ----------------------------------------------------------------- the invariants


def check_one_status(o: Outcome) -> None:
    result = o.require()
    statuses = o.statuses()
    assert len(statuses) == o.case.rows
    assert set(statuses) <= set(FINAL), collections.Counter(statuses)
    counts = result.counts()
    assert sum(counts[s] for s in FINAL) == o.case.rows, counts
    assert counts["dry_run"] == 0
    assert result.events.index.is_unique


def check_accepted_stored(o: Outcome) -> None:
    statuses = o.statuses()
    never_stored = [i for i, s in enumerate(statuses) if s == "accepted" and o.copies[i] == 0]
    assert not never_stored, f"{len(never_stored)} rows accepted but not stored: {never_stored[:5]}"
    known = set(contents(o.case.rows))
    invented = [
        s.event
        for s in o.stored
        if not isinstance(s.event, dict) or s.event.get("content") not in known
    ]
    assert not invented, f"the server stored events that are no row: {invented[:3]}"


def check_stored_reported(o: Outcome) -> None:
    statuses = o.statuses()
    wrong = collections.Counter(
        s for i, s in enumerate(statuses) if o.copies[i] and s not in ("accepted", "unknown")
    )
    assert not wrong, f"rows the server stored are reported {dict(wrong)}"


def check_copies(o: Outcome) -> None:
    result = o.require()
    statuses = o.statuses()
    twice = [i for i, n in enumerate(o.copies) if n > 1]
    if not o.case.retry_ambiguous:
        assert not twice, (
            f"{len(twice)} rows stored more than once with retry_ambiguous=False "
            f"(statuses {dict(collections.Counter(statuses[i] for i in twice))})"
        )
        return
    events = result.events
    marked = (
        events["possible_duplicate"].astype(bool).tolist()
        if "possible_duplicate" in events
        else [False] * len(statuses)
    )
    unmarked = [
        i
        for i in twice
        if not (statuses[i] == "unknown" or (statuses[i] == "accepted" and marked[i]))
    ]
    assert not unmarked, (
        f"{len(unmarked)} rows stored more than once and neither unknown nor marked "
        f"possible_duplicate (statuses {dict(collections.Counter(statuses[i] for i in unmarked))}; "
        f"possible_duplicate column: {'possible_duplicate' in events})"
    )


def check_bounded(o: Outcome) -> None:
    assert o.ended_by_itself, f"the send had not ended after {HARD_BOUND} s: aborted"
    assert o.wall < WALL_BOUND, f"the send took {o.wall:.1f} s (bound {WALL_BOUND:.1f} s)"
    held = [(r.request, r.mode, round(r.held, 2)) for r in o.log if r.held > HELD_BOUND]
    assert not held, f"answers held open past {HELD_BOUND} s (timeout {TIMEOUT} s): {held[:5]}"


def check_secrets(o: Outcome) -> None:
    result = o.require()
    secrets = {"the secret": SECRET, "the token": TOKEN}
    for response in o.log:
        authorization = response.headers.get("authorization", "")
        if ":" in authorization:
            secrets["an Authorization value"] = authorization
            secrets["a signature"] = authorization.rsplit(":", 1)[1]
    events = result.events
    texts = {
        "summary()": result.summary(),
        "repr": repr(result),
        "_repr_html_()": result._repr_html_(),
        "events.to_string()": events.to_string(),
        "events reasons": "\n".join(str(r) for r in events["reason"].tolist()),
        "requests.to_string()": result.requests.to_string(),
        "requests msgs": "\n".join(str(m) for m in result.requests["msg"].tolist()),
        "str(error)": str(result.error),
        "repr(error)": repr(result.error),
        "error hint": str(getattr(result.error, "hint", "")),
        "DEBUG log": o.log_text,
    }
    leaks = sorted(
        {
            f"{what} in {where}"
            for where, text in texts.items()
            for what, value in secrets.items()
            if value in text
        }
    )
    assert not leaks, "; ".join(leaks)


# ----------------------------------------------------------------- what each mode ends in


def _all(o: Outcome, status: str) -> None:
    counts = collections.Counter(o.statuses())
    assert counts == {status: o.case.rows}, f"expected every row {status}, got {dict(counts)}"


def _stops_at_once(o: Outcome) -> None:
    result = o.require()
    assert isinstance(result.error, AuthError), f"result.error is {result.error!r}"
    _all(o, "not_sent")
    assert len(o.log) <= CONCURRENCY, f"{len(o.log)} requests after refused credentials"


def _ends_unknown_each_sent_once(o: Outcome) -> None:
    _all(o, "unknown")
    seen = collections.Counter(r.body_sha1 for r in o.log)
    assert set(seen.values()) == {1}, f"ambiguous answers were retried: {sorted(seen.values())}"


def _recovers_marked(o: Outcome) -> None:
    result = o.require()
    _all(o, "accepted")
    assert set(o.copies) == {2}, f"stored copies per row: {collections.Counter(o.copies)}"
    assert "possible_duplicate" in result.events, "no possible_duplicate column"
    assert result.events["possible_duplicate"].astype(bool).all()
    assert "duplicate" in result.summary(), result.summary()


def _recovers(o: Outcome) -> None:
    result = o.require()
    assert result.error is None, repr(result.error)
    _all(o, "accepted")
    assert set(o.copies) == {1}, f"stored copies per row: {collections.Counter(o.copies)}"


def expected(o: Outcome) -> None:
    case = o.case
    mode = case.mode
    if mode == "ok":
        _recovers(o)
        assert len(o.log) == case.rows // 100
    elif mode in ("trickle_status", "trickle_body", "huge_body", "gzip_bomb"):
        _all(o, "unknown")  # the server stored them; the answer cannot be read in time or bounds
        if not case.retry_ambiguous:
            assert len(o.log) == case.rows // 100
    elif mode in ("echo_headers", "http_401", "http_403_signature"):
        _stops_at_once(o)
    elif mode.startswith("store_then_") or mode == "close_after_headers":
        if case.retry_ambiguous:
            _recovers_marked(o)
        else:
            _ends_unknown_each_sent_once(o)
    elif mode in (
        "http_403_throttling_empty_msg",
        "http_429_plain",
        "retry_after_negative",
        "http_413",
    ):
        _recovers(o)
    else:
        raise AssertionError(f"no expectation for {mode}")


def hung_up_early(o: Outcome) -> None:
    """A huge answer: the client reads a small bound of it and hangs up."""
    server_cap = HostileServer().huge_cap
    late = [
        (r.request, r.sent_bytes)
        for r in o.log
        if not r.client_hung_up or r.sent_bytes >= server_cap
    ]
    assert not late, f"answers read to the server's cap of {server_cap:,} bytes: {late[:5]}"


def no_compression(o: Outcome) -> None:
    """The client asks for no compression (and so a gzip answer is not for it)."""
    asked = collections.Counter(r.headers.get("accept-encoding") for r in o.log)
    assert set(asked) == {"identity"}, f"Accept-Encoding sent: {dict(asked)}"


def backoff(o: Outcome) -> None:
    """A nonsense Retry-After (-5) falls back to the backoff: attempts of a body are spaced."""
    by_body: dict[str, list[float]] = collections.defaultdict(list)
    for r in o.log:
        by_body[r.body_sha1].append(r.received_at)
    gaps = [b - a for times in by_body.values() for a, b in itertools.pairwise(times)]
    assert gaps, "no retries"
    wait = 0.5 * o.case.policy.base_wait  # the first backoff with random() == 0.5
    assert min(gaps) >= 0.9 * wait, f"attempts {min(gaps):.3f} s apart (backoff {wait} s)"


CHECK_FUNCTIONS: dict[str, Callable[[Outcome], None]] = {
    "one_status": check_one_status,
    "accepted_stored": check_accepted_stored,
    "stored_reported": check_stored_reported,
    "copies": check_copies,
    "bounded": check_bounded,
    "secrets": check_secrets,
    "expected": expected,
    "hung_up_early": hung_up_early,
    "no_compression": no_compression,
    "backoff": backoff,
}


def _params() -> list[Any]:
    params = []
    for case in CASES:
        checks = [*CHECKS, *([] if case.mode == "mixed" else ["expected"]), *case.extra]
        for check in checks:
            reason = XFAIL.get((case.id, check))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            params.append(pytest.param(case, check, marks=marks, id=f"{case.id}-{check}"))
    unused = set(XFAIL) - {(c.id, k) for c in CASES for k in [*CHECKS, "expected", *c.extra]}
    assert not unused, f"xfail marks for no test: {unused}"
    return params


@pytest.mark.parametrize(("case", "check"), _params())
def test_hostile(case: Case, check: str) -> None:
    CHECK_FUNCTIONS[check](outcome_of(case))
