"""Issue 12, item 1: the emulator's answers, its request log and its logs never show a
security token (the string to sign shows a marker in its place); the check uses the real one."""

from __future__ import annotations

import json

from cms_magic.credentials.static import Credentials
from cms_magic.emulator.validation import TOKEN_MARKER
from tests.emulator._client import GOOD_BODY, make_emulator, post, replaced, signed

TOKEN = "CAIS-sts-token-0123456789-very-secret"
STS = Credentials("STS.emulatorKey01", "sts-secret-value", security_token=TOKEN)


def test_a_bad_signature_shows_the_string_to_sign_without_the_token() -> None:
    emu = make_emulator(credentials=[STS], qps=0)
    wrong = Credentials(STS.access_key_id, "not-the-secret", security_token=TOKEN)
    answer = post(emu, GOOD_BODY, signed(GOOD_BODY, credentials=wrong))
    assert answer.status == 403
    msg = answer.json()["msg"]
    assert "the server's string to sign is '" in msg
    assert f"x-cms-security-token:{TOKEN_MARKER}" in msg
    assert TOKEN not in msg
    assert TOKEN not in answer.body.decode()
    assert STS.access_key_secret.reveal() not in answer.body.decode()
    log = json.dumps(emu.requests())
    assert TOKEN not in log
    assert TOKEN_MARKER in log
    # the check itself still uses the real token: the right secret is accepted
    assert post(emu, GOOD_BODY, signed(GOOD_BODY, credentials=STS)).status == 200


def test_a_token_sent_for_a_key_without_one_is_not_shown_either() -> None:
    emu = make_emulator(qps=0)  # the demo key has no token
    pairs = replaced(signed(GOOD_BODY), "x-cms-security-token", TOKEN)  # added after signing
    answer = post(emu, GOOD_BODY, pairs)
    assert answer.status == 403
    assert TOKEN_MARKER in answer.json()["msg"]
    assert TOKEN not in answer.body.decode()
    assert TOKEN not in json.dumps(emu.requests())


def test_a_token_echoed_in_another_header_is_hidden_too() -> None:
    emu = make_emulator(credentials=[STS], qps=0)
    pairs = replaced(signed(GOOD_BODY, credentials=STS), "x-cms-api-version", TOKEN)
    answer = post(emu, GOOD_BODY, pairs)
    assert answer.status == 400
    assert TOKEN not in answer.body.decode()
    assert TOKEN_MARKER in answer.json()["msg"]
