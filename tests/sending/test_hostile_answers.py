"""Answers a hostile or broken server gives, through the whole run (MockTransport):
echoed secrets are scrubbed, ambiguous answers are never reported as safe, and 401, 403,
413 and 429 are read for what they mean."""

from __future__ import annotations

import collections
import itertools
import logging
import threading
from collections.abc import Callable

import httpx
import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.emulator import Emulator
from cms_magic.errors import AuthError
from cms_magic.redact import MARK
from cms_magic.sending.client import RetryPolicy
from tests.sending._helpers import DEMO, frame, no_sleep_client

Handler = Callable[[httpx.Request], httpx.Response]

TOKEN = "CAIS+HostileEchoToken/xyz789==tail"
SECRET = DEMO.access_key_secret.reveal()
STS = Credentials(DEMO.access_key_id, SECRET, security_token=TOKEN)


def store_then(status: int, every: int, emulator: Emulator, body: bytes | None = None) -> Handler:
    """Store every valid request; answer ``status`` instead of its 200 for every
    ``every``-th request (from the 4th)."""
    counter = itertools.count()
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        answer = emulator.handle_request(request)
        with lock:
            k = next(counter)
        if k % every == 3:
            content = body if body is not None else b'{"code":"500","msg":"after storing"}'
            return httpx.Response(status, content=content)
        return answer

    return handler


# ----------------------------------------------------------------- item 1: echoed secrets


def _echo(status: int, code: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        msg = f"echo {headers}\ntoken={TOKEN} again {TOKEN!r} secret {SECRET}"
        return httpx.Response(status, json={"code": code, "msg": msg, "requestId": TOKEN})

    return handler


@pytest.mark.parametrize(("status", "code"), [(403, "403"), (400, "400"), (500, "500")])
def test_a_server_echoing_headers_and_the_token_leaks_nothing(
    status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    handler = _echo(status, code)

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return handler(request)

    client = no_sleep_client(
        recording,
        credentials=STS,
        max_bisect_requests=4,
        retry=RetryPolicy(max_attempts=2),
        retry_ambiguous=True,
    )
    with caplog.at_level(logging.DEBUG, logger="cms_magic"):
        result = client.send(frame(20), content_col="content")
    texts = [
        result.events.to_string(),
        " ".join(map(str, result.events["reason"])),
        result.requests.to_string(),
        " ".join(map(str, result.requests["msg"])),
        " ".join(map(str, result.requests["request_id"])),
        str(result.error),
        repr(result.error),
        result.summary(),
        repr(result),
        result._repr_html_(),
        caplog.text,
    ]
    secrets = [TOKEN, SECRET, *seen, *(a.split(":", 1)[1] for a in seen)]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert MARK in " ".join(map(str, result.requests["msg"]))
    if status == 403:
        assert isinstance(result.error, AuthError)
        assert MARK in str(result.error)


# ----------------------------------------------------------------- item 9: ambiguous answers


@pytest.mark.parametrize("status", [500, 502, 504])
def test_store_then_5xx_is_unknown_by_default_never_not_sent(status: int) -> None:
    emulator = Emulator(qps=0)
    client = no_sleep_client(store_then(status, 10, emulator), concurrency=1)
    df = frame(2_000)
    result = client.send(df, content_col="content")
    stored = collections.Counter(e["content"] for e in emulator.events())
    events = result.events
    assert max(stored.values()) == 1  # nothing resent by default
    unknown = events["status"] == "unknown"
    assert unknown.sum() == 200  # the 4th and 14th request of 20
    assert set(df["content"][unknown]) <= set(stored)  # they are in fact stored
    assert "may have stored" in events["reason"][unknown].iloc[0]
    assert events["possible_duplicate"].sum() == 0
    assert result.counts()["not_sent"] == 0
    assert result.requests["attempts"].max() == 1


def test_store_then_500_retried_when_asked_is_accepted_and_marked() -> None:
    emulator = Emulator(qps=0)
    client = no_sleep_client(store_then(500, 10, emulator), concurrency=1, retry_ambiguous=True)
    df = frame(5_000)
    result = client.send(df, content_col="content")
    stored = collections.Counter(e["content"] for e in emulator.events())
    events = result.events
    assert result.ok
    twice = {c for c, k in stored.items() if k > 1}
    marked = set(df["content"][events["possible_duplicate"].to_numpy()])
    assert twice == marked  # every duplicate is marked, and only those
    assert len(marked) == 600
    assert events["possible_duplicate"].dtype == bool
    assert (events["status"][events["possible_duplicate"]] == "accepted").all()
    assert "possible duplicate" in events["reason"][events["possible_duplicate"]].iloc[0]
    assert "600 possibly duplicated" in result.summary()
    assert "600" in result._repr_html_()


def test_an_ambiguous_attempt_then_refusals_leaves_rows_unknown() -> None:
    answers = iter(
        [
            httpx.Response(500, json={"code": "500", "msg": "oops"}),
            httpx.Response(503, json={"code": "503", "msg": "busy"}),
        ]
    )
    client = no_sleep_client(
        lambda r: next(answers, httpx.Response(503, text="busy")),
        retry_ambiguous=True,
        retry=RetryPolicy(max_attempts=3),
    )
    result = client.send(frame(5), content_col="content")
    assert result.counts()["unknown"] == 5
    assert result.counts()["not_sent"] == 0
    assert "HTTP 500" in result.events["reason"].iloc[0]


def test_a_timeout_then_success_is_marked_as_a_possible_duplicate() -> None:
    emulator = Emulator(qps=0)
    calls = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        answer = emulator.handle_request(request)
        if next(calls) == 0:
            raise httpx.ReadTimeout("slow")  # stored, but the answer never came
        return answer

    result = no_sleep_client(handler, retry_ambiguous=True).send(frame(4), content_col="content")
    assert result.ok
    assert result.events["possible_duplicate"].all()
    assert len(emulator.events()) == 8


def test_bisecting_after_an_ambiguous_attempt_keeps_the_mark() -> None:
    emulator = Emulator(qps=0, poison_marker="POISON")
    calls = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        if next(calls) == 0:
            return httpx.Response(504, text="gateway timeout")
        return emulator.handle_request(request)

    df = frame(8)
    df.loc[5, "content"] = "POISON"
    result = no_sleep_client(handler, retry_ambiguous=True).send(df, content_col="content")
    events = result.events
    assert events["status"].tolist().count("rejected") == 1
    assert events["possible_duplicate"].tolist() == [True] * 5 + [False] + [True] * 2


def test_unknown_rows_resent_and_accepted_are_marked_in_the_merged_result() -> None:
    emulator = Emulator(qps=0)
    first = no_sleep_client(store_then(500, 1_000, emulator), concurrency=1)
    result = first.send(frame(500), content_col="content")
    assert result.counts()["unknown"] == 100
    again = result.retry(include_unknown=True)
    assert again.ok
    assert again.events["possible_duplicate"].sum() == 100
    assert "100 possibly duplicated" in again.summary()


# ----------------------------------------------------------------- item 10: misread answers


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(401, json={"code": "401", "msg": "unauthorized"}),
        httpx.Response(401, text="Unauthorized"),
        httpx.Response(403, json={"code": "SignatureDoesNotMatch", "msg": ""}),
        httpx.Response(403, json={"code": "403", "msg": "signature does not match"}),
    ],
)
def test_401_and_a_credential_403_stop_the_send_at_once(answer: httpx.Response) -> None:
    requests = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        next(requests)
        return answer

    client = no_sleep_client(handler, concurrency=1)
    result = client.send(frame(5_000), content_col="content")
    assert next(requests) == 1  # one request, no bisection, no retry
    assert result.counts()["not_sent"] == 5_000
    assert isinstance(result.error, AuthError)
    assert f"HTTP {answer.status_code}" in str(result.error)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(403, json={"code": "Throttling.User", "msg": ""}),
        httpx.Response(403, json={"code": "Throttling", "msg": "cannot upload"}),
        httpx.Response(403, json={"code": "Throttling.Api"}),
        httpx.Response(429, text="slow down"),
        httpx.Response(429, content=b""),
        httpx.Response(429, json={"code": "429", "msg": "x"}),
    ],
)
def test_throttling_backs_off_and_retries_whatever_the_body(answer: httpx.Response) -> None:
    emulator = Emulator(qps=0)
    calls = itertools.count()

    def handler(request: httpx.Request) -> httpx.Response:
        if next(calls) < 2:
            return answer
        return emulator.handle_request(request)

    sleeps: list[float] = []
    result = no_sleep_client(handler, sleeps=sleeps).send(frame(10), content_col="content")
    assert result.ok
    assert result.error is None
    assert result.requests["attempts"].tolist() == [3]
    assert len(sleeps) == 2
    assert all(s > 0 for s in sleeps)
    assert len(emulator.events()) == 10


def test_413_splits_the_batch_by_bytes() -> None:
    emulator = Emulator(qps=0)
    limit = 3_000
    bodies: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        size = len(request.content)
        bodies.append(size)
        if size > limit:
            return httpx.Response(413, text="Request Entity Too Large")
        return emulator.handle_request(request)

    df = frame(40)
    df.loc[0, "content"] = "x" * 2_000  # one big event: a split by count would not halve bytes
    result = no_sleep_client(handler).send(df, content_col="content")
    assert result.ok
    assert len(emulator.events()) == 40
    assert bodies[0] > limit
    # halves by bytes: the big event alone on one side, the 39 small ones on the other
    assert len(bodies) == 3


def test_413_for_one_event_alone_rejects_it_with_the_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(413, text="too large")

    result = no_sleep_client(handler).send(frame(1), content_col="content")
    assert result.events["status"].tolist() == ["rejected"]
    assert "too large" in result.events["reason"].iloc[0]
