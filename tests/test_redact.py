"""redact.scrub: whatever a server echoes, no secret survives."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from cms_magic.redact import MARK, scrub

SECRET = "s3cr3t-AccessKeySecret-value"
TOKEN = "CAIS+token/with=chars&more"
AUTH = "acs LTAIkeyid1234:c2lnbmF0dXJlPQ=="


@pytest.mark.parametrize(
    "echo",
    [
        f"string to sign: POST\\n...\\nx-cms-security-token:{TOKEN}\\n",
        f"you sent {SECRET} as the secret",
        json.dumps({"msg": f"token {TOKEN} is expired"}),
        f"token={quote(TOKEN, safe='')}&x=1",
        f"Authorization: {AUTH}",
    ],
)
def test_known_values_are_scrubbed_in_every_echoed_form(echo: str) -> None:
    out = scrub(echo, [SECRET, TOKEN, AUTH])
    for value in (SECRET, TOKEN, AUTH, quote(TOKEN, safe=""), "c2lnbmF0dXJlPQ"):
        assert value not in out
    assert MARK in out


@pytest.mark.parametrize(
    "echo",
    [
        "x-cms-security-token: SomeOtherTokenValue123",
        "x-acs-security-token=AnotherToken456",
        '{"SecurityToken": "CAISxyz987654"}',
        "authorization: acs LTAIabc:sig123456",
        "AccessKeySecret=abcdefgh12345678",
    ],
)
def test_secret_headers_are_scrubbed_whatever_their_value(echo: str) -> None:
    out = scrub(echo)
    assert MARK in out
    assert not any(v in out for v in ("SomeOther", "Another", "CAISxyz", "sig123", "abcdefgh"))


def test_ordinary_text_is_kept() -> None:
    text = "Throttling.User: request was denied due to user flow control"
    assert scrub(text, [SECRET, TOKEN, "short"]) == text
    assert scrub("", [SECRET]) == ""


def test_short_values_are_not_scrubbed_by_value() -> None:
    assert scrub("the word is abc", ["abc"]) == "the word is abc"
