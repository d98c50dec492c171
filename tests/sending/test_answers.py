"""Reading answers: pure functions of status, body and headers."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.errors import AuthError
from cms_magic.sending.answers import (
    Outcome,
    Verdict,
    auth_error,
    classify,
    clock_skew_warning,
    decide,
    decide_failure,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"code":"200","msg":""}', "accepted"),
        (200, b'{"code":200,"msg":"success"}', "accepted"),
        (200, b'{"code":"400","msg":"bad"}', "rejected"),
        (200, b"not json", "bad_response"),
        (400, b'{"code":"400","msg":"syntax"}', "rejected"),
        (403, b'{"code":"403","msg":"Throttling: rate limit exceeded"}', "throttled"),
        (403, b'{"code":"403","msg":"signature does not match"}', "auth"),
        (403, b'{"code":"403","msg":"cannot upload event, please use ram to auth"}', "auth"),
        (500, b'{"code":"500","msg":"oops"}', "server_error"),
        (503, b"<html>busy</html>", "server_error"),
        (404, b'{"code":"404","msg":"no such path"}', "rejected"),
    ],
)
def test_classify(status: int, body: bytes, outcome: str) -> None:
    assert classify(status, body).outcome == outcome


def test_retry_after_is_read() -> None:
    verdict = classify(403, b'{"code":"403","msg":"throttled"}', {"retry-after": "2"})
    assert verdict.retry_after == 2.0


@pytest.mark.parametrize("nonsense", ["-5", "-0.1", "nan", "inf", "-inf"])
def test_nonsense_retry_after_is_no_hint_and_the_backoff_decides(nonsense: str) -> None:
    assert parse_retry_after(nonsense) is None
    verdict = classify(429, b"slow down", {"retry-after": nonsense})
    assert verdict.retry_after is None


def test_a_retry_after_date_already_past_is_no_hint() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) is None


def test_retry_after_as_a_date_is_relative_to_now() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(7.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(None) is None
    assert classify(200, b'{"code":"200"}', {"retry-after": "5"}).retry_after is None


@pytest.mark.parametrize(
    ("outcome", "status", "retryable", "error"),
    [
        ("accepted", "accepted", False, False),
        ("rejected", "rejected", False, False),
        ("auth", "not_sent", False, False),
        ("throttled", "not_sent", True, True),
        ("server_error", "not_sent", True, True),
        ("bad_response", "unknown", False, True),
    ],
)
def test_decide_gives_each_outcome_its_fate(
    outcome: Outcome, status: str, retryable: bool, error: bool
) -> None:
    decision = decide(Verdict(outcome, "400", "why", "rid"), 400)
    assert (decision.status, decision.retryable, decision.error) == (status, retryable, error)
    assert (decision.reason is None) == (outcome == "accepted")
    if decision.reason is not None:
        assert "HTTP 400, code 400: why" in decision.reason


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("t"),
        httpx.PoolTimeout("p"),
        httpx.WriteError("w"),
        httpx.WriteTimeout("w"),
    ],
)
def test_a_failure_before_the_request_went_out_is_not_sent_and_retryable(
    failure: httpx.TransportError,
) -> None:
    verdict, decision = decide_failure(failure)
    assert (decision.status, decision.retryable, decision.error) == ("not_sent", True, True)
    assert type(failure).__name__ in verdict.msg


@pytest.mark.parametrize("retry_ambiguous", [False, True])
def test_a_timeout_after_sending_is_unknown_retried_only_if_asked(retry_ambiguous: bool) -> None:
    _, decision = decide_failure(httpx.ReadTimeout("slow"), retry_ambiguous=retry_ambiguous)
    assert decision.status == "unknown"
    assert decision.retryable is retry_ambiguous
    assert decision.reason is not None
    assert "include_unknown=True" in decision.reason


@pytest.mark.parametrize(
    ("msg", "advice"),
    [
        ("cannot upload event, please use ram to auth", "RAM user CloudMonitor permission"),
        ("signature does not match", "check the AccessKey secret"),
        ("Unknown AccessKeyId", "check the AccessKey id"),
        ("the Date is too far from the server clock", "synchronise it (NTP)"),
        ("security token expired", "get a fresh one"),
    ],
)
def test_auth_error_carries_the_advice_as_its_hint(msg: str, advice: str) -> None:
    credentials = Credentials("LTAI5tAuthErrorKey00abcd", "SECRET-auth", source="test")
    error = auth_error(Verdict("auth", "403", msg, None), credentials)
    assert isinstance(error, AuthError)
    assert error.hint is not None
    assert advice in error.hint
    assert "LTAI****abcd from test" in error.rule
    assert "SECRET-auth" not in str(error)
    assert str(error) == f"{error.rule}; {error.hint}"


def test_clock_skew_warning_is_a_function_of_the_dates() -> None:
    now = 1_800_000_000.0
    server = email.utils.formatdate(now - 600, usegmt=True)
    warning = clock_skew_warning("http://h", server, now)
    assert warning is not None
    assert "600 s ahead of the server at http://h" in warning
    behind = clock_skew_warning("http://h", email.utils.formatdate(now + 400, usegmt=True), now)
    assert behind is not None
    assert "behind" in behind
    assert (
        clock_skew_warning("http://h", email.utils.formatdate(now - 60, usegmt=True), now) is None
    )
    assert clock_skew_warning("http://h", "not a date", now) is None
    assert clock_skew_warning("http://h", None, now) is None
