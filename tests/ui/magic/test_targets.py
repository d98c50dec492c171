"""Where a cell sends: the magic asks ``cms_magic.targets.resolve_target`` and names the target."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cms_magic import emulator
from tests.ui.magic.support import assert_usage_error, magic, run


@pytest.mark.parametrize("word", ["local", "LOCAL", "Local"])
def test_local_in_any_case_uses_the_embedded_emulator_and_says_so(
    shell: InteractiveShell, word: str
) -> None:
    ran = run(shell, f"%cms_event r --df df --name n --endpoint {word}")
    assert ran.error is None, ran.stderr
    server = emulator.embedded_running()
    assert server is not None
    result = shell.user_ns["r"]
    assert ran.stdout == (f"the local emulator: 2/2 events accepted in {result.elapsed:.1f} s\n")
    assert len(server.events()) == 2


def test_the_emulator_subcommand(shell: InteractiveShell) -> None:
    run(shell, "%cms_event r --df df --name n --endpoint local")
    assert "running at" in run(shell, "%cms emulator status").stdout
    assert "demo AccessKey LTAI****Demo" in run(shell, "%cms emulator start").stdout
    assert "stopped" in run(shell, "%cms emulator stop").stdout
    assert "not running" in run(shell, "%cms emulator status").stdout
    assert "was not running" in run(shell, "%cms emulator stop").stdout


def test_with_nothing_configured_the_target_is_the_local_emulator(
    shell: InteractiveShell,
) -> None:
    ran = run(shell, "%cms_event r --df df --name n")
    assert ran.error is None, ran.stderr
    assert ran.stdout.startswith("the local emulator: 2/2 events accepted")
    server = emulator.embedded_running()
    assert server is not None
    assert len(server.events()) == 2
    whoami = run(shell, "%cms whoami").stdout
    assert "target: the local emulator (from default" in whoami
    assert "nothing leaves this machine" in whoami


def test_with_cloud_credentials_configured_a_target_must_be_named(
    shell: InteractiveShell, creds: None
) -> None:
    ran = run(shell, "%cms_event r --df df --name n")
    assert_usage_error(
        ran,
        "no target is configured, and ALIBABA_CLOUD_ACCESS_KEY_ID is set",
        "the local emulator is not assumed",
        "'cn-hangzhou'",
        "'local'",
    )
    assert emulator.embedded_running() is None  # never a silent stand-in for the cloud
    assert "r" not in shell.user_ns


def test_a_profile_flag_counts_as_cloud_credentials(shell: InteractiveShell) -> None:
    ran = run(shell, "%cms_event r --df df --name n --profile work")
    assert_usage_error(ran, "no target is configured, and credentials were given")
    assert emulator.embedded_running() is None


def test_a_region_id_given_to_endpoint_is_that_region(shell: InteractiveShell, creds: None) -> None:
    ran = run(shell, "%cms_event r --df df --name n --dry-run --endpoint CN-Hangzhou")
    assert ran.error is None, ran.stderr
    assert ran.stdout.startswith("region cn-hangzhou (public endpoint https://")
    assert "): dry run: 2/2 events would be sent" in ran.stdout


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("'not a url'", "--endpoint 'not a url': is not a URL"),
        ("ftp://127.0.0.1/x", "--endpoint 'ftp://127.0.0.1/x': endpoint URL must start with"),
        ("http://u:p@h", "must not contain user info"),
    ],
)
def test_a_malformed_url_gets_a_message_about_urls(
    shell: InteractiveShell, value: str, rule: str
) -> None:
    ran = run(shell, f"%cms_event r --df df --name n --endpoint {value}")
    message = assert_usage_error(ran, rule)
    assert "valid region ids" not in message  # never the list of regions
    assert ":p@" not in message  # a password in a URL is not echoed
    assert emulator.embedded_running() is None


def test_an_unknown_region_lists_the_regions(shell: InteractiveShell) -> None:
    message = assert_usage_error(
        run(shell, "%cms_event r --df df --name n --region mars-1"), "--region: unknown region"
    )
    assert "valid region ids: " in message
    assert "cn-hangzhou" in message


def test_region_target_and_internal(shell: InteractiveShell, creds: None) -> None:
    run(shell, "%config CmsMagic.region = 'CN-Beijing'")
    assert magic(shell).region == "cn-beijing"
    ran = run(shell, "%cms_event r --df df --name n --dry-run --internal")
    assert ran.stdout.startswith(
        "region cn-beijing (internal endpoint http://metrichub-cn-beijing.aliyun.com): dry run"
    )
    assert "first request: POST http://metrichub-cn-beijing.aliyun.com" in ran.stdout
    ran = run(shell, "%cms_event r --df df --name n --dry-run --region cn-hangzhou")
    assert ran.stdout.startswith("region cn-hangzhou (public endpoint")

    run(shell, "%config CmsMagic.internal = True")  # a default for regions only
    ran = run(shell, "%cms_event r --df df --name n --dry-run")
    assert ran.stdout.startswith("region cn-beijing (internal endpoint")
    ran = run(shell, "%cms_event r --df df --name n --endpoint local")
    assert ran.error is None, ran.stderr
    assert ran.stdout.startswith("the local emulator: 2/2 events accepted")
