"""``%cms``: regions, config, whoami, emulator, last, panel, help."""

from __future__ import annotations

import re

import pandas as pd
from IPython.core.interactiveshell import InteractiveShell

from cms_magic import emulator
from tests.ui.magic.support import assert_usage_error, run


def test_cms_helpers(shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None) -> None:
    regions = run(shell, "%cms regions").value
    assert isinstance(regions, pd.DataFrame)
    assert "cn-hangzhou" in set(regions["id"])

    run(shell, f"%cms_event r --df df --name n --endpoint {emu.url}")
    last = run(shell, "%cms last").value
    assert last is shell.user_ns["r"]

    whoami = run(shell, "%cms whoami").stdout
    assert "credentials: AccessKey LTAI****Demo from environment" in whoami
    assert "target: none: no target is configured, and ALIBABA_CLOUD_ACCESS_KEY_ID is set" in (
        whoami
    )
    run(shell, "%config CmsMagic.endpoint = 'local'")
    whoami = run(shell, "%cms whoami").stdout
    assert "target: the local emulator (from %config CmsMagic.endpoint)" in whoami
    assert "credentials: LTAI****Demo from cms_magic emulator demo credentials" in whoami

    panel = run(shell, "%cms panel")
    assert panel.error is None
    assert "panel" in panel.stdout or panel.value is not None
    helped = run(shell, "%cms").stdout
    commands = ("regions", "config", "whoami", "last", "panel", "events", "count", "histogram")
    assert all(f"%cms {c}" in helped for c in commands)


def test_cms_last_before_any_send(shell: InteractiveShell) -> None:
    ran = run(shell, "%cms last")
    assert ran.value is None
    assert "no send has finished" in ran.stdout


def test_cms_config_names_the_target_and_its_source(shell: InteractiveShell, creds: None) -> None:
    text = run(shell, "%cms config").stdout
    assert re.search(r"target\s+\(none: no target is configured", text)
    assert re.search(r"qps\s+20\.0\s+default", text)
    run(shell, "%config CmsMagic.region = 'cn-shanghai'")
    text = run(shell, "%cms config").stdout
    assert re.search(r"region\s+'cn-shanghai'\s+%config", text)
    assert re.search(
        r"target\s+region cn-shanghai \(public endpoint \S+\)\s+%config CmsMagic.region", text
    )
    assert re.search(r"credentials\s+LTAI\*\*\*\*Demo\s+environment", text)


def test_unknown_subcommands_and_arguments(shell: InteractiveShell) -> None:
    assert_usage_error(run(shell, "%cms bogus"), "unknown subcommand 'bogus'", "regions")
    assert_usage_error(run(shell, "%cms regions now"), "%cms regions takes no arguments")
