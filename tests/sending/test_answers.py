"""Reading answers: pure functions of status, body and headers."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.errors import AuthError
from cms_magic.redact import MARK
from cms_magic.sending.answers import (
    Decision,
    Outcome,
    Verdict,
    after_ambiguous,
    answer_secrets,
    auth_error,
    classify,
    clock_skew_warning,
    decide,
    decide_failure,
    describe,
    parse_retry_after,
    scrub_answer,
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
        (503, b"<html>busy</html>", "unavailable"),
        (502, b"<html>bad gateway</html>", "server_error"),
        (504, b"", "server_error"),
        (200, b'{"code":"500","msg":"oops"}', "server_error"),
        (200, b'{"code":"503","msg":"busy"}', "unavailable"),
        (404, b'{"code":"404","msg":"no such path"}', "rejected"),
        # item 10: what the status or the code says, whatever the body
        (401, b'{"code":"401","msg":"x"}', "auth"),
        (401, b"Unauthorized", "auth"),
        (401, b"", "auth"),
        (403, b'{"code":"Throttling.User","msg":""}', "throttled"),
        (403, b'{"code":"Throttling","msg":"cannot upload event, please use ram"}', "throttled"),
        (403, b'{"code":"Throttling.Api"}', "throttled"),
        (400, b'{"code":"throttling.user","msg":""}', "throttled"),
        (200, b'{"code":"Throttling.User","msg":""}', "throttled"),
        (403, b'{"code":"SignatureDoesNotMatch","msg":""}', "auth"),
        (429, b"slow down", "throttled"),
        (429, b"", "throttled"),
        (429, b"<html>429</html>", "throttled"),
        (413, b"Request Entity Too Large", "too_large"),
        (413, b'{"code":"413","msg":"too big"}', "too_large"),
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
        ("unavailable", "not_sent", True, True),
        ("too_large", "rejected", False, False),
        ("server_error", "unknown", False, True),
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
        ("security token expired", "get fresh temporary credentials"),
        ("x-cms-security-token does not match the token of AccessKeyId STS.x", "get a fresh one"),
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


@pytest.mark.parametrize("outcome", ["server_error", "bad_response"])
def test_ambiguous_answers_follow_retry_ambiguous(outcome: Outcome) -> None:
    verdict = Verdict(outcome, "500", "oops", None)
    assert decide(verdict, 500).retryable is False
    decision = decide(verdict, 500, retry_ambiguous=True)
    assert (decision.status, decision.retryable) == ("unknown", True)
    assert decision.reason is not None
    assert "may have stored" in decision.reason
    assert "include_unknown=True" in decision.reason


@pytest.mark.parametrize("outcome", ["throttled", "unavailable", "auth", "rejected", "too_large"])
def test_refusals_do_not_depend_on_retry_ambiguous(outcome: Outcome) -> None:
    verdict = Verdict(outcome, "403", "no", None)
    assert decide(verdict, 403) == decide(verdict, 403, retry_ambiguous=True)


def test_after_an_ambiguous_attempt_rows_are_marked_or_unknown_never_not_sent() -> None:
    earlier = describe(Verdict("server_error", "500", "oops", None), 500)
    assert earlier == "HTTP 500, code 500: oops"
    accepted = after_ambiguous(Decision("accepted", None), earlier)
    assert (accepted.status, accepted.possible_duplicate) == ("accepted", True)
    assert accepted.reason is not None
    assert "possible duplicate" in accepted.reason
    assert "HTTP 500, code 500: oops" in accepted.reason
    throttled = decide(Verdict("throttled", "403", "Throttling", None), 403)
    after = after_ambiguous(throttled, earlier)
    assert (after.status, after.retryable, after.possible_duplicate) == ("unknown", False, False)
    assert after.reason is not None
    assert "HTTP 500" in after.reason
    assert "throttled" in after.reason
    rejected = Decision("rejected", "rejected by the service (HTTP 400)")
    assert after_ambiguous(rejected, earlier) is rejected
    unknown = Decision("unknown", "unknown: timeout", error=True)
    assert after_ambiguous(unknown, earlier) is unknown
    assert describe(Verdict("bad_response", None, "ReadTimeout: slow", None), None) == (
        "ReadTimeout: slow"
    )


def test_a_401_auth_error_says_401() -> None:
    credentials = Credentials("LTAI5tAuthErrorKey00abcd", "SECRET-auth", source="test")
    error = auth_error(Verdict("auth", None, "Unauthorized", None), credentials, 401)
    assert "HTTP 401" in error.rule


def test_scrub_answer_scrubs_msg_code_request_id_and_reason_once() -> None:
    token = "CAIS+Token/abc123==tail"
    credentials = Credentials("LTAI5tScrubKey000abcd", "SECRET-scrub-value", security_token=token)
    authorization = "LTAI5tScrubKey000abcd:0123456789ABCDEF0123456789ABCDEF01234567"
    secrets = answer_secrets(credentials, authorization)
    assert "SECRET-scrub-value" in secrets
    assert token in secrets
    assert authorization in secrets
    assert "0123456789ABCDEF0123456789ABCDEF01234567" in secrets
    body = (
        b'{"code":"Sig ' + token.encode() + b'","requestId":"' + token.encode() + b'",'
        b'"msg":"string to sign: x-cms-security-token:'
        + token.encode()
        + b" Authorization: "
        + authorization.encode()
        + b' key SECRET-scrub-value"}'
    )
    verdict = classify(400, body)
    decision = decide(verdict, 400)
    verdict, decision = scrub_answer(verdict, decision, secrets)
    for text in (verdict.msg, verdict.code or "", verdict.request_id or "", decision.reason or ""):
        assert token not in text
        assert "SECRET-scrub-value" not in text
        assert "0123456789ABCDEF0123456789ABCDEF01234567" not in text
        assert MARK in text
    plain = classify(200, b'{"code":"200","msg":""}')
    assert scrub_answer(plain, decide(plain, 200), secrets) == (plain, decide(plain, 200))


def test_scrub_answer_covers_a_transport_failure_quoting_the_server() -> None:
    token = "CAIS+Token/abc123==tail"
    credentials = Credentials("LTAI5tScrubKey000abcd", "SECRET-scrub-value", security_token=token)
    failure = httpx.RemoteProtocolError(f"illegal header line: b'x-cms-security-token: {token}'")
    verdict, decision = scrub_answer(*decide_failure(failure), answer_secrets(credentials, None))
    assert token not in verdict.msg
    assert decision.reason is not None
    assert token not in decision.reason
