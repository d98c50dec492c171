"""``%config CmsMagic``: traits checked by the core's checks, sources remembered, flags per cell."""

from __future__ import annotations

import re
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets import TraitError
from traitlets.config import Config

import cms_magic
from cms_magic import emulator, settings
from cms_magic.ui.magic.magics import CmsMagic
from tests.ui.magic.support import assert_usage_error, magic, run


def test_config_precedence_flag_then_config_then_environment(
    shell: InteractiveShell,
    emu: emulator.EmulatorServer,
    creds: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with emulator.serve(qps=0) as second:
        monkeypatch.setenv("CMS_MAGIC_ENDPOINT", second.url)
        run(shell, "%cms_event r --df df --name env")
        assert len(second.events()) == 2

        text = run(shell, "%cms config").stdout
        assert re.search(
            r"endpoint\s+'http://127\.0\.0\.1:\d+'\s+environment \(CMS_MAGIC_ENDPOINT\)", text
        )

        run(shell, f"%config CmsMagic.endpoint = '{emu.url}'")
        run(shell, "%cms_event r --df df --name cfg")
        assert [e["name"] for e in emu.events()] == ["cfg", "cfg"]
        text = run(shell, "%cms config").stdout
        assert re.search(r"endpoint\s+'http://127\.0\.0\.1:\d+'\s+%config", text)
        assert re.search(r"qps\s+20\.0\s+default", text)
        assert re.search(r"credentials\s+LTAI\*\*\*\*Demo\s+environment", text)

        ran = run(shell, f"%cms_event r --df df --name flag --endpoint {second.url}")
        assert ran.error is None
        assert [e["name"] for e in second.events()] == ["env", "env", "flag", "flag"]
        assert magic(shell).endpoint == emu.url  # the flag changed nothing global

        run(shell, "%config CmsMagic.endpoint = None")
        run(shell, "%config CmsMagic.region = 'cn-shanghai'")
        run(shell, "%config CmsMagic.endpoint = None")
        # with an endpoint in the environment and a region in %config, %config wins
        ran = run(shell, "%cms_event r --df df --name n --dry-run")
        assert "region cn-shanghai (public endpoint https://" in ran.stdout
        assert "): dry run: 2/2 events would be sent" in ran.stdout


def test_an_ipython_config_file_setting_is_named_as_such(creds: None) -> None:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.CmsMagic.region = "cn-shanghai"
    config.CmsMagic.qps = 5
    ip: Any = InteractiveShell.instance(config=config)
    try:
        run(ip, "%load_ext cms_magic")
        text = run(ip, "%cms config").stdout
        assert re.search(r"region\s+'cn-shanghai'\s+IPython config", text)
        assert re.search(r"qps\s+5\.0\s+IPython config", text)
        assert re.search(
            r"target\s+region cn-shanghai \(public endpoint \S+\)\s+IPython config CmsMagic.region",
            text,
        )
        run(ip, "%config CmsMagic.qps = 6")
        assert re.search(r"qps\s+6\.0\s+%config", run(ip, "%cms config").stdout)
    finally:
        run(ip, "%unload_ext cms_magic")
        ip.history_manager.end_session()
        InteractiveShell.clear_instance()


def test_traits_are_validated_on_assignment(
    shell: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    cms = magic(shell)
    bad: list[tuple[str, Any, str]] = [
        ("region", "mars-1", "unknown region 'mars-1'"),
        ("endpoint", "cn-mars-1", "CmsMagic.endpoint: unknown region 'cn-mars-1'"),
        ("endpoint", "ftp://x", "CmsMagic.endpoint = 'ftp://x': endpoint URL must start with http"),
        ("endpoint", "not a url", "CmsMagic.endpoint = 'not a url': is not a URL"),
        ("qps", -1, "CmsMagic.qps = -1.0: must be a number >= 0"),
        ("concurrency", 0, "CmsMagic.concurrency = 0: must be >= 1"),
        ("max_retries", -1, "CmsMagic.max_retries = -1: must be >= 0"),
        ("timeout", 0, "CmsMagic.timeout = 0.0: must be a number of seconds > 0"),
        ("group_id", -3, "CmsMagic.group_id = -3: must be an integer from 0 to"),
        ("default_name", " ", "CmsMagic.default_name = ' ': must be a non-empty"),
        ("profile", "", "CmsMagic.profile = '': must be a profile name"),
        ("progress", "fancy", "progress"),
    ]
    for name, value, message in bad:
        before = getattr(cms, name)
        with pytest.raises(TraitError, match=re.escape(message)):
            setattr(cms, name, value)
        assert getattr(cms, name) == before

    caplog.clear()
    run(shell, "%config CmsMagic.qps = -5")  # IPython logs the TraitError and goes on
    assert "CmsMagic.qps = -5.0: must be a number >= 0" in caplog.text
    assert cms.qps == 20.0

    run(shell, "%config CmsMagic.progress = False")
    assert cms.progress == "off"
    run(shell, "%config CmsMagic.progress = True")
    assert cms.progress == "auto"
    run(shell, "%config CmsMagic.endpoint = 'LOCAL'")
    assert cms.endpoint == "local"
    run(shell, "%config CmsMagic.endpoint = 'HTTP://Example.COM:8080/'")
    assert cms.endpoint == "http://example.com:8080"
    run(shell, "%config CmsMagic.endpoint = 'CN-Hangzhou'")  # a region id is that region
    assert cms.endpoint == "cn-hangzhou"
    assert "CmsMagic.region" in run(shell, "%config CmsMagic").stdout


def test_trait_defaults_are_the_settings_defaults() -> None:
    traits = CmsMagic.class_traits()
    assert traits["qps"].default_value == settings.DEFAULT_QPS
    assert traits["concurrency"].default_value == settings.DEFAULT_CONCURRENCY
    assert traits["timeout"].default_value == settings.DEFAULT_TIMEOUT
    assert traits["max_retries"].default_value == settings.DEFAULT_MAX_ATTEMPTS - 1


def test_send_flags_apply_to_one_cell_only(
    shell: InteractiveShell,
    emu: emulator.EmulatorServer,
    creds: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    real_send = cms_magic.send

    def spy(data: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_send(data, **kwargs)

    monkeypatch.setattr(cms_magic, "send", spy)
    ran = run(
        shell,
        f"%cms_event r --df df --name n --endpoint {emu.url} --qps 0 --concurrency 2 "
        "--timeout 3.5 --max-retries 0 --retry-ambiguous",
    )
    assert ran.error is None, ran.stderr
    assert shell.user_ns["r"].ok
    (flagged,) = calls
    assert (flagged["qps"], flagged["concurrency"], flagged["timeout"]) == (0.0, 2, 3.5)
    assert flagged["retry"].max_attempts == 1
    assert flagged["retry_ambiguous"] is True
    cms = magic(shell)
    assert (cms.qps, cms.concurrency, cms.timeout, cms.max_retries) == (
        settings.DEFAULT_QPS,
        settings.DEFAULT_CONCURRENCY,
        settings.DEFAULT_TIMEOUT,
        settings.DEFAULT_MAX_ATTEMPTS - 1,
    )

    run(shell, "%config CmsMagic.concurrency = 3")
    run(shell, f"%cms_event r --df df --name n --endpoint {emu.url}")
    assert calls[-1]["concurrency"] == 3  # %config is the default of the next cells
    assert calls[-1]["retry_ambiguous"] is False
    assert calls[-1]["retry"].max_attempts == settings.DEFAULT_MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("--qps -1", "--qps -1.0: must be a number >= 0"),
        ("--concurrency 0", "--concurrency 0: must be >= 1"),
        ("--timeout 0", "--timeout 0.0: must be a number of seconds > 0"),
        ("--max-retries -1", "--max-retries -1: must be >= 0"),
        ("--qps fast", "argument --qps: invalid float value: 'fast'"),
    ],
)
def test_a_bad_send_flag_is_one_line_naming_the_flag(
    shell: InteractiveShell, flags: str, message: str
) -> None:
    ran = run(shell, f"%cms_event r --df df --name n --endpoint local {flags}")
    assert_usage_error(ran, message)
    assert "r" not in shell.user_ns
