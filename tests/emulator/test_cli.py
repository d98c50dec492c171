"""``python -m cms_magic.emulator`` (:mod:`cms_magic.emulator.cli`): serves until SIGTERM,
shows the demo pair but never a user's secret, and wants both halves of a key pair."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, main

REPO = Path(__file__).resolve().parents[2]


def read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.mark.parametrize("user_keys", [False, True], ids=["demo-keys", "user-keys"])
def test_command_line_serves_until_sigterm(user_keys: bool) -> None:
    args = [sys.executable, "-m", "cms_magic.emulator", "--port", "0"]
    user_secret = "user-given-secret-value"
    if user_keys:
        args += ["--access-key-id", "LTAIuserGivenKey01", "--access-key-secret", user_secret]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            output = ""
            deadline = time.monotonic() + 20
            while "Press Ctrl-C" not in output:
                output += lines.get(timeout=max(0.1, deadline - time.monotonic()))
            match = re.search(r"http://127\.0\.0\.1:\d+", output)
            assert match, output
            health = httpx.get(f"{match.group(0)}/_emulator/health", timeout=5)
            assert health.json() == {"ok": True}
            assert f"STS:               {match.group(0)} (AssumeRole" in output
            assert f"credentials URI:   GET {match.group(0)}/credentials" in output
            assert "minted lifetime:   3600 s" in output
            uri = httpx.get(f"{match.group(0)}/credentials", timeout=5)
            assert uri.json()["Code"] == "Success"
            if user_keys:
                assert user_secret not in output
                assert f"******** ({len(user_secret)} characters, as given)" in output
            else:
                assert DEMO_ACCESS_KEY_ID in output
                assert DEMO_ACCESS_KEY_SECRET in output
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
            assert time.monotonic() - started < 5
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=5)


def test_command_line_wants_both_halves_of_a_key_pair(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["--access-key-id", "LTAIuserGivenKey01"])
    assert excinfo.value.code == 2
    assert "--access-key-secret" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--qps", "-1"], "--qps must be >= 0"),
        (["--sts-lifetime", "0"], "--sts-lifetime must be a number of seconds > 0"),
        (["--sts-lifetime", "nan"], "--sts-lifetime must be a number of seconds > 0"),
        (["--metadata-role", "a/b"], "--metadata-role must be a RAM role name"),
        (["--port", "x"], "invalid int value"),
        (
            ["--access-key-id", "LTAI key", "--access-key-secret", "s"],
            "must not contain whitespace",
        ),
    ],
)
def test_command_line_refuses_bad_options(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2
    assert fragment in capsys.readouterr().err


def test_cms_event_emulator_is_the_same_command(capsys: pytest.CaptureFixture[str]) -> None:
    from cms_magic.ui.cli import main as cms_event

    with pytest.raises(SystemExit) as excinfo:
        cms_event(["emulator", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    options = ("--host", "--port", "--access-key-id", "--access-key-secret", "--qps")
    for option in (*options, "--sts-lifetime", "--metadata-v1", "--metadata-role"):
        assert option in out
