"""The panel end to end, driven without a browser: open it, send, cancel, retry, errors.

Buttons are clicked with ``Button.click()``, and background work is awaited with
``panel.wait()`` (never a sleep). Everything runs against loopback servers: the
embedded emulator and a gated server. The last test executes a notebook headless
with nbclient and checks the saved widget state.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import pytest

import cms_magic
from cms_magic import emulator
from cms_magic.errors import ConfigError, InputError, MappingError
from cms_magic.probe import ProbeResult
from cms_magic.ui.panel.panel import PUBLIC, Panel
from tests.ui.panel._support import KEY_ID, SECRET, GatedServer, frame

# ----------------------------------------------------------------- opening


def test_panel_is_exported_and_displays_as_its_vbox() -> None:
    assert "panel" in cms_magic.__all__
    panel = cms_magic.panel(frame(3), namespace={})
    assert isinstance(panel, Panel)
    assert isinstance(panel.widget, w.VBox)
    bundle = panel._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id
    assert "cms-panel" in panel.widget._dom_classes
    assert panel.result is None
    assert panel.job is None
    assert repr(panel).startswith("<cms_magic panel: target http://127.0.0.1:")


def test_panel_takes_only_a_dataframe() -> None:
    with pytest.raises(InputError, match=r"^df: must be a pandas DataFrame, got list$"):
        Panel([{"name": "x"}], namespace={})  # type: ignore[arg-type]


# ----------------------------------------------------------------- sending


def test_send_reaches_the_emulator_and_fills_the_results(local_emulator: Any) -> None:
    data = frame(250)
    panel = Panel(data, namespace={})
    panel.send_button.click()
    assert panel.job is not None
    assert panel.wait(30)
    assert panel.job.done()
    assert len(local_emulator.events()) == 250
    stored = local_emulator.events()[0]
    assert stored["name"] == "ev0"
    assert stored["groupId"] == 0
    assert panel.result is not None
    assert panel.result.ok
    # the summary is SendResult.summary's one line, and where the events went
    assert panel.result.summary("panel.result") in panel.summary.value
    assert "250/250 events accepted" in panel.summary.value
    assert "(the local emulator)" in panel.summary.value
    assert panel.results_tabs.titles == ("Requests (3)", "Events (250)", "Failed rows (0)")
    assert panel.results_tabs.layout.display == ""
    assert panel.requests_table.value.count("<td>accepted</td>") == 3  # one row per request
    assert "first 100 of 250 events" in panel.events_table.value
    assert "no failed rows" in panel.failed_table.value
    assert panel.progress.value == 250
    assert panel.progress.bar_style == "success"
    assert not panel.send_button.disabled
    assert panel.cancel_button.disabled
    assert panel.retry_button.disabled
    assert panel.last_error is None
    assert "last: 250/250 events accepted" in repr(panel)


def test_dry_run_sends_nothing(local_emulator: Any) -> None:
    panel = Panel(frame(120), namespace={})
    panel.dry_run_button.click()
    assert panel.wait(30)
    assert local_emulator.events() == []
    assert "dry run: 120/120 events would be sent" in panel.summary.value
    assert "no request was sent" in panel.requests_table.value
    assert "LTAI****Demo:&lt;signature&gt;" in panel.requests_table.value


def test_send_is_disabled_while_running_and_cancel_then_retry_finish(
    gated: GatedServer,
) -> None:
    demo = emulator.demo_credentials()
    panel = Panel(frame(1000), namespace={}, credentials_resolver=lambda: demo, region=PUBLIC)
    panel.custom_endpoint.value = gated.url
    panel.send_button.click()
    assert gated.arrived.acquire(timeout=10)  # the first request is held at the server
    assert panel.send_button.disabled
    assert panel.dry_run_button.disabled
    assert not panel.cancel_button.disabled
    with pytest.raises(ConfigError, match="a send is already running"):
        panel.send()  # from code, a second send is refused...
    # ...and from the button, the refusal shows in the panel
    panel.send_button.disabled = False
    panel.send_button.click()
    assert "not started: a send is already running" in panel.status.value
    panel.cancel_button.click()
    assert panel.cancel_button.description == "Cancelling…"
    gated.gate.set()
    assert panel.wait(30)
    result = panel.result
    assert result is not None
    assert result.cancelled
    accepted = result.accepted
    assert 0 < accepted < 1000
    # a cancel the user asked for is "cancelled", not a red failure
    assert "cancelled" in panel.summary.value
    assert "cms-bad" not in panel.summary.value
    assert "-&gt; panel.result." in panel.summary.value
    assert "■ cancelled: " in panel.status.value
    assert "cms-bad" not in panel.status.value
    assert panel.progress.bar_style == ""
    assert panel.results_tabs.selected_index == 2  # the failed rows
    assert f"Failed rows ({1000 - accepted:,})" in panel.results_tabs.titles
    assert "cms_status" in panel.failed_table.value  # the source rows, status first
    assert not panel.retry_button.disabled
    assert panel.retry_button.description == f"Retry failed ({1000 - accepted:,})"
    panel.retry_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.ok
    assert len(panel.result) == 1000
    assert gated.events == 1000
    assert "1,000/1,000 events accepted" in panel.summary.value
    assert gated.url in panel.summary.value  # the retry went where the send went
    assert panel.retry_button.disabled


def test_send_without_a_frame_or_with_a_bad_mapping_shows_the_error() -> None:
    empty = Panel(namespace={})
    empty.send_button.click()
    # the outcome is next to Send, in one line; a user error shows no traceback
    assert "✖ not started: no DataFrame" in empty.status.value
    assert "traceback" not in empty.status.value
    assert empty.error_box.layout.display == "none"  # not twice
    assert isinstance(empty.last_error, ConfigError)
    panel = Panel(frame(3), namespace={})
    panel.name_mode.value = "constant"
    panel.name_value.value = "  "
    panel.send_button.click()
    assert "not started: Name: type an event name" in panel.status.value
    assert "MappingError" not in panel.status.value
    assert panel.job is None
    assert not panel.send_button.disabled


def test_an_error_from_a_bad_mapping_names_the_controls_label(local_emulator: Any) -> None:
    alerts = pd.DataFrame(
        {
            "name": ["disk"],
            "when": pd.to_datetime(["2026-01-01 00:00"], utc=True),
            "message": ["full"],
        }
    )
    namespace: dict[str, Any] = {"alerts": alerts}
    panel = Panel(namespace=namespace)
    assert panel.time_column.value == "when"  # a datetime column is the time by default
    assert panel.content_column.value == "message"
    panel.content_mode.value = "whole row"
    # the name is rebound to a frame without that column (the example)
    namespace["alerts"] = pd.DataFrame(
        {"name": ["a"], "time": ["t"], "group_id": [1], "content": ["c"], "tz": ["UTC"]}
    )
    panel.send_button.click()
    assert isinstance(panel.last_error, MappingError)
    assert (
        "Time column &#x27;when&#x27;: no such column; columns: name, time, group_id, content, tz"
    ) in panel.status.value
    assert "time_col" not in panel.status.value  # never the Python keyword...
    assert "--" not in panel.status.value  # ...nor a flag
    assert panel.job is None
    # a template that misspells a column: named by its label, with the core's hint
    namespace["alerts"] = alerts
    panel.refresh_button.click()
    panel.content_mode.value = "template"
    panel.content_template.value = "{mesage}"
    expected = (
        "Content template &#x27;{mesage}&#x27;: refers to &#x27;mesage&#x27;, which is not a "
        "column; columns: name, when, message; did you mean &#x27;message&#x27;?"
    )
    assert expected in panel.counts.value
    panel.send_button.click()
    assert expected in panel.status.value
    assert local_emulator.events() == []


def test_retry_with_nothing_failed_says_so(local_emulator: Any) -> None:
    panel = Panel(frame(5), namespace={})
    panel.send_button.click()
    assert panel.wait(30)
    assert panel.retry_button.disabled
    assert panel.retry_note.value == ""
    panel.retry_button.disabled = False
    panel.retry_button.click()
    assert "nothing to retry" in panel.status.value


# ----------------------------------------------------------------- errors


def test_one_wrapper_shows_unexpected_errors_with_a_traceback() -> None:
    def broken_prober() -> list[ProbeResult]:
        raise RuntimeError("probe exploded")

    panel = Panel(frame(3), namespace={}, prober=broken_prober)
    panel.probe_button.click()
    assert panel.wait(10)
    assert isinstance(panel.last_error, RuntimeError)
    assert "RuntimeError</b>: probe exploded" in panel.error.value
    assert "<summary>traceback</summary>" in panel.error.value
    assert "broken_prober" in panel.error.value
    assert "the probe failed" in panel.probe_status.value
    assert not panel.probe_button.disabled


# ----------------------------------------------------------------- a notebook, headless


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this interpreter under a throw-away JUPYTER_PATH; its name."""
    spec = tmp_path / "jupyter" / "kernels" / "cms-magic-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "cms_magic test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    return "cms-magic-test"


NOTEBOOK_CELLS = [
    """\
import cms_magic
from cms_magic import emulator
df = cms_magic.sample_frame().head(300)
p = cms_magic.panel(df)
p.region.value = "cn-hangzhou"        # a real region: credentials from the environment
assert "LTAI****0042" in p.credentials_label.value
p.region.value = "local"
p.name_value.value = "incident"
p.content_mode.value = "template"
p.content_template.value = "[{severity}] {service}@{host}: {message}"
p""",
    """\
p.send_button.click()
assert p.wait(60)
print(p.result.summary())
print(len(emulator.embedded().events()))""",
]


def test_notebook_runs_headless_and_saves_results_but_no_secret(kernel_env: str) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel_env, store_widget_state=True, timeout=120
    )
    client.execute(cwd=os.getcwd())
    printed = nb.cells[1].outputs[0]["text"]
    assert "300/300 events accepted" in printed
    assert printed.split("\n")[1] == "300"
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    summaries = [
        m["state"]["value"]
        for m in state.values()
        if "cms-summary" in m["state"].get("_dom_classes", ())
    ]
    assert len(summaries) == 1
    assert "300/300 events accepted" in summaries[0]
    saved = nbformat.writes(nb)
    assert SECRET not in saved
    assert "LTAI****Demo" in saved  # the emulator's demo key, masked


# ----------------------------------------------------------------- retry and outcomes


def type_key(panel: Panel, key_id: str, secret: str) -> None:
    panel.key_id.set_state({"value": key_id})
    panel.secret.set_state({"value": secret})


def test_a_refused_secret_is_one_line_and_retry_uses_the_corrected_one(emulator: Any) -> None:
    from tests.ui.panel._support import no_credentials

    demo = cms_magic.emulator.demo_credentials()
    panel = Panel(frame(30), namespace={}, credentials_resolver=no_credentials, region=emulator.url)
    type_key(panel, demo.access_key_id, "a-wrong-secret")
    panel.send_button.click()
    assert panel.wait(30)
    result = panel.result
    assert result is not None
    assert result.counts()["not_sent"] == 30
    # the outcome next to Send: one readable line; the service's words folded in details
    status = panel.status.value
    line, _, folded = status.partition("<details")
    assert "✖ stopped: the service refused the credentials: check the AccessKey secret" in line
    assert "string to sign" not in line
    assert "string to sign" in folded
    assert "string to sign" not in panel.summary.value
    assert "0/30 events accepted" in panel.summary.value
    assert panel.error_box.layout.display == "none"  # said once, next to Send
    # bound to fail the same way: not offered, and the note says why
    assert panel.retry_button.disabled
    assert "the service refused LTAI****Demo at " + emulator.url in panel.retry_note.value
    type_key(panel, demo.access_key_id, "a-wrong-secret")  # the same pair again: no change
    assert panel.retry_button.disabled
    type_key(panel, demo.access_key_id, demo.access_key_secret.reveal())
    assert not panel.retry_button.disabled
    assert panel.retry_button.description == "Retry failed (30)"
    assert f"resends the 30 rows not sent to {emulator.url} with LTAI****Demo" in (
        panel.retry_note.value
    )
    panel.retry_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.ok
    assert len(emulator.events()) == 30
    assert "✔ done: 30/30 accepted" in panel.status.value
    assert panel.retry_button.disabled


def test_retry_goes_to_the_target_shown_now(emulator: Any) -> None:
    from cms_magic.sending.retry import RetryPolicy

    demo = cms_magic.emulator.demo_credentials()
    tls = emulator.url.replace("http://", "https://")  # the emulator speaks plain HTTP
    panel = Panel(
        frame(20),
        namespace={},
        credentials_resolver=lambda: demo,
        region=tls,
        send_options={"timeout": 0.5, "retry": RetryPolicy(max_attempts=1)},
    )
    panel.send_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.counts()["not_sent"] == 20
    assert emulator.events() == []
    assert f"not sent to {tls} with" in panel.retry_note.value
    panel.custom_endpoint.value = emulator.url  # https -> http
    assert f"not sent to {emulator.url} with" in panel.retry_note.value
    panel.retry_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.ok
    assert len(emulator.events()) == 20
    assert f"({emulator.url})" in panel.summary.value  # where the retry went


def test_rejected_rows_are_not_retried_they_would_be_rejected_again(local_emulator: Any) -> None:
    data = frame(10)
    data.loc[3, "name"] = ""  # rejected by validation
    panel = Panel(data, namespace={})
    panel.send_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.counts()["rejected"] == 1
    assert "⚠ 9/10 accepted" in panel.status.value
    assert panel.progress.bar_style == "warning"
    assert panel.retry_button.disabled  # nothing that a retry could change
    assert "1 rejected row is not retried: sent as they are, they would be rejected again" in (
        panel.retry_note.value
    )
    panel.retry_button.disabled = False
    panel.retry_button.click()
    assert "not started: 1 rejected row is not retried" in panel.status.value


def test_panel_errors_are_said_next_to_send_in_the_controls_words() -> None:
    panel = Panel(frame(3), namespace={})
    cases = [
        (panel.tz, "Asia/Shangai", "Time zone &#x27;Asia/Shangai&#x27;: unknown time zone"),
        (panel.content_template, "{mesage}", "did you mean &#x27;message&#x27;?"),
    ]
    panel.content_mode.value = "template"
    panel.content_template.value = "{message}"
    for widget, value, words in cases:
        widget.value = value
        assert words in panel.counts.value, value
        panel.send_button.click()
        assert words in panel.status.value, value
        widget.value = "{message}" if widget is panel.content_template else ""
    assert "did you mean &#x27;Asia/Shanghai&#x27;?" in html_of_tz("Asia/Shangai")
    panel.group_mode.value = "constant"
    for typed, words in (
        ("x", "Group id &#x27;x&#x27;: must be a whole number"),
        ("-5", "Group id -5: must be between 0 and"),
    ):
        panel.group_value.value = typed
        panel.send_button.click()
        assert words in panel.status.value
        assert "group_id" not in panel.status.value  # the control's label, never the keyword
    for shown in (panel.counts.value, panel.status.value):
        for keyword in ("tz=", "group_id=", "content_template", "_col"):
            assert keyword not in shown


def html_of_tz(zone: str) -> str:
    panel = Panel(frame(3), namespace={})
    panel.tz.value = zone
    return str(panel.counts.value)


def test_a_column_renamed_since_it_was_chosen_gets_a_did_you_mean() -> None:
    namespace: dict[str, Any] = {"alerts": frame(3)}
    panel = Panel(namespace=namespace)
    assert panel.content_column.value == "message"
    namespace["alerts"] = frame(3).rename(columns={"message": "messages"})
    panel.send_button.click()
    assert (
        "Content column &#x27;message&#x27;: no such column; columns: name, messages, "
        "group_id; did you mean &#x27;messages&#x27;?"
    ) in panel.status.value
