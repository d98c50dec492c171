"""A cell run as Python: its last value or what it printed is what is sent."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cms_magic import emulator
from tests.ui.magic.support import run


def test_python_cell_whose_last_value_is_a_dataframe(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(
        shell,
        f"%%cms_event r --name-col kind --content-col note --endpoint {emu.url}\n"
        "print('building')\n"
        "pd.DataFrame({'kind': ['x', 'y', 'z'], 'note': ['1', '2', '3']})\n",
    )
    assert ran.error is None, ran.stderr
    assert ran.stdout.startswith("building\n")  # the cell's own output is still shown
    assert "3/3 events accepted" in ran.stdout
    assert [(e["name"], e["content"]) for e in emu.events()] == [
        ("x", "1"),
        ("y", "2"),
        ("z", "3"),
    ]


def test_python_cell_runs_in_the_user_namespace(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "base = 40")
    ran = run(
        shell,
        f"%%cms_event r --endpoint {emu.url}\nanswer = base + 2\n{{'name': 'n', 'content': str(answer)}}",
    )
    assert ran.error is None, ran.stderr
    assert shell.user_ns["answer"] == 42
    assert emu.events() == [{"content": "42", "name": "n"}]


def test_dict_and_list_of_dicts_get_the_default_name_and_group(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "%config CmsMagic.default_name = 'notes'")
    ran = run(
        shell,
        f"%%cms_event r --group-id 5 --endpoint {emu.url}\n"
        "[{'content': 'one'}, {'name': 'own', 'content': 'two', 'groupId': 9}]",
    )
    assert ran.error is None, ran.stderr
    assert emu.events() == [
        {"content": "one", "groupId": 5, "name": "notes"},
        {"content": "two", "groupId": 9, "name": "own"},
    ]


def test_a_string_last_value_is_the_content_of_one_event(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%%cms_event r --name deploy --endpoint {emu.url}\n'v' + '1.2'")
    assert ran.error is None, ran.stderr
    assert emu.events() == [{"content": "v1.2", "name": "deploy"}]


def test_printed_output_is_the_content_and_still_shown(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(
        shell,
        f"%%cms_event r --endpoint {emu.url}\n"
        "import sys\nprint('line one')\nprint('line two', file=sys.stderr)\n",
    )
    assert ran.error is None, ran.stderr
    assert "line one" in ran.stdout
    assert "line two" in ran.stderr
    assert emu.events() == [{"content": "line one\nline two", "name": "cms_magic"}]


def test_a_trailing_semicolon_means_send_what_was_printed(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%%cms_event r --endpoint {emu.url}\nprint('hi')\nlen('abc');")
    assert ran.error is None, ran.stderr
    assert emu.events() == [{"content": "hi", "name": "cms_magic"}]


def test_an_exception_in_the_cell_shows_its_traceback_and_sends_nothing(
    shell: InteractiveShell,
) -> None:
    ran = run(shell, "%%cms_event r --endpoint local\nx = 1\n1 / 0\n")
    assert type(ran.error) is UsageError
    assert "ZeroDivisionError" in ran.stdout  # the user's own traceback
    assert "cms_magic/ui/magic" not in ran.stdout  # without the magic's frames
    assert "the cell raised ZeroDivisionError (above); nothing was sent" in ran.stderr
    assert "r" not in shell.user_ns
