"""Reading answers: pure functions of status, body and headers."""

from __future__ import annotations

import pytest

from cms_magic.sending.answers import classify


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
