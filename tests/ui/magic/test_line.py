"""The magic line as a user writes it: ``$name`` expansion, an empty ``%%cms_event`` cell,
``%cms panel NAME``, ``%cms last`` during a background send, near-miss column names."""

from __future__ import annotations

import shlex
import socket
import threading
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cms_magic import SendJob, emulator, last_result
from cms_magic.ui.magic.arguments import split_line
from tests.ui.magic.support import assert_usage_error, run

# ---------------------------------------------------------------------- $name expansion

SHLEX_LINES = [
    "a b  c",
    "--t '{host}: {m}'",
    '--t "a \\"b\\" c\\\\d \\x"',
    "C:\\\\x a\\ b",
    "''",
    "x '' y",
    '--name "x y"',
    "a'b'c\"d\"e",
    "--t 'it''s'",
]


@pytest.mark.parametrize("line", SHLEX_LINES)
def test_without_a_dollar_the_line_splits_as_shlex_does(line: str) -> None:
    assert split_line(line, {"x": "never used"}) == shlex.split(line)
    assert split_line(line) == shlex.split(line)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("--name $EVENT", ["--name", "deploy done"]),  # a value is one word, spaces and all
        ("--name ${EVENT}_x", ["--name", "deploy done_x"]),
        ("--name $EVENT_x", None),  # the name is EVENT_x: unknown
        ("--group-id $gid", ["--group-id", "12"]),
        ('--t "$host: {content}"', ["--t", "h1: {content}"]),  # braces untouched
        ("--t '$host {content}'", ["--t", "$host {content}"]),  # single quotes: literal
        ("--t cost$$5", ["--t", "cost$5"]),
        ('--t "\\$host"', ["--t", "$host"]),
        ("--t $ --u $5", ["--t", "$", "--u", "$5"]),  # a $ before no name stays
        ("--t $path", ["--t", "/tmp/out"]),
    ],
)
def test_dollar_names_expand_from_the_namespace(line: str, words: list[str] | None) -> None:
    from pathlib import Path

    namespace = {"EVENT": "deploy done", "gid": 12, "host": "h1", "path": Path("/tmp/out")}
    if words is None:
        with pytest.raises(UsageError, match=r"\$EVENT_x: no variable 'EVENT_x'"):
            split_line(line, namespace)
    else:
        assert split_line(line, namespace) == words


def test_expansion_in_a_cell_sends_the_value(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "EVENT = 'deploy'\nhost = 'h1'")
    ran = run(
        shell,
        f'%cms_event r --df df --name $EVENT --content-template "$host: {{kind}} $$1" '
        f"--endpoint {emu.url}",
    )
    assert ran.error is None, ran.stderr
    assert [(e["name"], e["content"]) for e in emu.events()] == [
        ("deploy", "h1: a $1"),
        ("deploy", "h1: b $1"),
    ]


def test_an_unknown_or_unfit_variable_is_one_line_naming_it(shell: InteractiveShell) -> None:
    assert_usage_error(
        run(shell, "%cms_event r --df df --name $EVENT --endpoint local"),
        "$EVENT: no variable 'EVENT'",
        "$$",
    )
    assert_usage_error(
        run(shell, "%cms_event r --df $df --name n --endpoint local"),
        "$df is a DataFrame",
        "--df df",
    )
    assert_usage_error(run(shell, "%cms panel $nothing"), "$nothing: no variable")
    assert emulator.embedded_running() is None or not emulator.embedded_running().events()  # type: ignore[union-attr]


def test_a_secret_in_a_variable_is_refused_once_expanded(shell: InteractiveShell) -> None:
    run(shell, "key = 'LTAI5tAbCdEfGhIjKlMn'\nsk = 'Ab3dEf7hIj1lMn0pQr5tUv9xYz2bCd'")
    for line in ("%cms_event r --df df --name $key", "%cms whoami ${sk}"):
        message = assert_usage_error(
            run(shell, line), "refuses credentials", "once its $variables are expanded"
        )
        assert "LTAI5tAbCdEfGhIjKlMn" not in message
        assert "Ab3dEf7hIj1lMn0pQr5tUv9xYz2bCd" not in message


# ---------------------------------------------------------------------- an empty cell


def test_an_empty_cell_with_df_is_the_line_magic(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    for cell in (
        f"%%cms_event r --df df --name n --endpoint {emu.url}",
        f"%%cms_event r2 --df df --name n --endpoint {emu.url}\n",
        f"%%cms_event r3 --df df --name n --endpoint {emu.url}\n\n   \n",
    ):
        ran = run(shell, cell)
        assert ran.error is None, ran.stderr
    assert all(shell.user_ns[name].ok for name in ("r", "r2", "r3"))
    assert len(emu.events()) == 6
    # a comment-only body still goes the cell's way, and help still works
    assert run(shell, f"%%cms_event r4 --df df --name n --endpoint {emu.url}\n# rows").error is None
    assert "--content-template" in run(shell, "%%cms_event?").stdout


def test_a_terminal_still_waits_for_the_cells_body(shell: InteractiveShell) -> None:
    """The rewrite applies to a cell run, not to IPython's "is this input complete?"."""
    assert shell.check_complete("%%cms_event --df df\n")[0] == "incomplete"
    assert shell.check_complete("%%cms_event --df df\nprint(1)\n\n")[0] == "complete"


def test_unloading_removes_the_empty_cell_rewrite(shell: InteractiveShell) -> None:
    from cms_magic.ui.magic.magics import empty_cell_as_line

    assert empty_cell_as_line in shell.input_transformers_cleanup
    run(shell, "%load_ext cms_magic")
    assert shell.input_transformers_cleanup.count(empty_cell_as_line) == 1
    run(shell, "%unload_ext cms_magic")
    assert empty_cell_as_line not in shell.input_transformers_cleanup
    run(shell, "%load_ext cms_magic")


# ---------------------------------------------------------------------- %cms panel NAME


def test_cms_panel_opens_on_the_named_frame(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The magic's side: ``%cms panel NAME`` calls ``panel(the frame)``, ``%cms panel``
    ``panel()`` (the panel itself is tested in tests/ui/panel)."""
    from cms_magic.ui.panel import panel as panel_module

    calls: list[tuple[Any, ...]] = []

    def fake_panel(*args: Any) -> str:
        calls.append(args)
        return "the panel"

    monkeypatch.setattr(panel_module, "panel", fake_panel)
    run(shell, "other = pd.DataFrame({'message': ['x']})")
    assert run(shell, "%cms panel").value == "the panel"
    for line in ("%cms panel other", "%cms panel --df other"):
        ran = run(shell, line)
        assert ran.error is None, ran.stderr
        assert ran.value == "the panel"
    assert calls[0] == ()
    assert [args[0] is shell.user_ns["other"] for args in calls[1:]] == [True, True]
    assert_usage_error(
        run(shell, "%cms panel nope"),
        "%cms panel nope: no such variable, not a DataFrame",
        "DataFrames here: df, other",
    )
    assert_usage_error(run(shell, "%cms panel df df"), "%cms panel [NAME]")
    assert len(calls) == 3


# ---------------------------------------------------------------------- %cms last


def test_cms_last_during_a_background_send_gives_its_job(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    from cms_magic.sending import jobs

    if not hasattr(jobs, "running_jobs"):
        pytest.skip("the core has no running_jobs() yet (reported)")
    first = run(shell, f"%cms_event done --df df --name n --endpoint {emu.url}")
    assert first.error is None, first.stderr
    gate = threading.Event()
    with socket.socket() as listener:  # a server that holds the request until the gate opens
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def hold() -> None:
            connection, _ = listener.accept()
            with connection:
                gate.wait(10)

        threading.Thread(target=hold, daemon=True).start()
        run(shell, "%config CmsMagic.max_retries = 0")
        try:
            ran = run(
                shell,
                f"%cms_event job --df df --name n --background --endpoint http://127.0.0.1:{port}",
            )
            assert ran.error is None, ran.stderr
            job = shell.user_ns["job"]
            last = run(shell, "%cms last")
            assert last.value is job
            assert isinstance(last.value, SendJob)
            assert "a send is still running" in last.stdout
            assert ".wait()" in last.stdout
        finally:
            gate.set()
        assert job.wait(10)
    assert run(shell, "%cms last").value is last_result() is job.result()


# ---------------------------------------------------------------------- near misses


def test_a_near_miss_column_gets_did_you_mean_in_flags(shell: InteractiveShell) -> None:
    run(shell, "frame = pd.DataFrame({'message': ['x'], 'kind': ['a']})")
    message = assert_usage_error(
        run(shell, "%cms_event r --df frame --content-col mesage --name n --endpoint local")
    )
    assert message == (
        "UsageError: --content-col 'mesage': no such column; columns: message, kind; "
        "did you mean 'message'?"
    )
