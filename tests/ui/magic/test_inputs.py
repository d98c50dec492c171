"""The inputs other than Python: ``--raw`` text and ``--json`` events."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell

from cms_magic import emulator
from tests.ui.magic.support import run


def test_raw_cell_text_is_the_content_unexecuted(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    text = "release 1.4.2: {not python} ${HOME}\n  second line"
    ran = run(shell, f"%%cms_event r --raw --name deploy --endpoint {emu.url}\n{text}\n")
    assert ran.error is None, ran.stderr
    assert emu.events() == [{"content": text, "name": "deploy"}]


def test_json_cell_is_an_array_of_events(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    body = (
        '[{"name": "a", "content": "x", "groupId": 3, "time": "20171023T144439.948+0800"},'
        ' {"content": "no name"}, {"name": "bad", "content": ""}]'
    )
    ran = run(shell, f"%%cms_event r --json --endpoint {emu.url}\n{body}")
    assert ran.error is None, ran.stderr
    result = shell.user_ns["r"]
    assert list(result.events["status"]) == ["accepted", "accepted", "rejected"]
    assert "2/3 events accepted" in ran.stdout
    assert "1 rejected -> r.failed()" in ran.stdout
    assert [e["name"] for e in emu.events()] == ["a", "cms_magic"]
