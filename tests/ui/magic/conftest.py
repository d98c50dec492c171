"""Fixtures of the magic's tests: an isolated environment, a fresh shell with the extension
loaded, an emulator on 127.0.0.1 and its demo key in the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, EmulatorServer
from tests.ui.magic.support import ENV_VARS


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu(emulator: EmulatorServer) -> EmulatorServer:
    """The shared ``emulator`` fixture (tests/conftest.py), named so that it does not hide
    the ``cms_magic.emulator`` module in the tests."""
    return emulator


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment holds the emulator's demo pair."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEMO_ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEMO_ACCESS_KEY_SECRET)


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip: Any = InteractiveShell.instance(config=config)
    ip.run_cell("%load_ext cms_magic")
    ip.run_cell("import pandas as pd\ndf = pd.DataFrame({'kind': ['a', 'b'], 'n': [1, 2]})")
    yield ip
    ip.run_cell("%unload_ext cms_magic")
    ip.history_manager.end_session()
    InteractiveShell.clear_instance()
