"""Secrets never ride on a magic line, and never show in anything the magic prints or stores."""

from __future__ import annotations

import re
import socket

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cms_magic import emulator
from cms_magic.credentials.static import Credentials
from cms_magic.results import SendResult
from cms_magic.ui.magic.guard import refuse_secrets
from tests.ui.magic.support import CANARY, CANARY_ID, assert_usage_error, run

SECRET_LINES = [
    "--secret abc",
    "--access-key-secret abc",
    "--access_key_id abc",
    "--key abc",
    "--sts-token abc",
    "--password=abc",
    "LTAI5tAbCdEfGhIjKlMn",
    "--name STS.NUabcdefghijklmnop",
    "AccessKeySecret=abc",
    "--name access_key_secret:abc",
    "--content-template Ab3dEf7hIj1lMn0pQr5tUv9xYz2bCd",
]


@pytest.mark.parametrize("fragment", SECRET_LINES)
def test_secrets_on_the_line_are_refused_unread(shell: InteractiveShell, fragment: str) -> None:
    for line in (f"%cms_event r --df df {fragment}", f"%cms whoami {fragment}"):
        ran = run(shell, line)
        message = assert_usage_error(
            ran, "refuses credentials", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "--profile"
        )
        last = fragment.rsplit(maxsplit=1)[-1]
        value = last.partition("=")[2] or last
        assert value not in message


@pytest.mark.parametrize(
    "line",
    [
        "r --df df --name deploy --content-template '{host}: {message}'",
        "r --df key_frame --name token-refresh --endpoint https://metrichub-cms-cn-hangzhou.aliyuncs.com",
        "r --df df --name-col kind --time-col at --tz Asia/Shanghai --group-id 12345",
        "--df df --name password-reset --content-col secret_note",
    ],
)
def test_ordinary_lines_are_not_mistaken_for_secrets(line: str) -> None:
    refuse_secrets(line, "%%cms_event")


def test_the_secret_appears_nowhere(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CANARY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CANARY)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with (
        emulator.serve(credentials=Credentials(CANARY_ID, CANARY), qps=0) as good,
        emulator.serve(credentials=Credentials(CANARY_ID, "another-secret"), qps=0) as refusing,
    ):
        cells = [
            "%config CmsMagic.max_retries = 0",
            f"%cms_event ok --df df --name n --endpoint {good.url}",
            f"%cms_event --df df --name n --endpoint {good.url}",
            f"%cms_event dry --df df --name n --dry-run --endpoint {good.url}",
            f"%cms_event job --df df --name n --background --endpoint {good.url}",
            "job.wait(10)",
            f"%cms_event refused --df df --name n --endpoint {refusing.url}",
            f"%cms_event unreachable --df df --name n --endpoint http://127.0.0.1:{closed}",
            f"%%cms_event printed --endpoint {good.url}\nprint('hello')",
            f"%cms_event raised --df df --name n --raise --endpoint {refusing.url}",
            "%cms_event bad --df df --content-col nope --endpoint local",
            "%cms_event bad --df df --secret " + CANARY,
            "%cms_event bad --df df --name n",
            "%cms_event bad --df df --name n --endpoint https://u:pw@example.com",
            "%cms config",
            "%cms whoami",
            "%cms last",
            f"%config CmsMagic.endpoint = '{good.url}'",
            "%cms config",
            "%cms_event ok2 --df df --name n",
            "%cms_event ok3 --df df --name n --endpoint local",
            "%cms emulator status",
        ]
        seen: list[str] = []
        for cell in cells:
            ran = run(shell, cell)
            seen.append(ran.shown)
            value = ran.value
            if value is not None:
                seen.append(repr(value))
                html = getattr(value, "_repr_html_", None)
                if callable(html):
                    seen.append(str(html()))
        assert shell.user_ns["job"].result().ok
        assert shell.user_ns["ok"].ok
        assert shell.user_ns["printed"].ok
        assert not shell.user_ns["refused"].ok
    combined = "\n".join(seen)
    for path in ("2/2 events accepted", "dry run: 2/2", "authorization: LTAI****0001"):
        assert path in combined, path  # the paths did run and show their output
    assert "refuses credentials" in combined
    assert "LTAI****0001" in combined
    leaks = [line for line in combined.splitlines() if CANARY in line]
    # The one line the user typed with the secret is refused, and not echoed.
    assert leaks == []
    for name, value in list(shell.user_ns.items()):
        if name in ("In", "_ih", "_i", "_ii", "_iii") or re.fullmatch(r"_i\d+", name):
            continue  # the input history holds what the user typed, nothing of ours
        texts = [repr(value)]
        if isinstance(value, SendResult):
            texts += [value._repr_html_(), value.events.to_string(), value.requests.to_string()]
            texts.append(repr(value.preview))
        assert not any(CANARY in text for text in texts), name


@pytest.mark.parametrize(
    "line",
    [
        '--df df --name n --content-template "password: reset for {content}"',
        "--df df --name n --content-template 'secret: the plan for {kind}'",
        "--df df --name n --content-template 'password={password}'",
        "--df df --name 'Password Reset' --content-template 'token: expired, key: rotated'",
        "--df df --name n --content-template 'AccessKey secret rotated by {user}'",
    ],
)
def test_the_words_password_and_secret_in_prose_are_not_secrets(line: str) -> None:
    refuse_secrets(line, "%%cms_event")


@pytest.mark.parametrize(
    "fragment",
    [
        "--content-template 'password: hunter2 for {content}'",  # a real-looking value
        "--content-template 'secret=abc {content}'",  # glued to its key: any value
        '--content-template \'{"AccessKeySecret": "Xy12abcdEF"}\'',
        "--content-template 'key Ab3dEf7hIj1lMn0pQr5tUv9xYz2bCd for {content}'",  # 30 chars
        "--content-template 'by LTAI5tAbCdEfGhIjKlMn'",
    ],
)
def test_real_looking_secrets_in_prose_are_refused(shell: InteractiveShell, fragment: str) -> None:
    message = assert_usage_error(run(shell, f"%cms_event r --df df --name n {fragment}"))
    assert "refuses credentials" in message
    for secret in ("hunter2", "abc", "Xy12abcdEF", "Ab3dEf7hIj1lMn0pQr5tUv9xYz2bCd", "LTAI5t"):
        assert secret not in message


def test_a_template_with_the_word_password_is_sent(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(
        shell,
        f'%cms_event r --df df --name n --content-template "password: reset for {{kind}}" '
        f"--endpoint {emu.url}",
    )
    assert ran.error is None, ran.stderr
    assert [e["content"] for e in emu.events()] == [
        "password: reset for a",
        "password: reset for b",
    ]
