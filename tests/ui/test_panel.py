"""The widget panel, driven without a browser.

ipywidgets 8 runs without a kernel: widgets get a no-op comm. A recording comm
(the ``comm`` package's documented hook) captures every message the widgets
would send, so the tests can check a secret never leaves the kernel. Buttons
are clicked with ``Button.click()``, frontend edits arrive through
``Widget.set_state`` as they do from a browser, and background work is awaited
with ``panel.wait()`` (never a sleep).

Everything runs against loopback servers: the embedded emulator, a gated
server, and probe targets on 127.0.0.1 (names resolved by injected resolvers).
The last test executes a notebook headless with nbclient and checks the saved
widget state.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import comm
import ipywidgets as w
import pandas as pd
import pytest

import cms_magic
from cms_magic import emulator
from cms_magic.credentials.static import Credentials
from cms_magic.errors import ConfigError, CredentialsError
from cms_magic.probe import ProbeResult, probe
from cms_magic.ui.panel.panel import LOCAL, PUBLIC, Panel

SECRET = "panel-test-secret-7f3a9c1e5b"  # distinctive, so a leak is easy to spot
KEY_ID = "LTAIpanelTestKey0042"


class RecordingComm(comm.DummyComm):
    """A comm that keeps every message a widget publishes."""

    sent: ClassVar[list[str]] = []

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        **keys: Any,
    ) -> None:
        RecordingComm.sent.append(json.dumps([msg_type, data, metadata], default=str))


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    RecordingComm.sent = []
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    return RecordingComm.sent


@pytest.fixture
def local_emulator() -> emulator.EmulatorServer:
    server = emulator.embedded()
    server.reset()
    return server


def frame(n: int, marker: str = "row") -> pd.DataFrame:
    return pd.DataFrame(  # type: ignore[no-any-return]  # pandas-stubs: Any here
        {
            "name": [f"ev{i % 3}" for i in range(n)],
            "message": [f"{marker}-{i}" for i in range(n)],
            "group_id": [i % 5 for i in range(n)],
        }
    )


def no_credentials() -> Credentials:
    raise CredentialsError("no Alibaba Cloud credentials found. Looked in:\n  - nowhere (test)")


def widget_state() -> str:
    """Every widget's state as the notebook would save it."""
    return json.dumps(w.Widget.get_manager_state(drop_defaults=False), default=str)


class GatedServer(ThreadingHTTPServer):
    """Answers every upload with HTTP 200 ``code "200"``, but only once ``gate`` is set."""

    daemon_threads = True

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.events = 0
        self.lock = threading.Lock()
        self.arrived = threading.Semaphore(0)
        super().__init__(("127.0.0.1", 0), _GatedHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _GatedHandler(BaseHTTPRequestHandler):
    server: GatedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.arrived.release()
        self.server.gate.wait(10)
        with self.server.lock:
            self.server.events += len(json.loads(body))
        answer = b'{"code":"200","msg":"","requestId":"gated"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def gated() -> Iterator[GatedServer]:
    server = GatedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.gate.set()
        server.shutdown()
        server.server_close()
        thread.join()


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


def test_stable_css_classes_are_on_the_key_widgets() -> None:
    panel = Panel(frame(3), namespace={})
    expected = {
        "cms-region": panel.region,
        "cms-internal": panel.internal,
        "cms-custom-endpoint": panel.custom_endpoint,
        "cms-url": panel.url_label,
        "cms-credentials": panel.credentials_label,
        "cms-secret": panel.secret,
        "cms-frame": panel.frame_picker,
        "cms-refresh": panel.refresh_button,
        "cms-preview": panel.preview,
        "cms-counts": panel.counts,
        "cms-dry-run": panel.dry_run_button,
        "cms-send": panel.send_button,
        "cms-cancel": panel.cancel_button,
        "cms-progress": panel.progress,
        "cms-status": panel.status,
        "cms-summary": panel.summary,
        "cms-results": panel.results_tabs,
        "cms-retry": panel.retry_button,
        "cms-probe": panel.probe_button,
        "cms-region-list": panel.region_list,
        "cms-regions": panel.regions_table,
        "cms-error": panel.error,
    }
    for css, widget in expected.items():
        assert css in widget._dom_classes, css


def test_frame_picker_lists_the_namespace_frames_and_refreshes() -> None:
    first, second = frame(2), frame(4)
    namespace: dict[str, Any] = {"first": first, "second": second, "_hidden": frame(1), "n": 3}
    panel = Panel(namespace=namespace)
    assert [v for _, v in panel.frame_picker.options] == ["first", "second"]
    assert panel.frame_picker.value == "first"
    assert panel.frame_picker.label.startswith("first (2 rows × 3 columns)")
    namespace["third"] = frame(5)
    panel.refresh_button.click()
    assert [v for _, v in panel.frame_picker.options] == ["first", "second", "third"]
    assert panel.frame_picker.value == "first"  # the choice survives a refresh
    panel.frame_picker.value = "second"
    assert "<b>4</b> rows" in panel.counts.value


def test_the_frame_passed_in_is_chosen_and_named_when_the_namespace_has_it() -> None:
    mine = frame(7)
    panel = Panel(mine, namespace={"other": frame(2), "mine": mine})
    assert panel.frame_picker.value == "mine"
    anonymous = Panel(mine, namespace={"other": frame(2)})
    assert anonymous.frame_picker.label.startswith("the DataFrame passed in (7 rows")
    alone = Panel(namespace={})
    assert alone.frame_picker.options == ()
    assert "no DataFrame" in alone.counts.value


def test_without_ipython_only_the_frame_passed_in_is_listed() -> None:
    panel = Panel(frame(3))  # no namespace given, and no IPython shell in pytest
    assert [v for _, v in panel.frame_picker.options] == ["(argument)"]


# ----------------------------------------------------------------- target


def test_target_choices_resolve_the_url_and_credentials(local_emulator: Any) -> None:
    env_credentials = Credentials(KEY_ID, SECRET, source="environment")
    panel = Panel(frame(3), namespace={}, credentials_resolver=lambda: env_credentials)
    assert len(panel.region.options) == 19  # emulator, public, 17 regions
    assert panel.region.value == LOCAL
    assert local_emulator.url in panel.url_label.value
    assert "nothing leaves this machine" in panel.url_label.value
    assert "LTAI****Demo" in panel.credentials_label.value
    assert panel.internal.disabled
    panel.region.value = "cn-shanghai"
    assert not panel.internal.disabled
    assert "https://metrichub-cms-cn-hangzhou.aliyuncs.com" in panel.url_label.value
    assert "LTAI****0042" in panel.credentials_label.value
    assert "environment" in panel.credentials_label.value
    panel.internal.value = True
    assert "http://metrichub-cn-shanghai.aliyun.com" in panel.url_label.value
    panel.region.value = PUBLIC
    assert panel.internal.disabled
    panel.custom_endpoint.value = "HTTP://127.0.0.1:8080/"
    assert "http://127.0.0.1:8080" in panel.url_label.value
    assert "custom endpoint" in panel.url_label.value
    panel.custom_endpoint.value = "http://host/path"
    assert "must not have a path" in panel.url_label.value
    assert panel.last_error is None  # a bad URL is shown where it was typed
    assert SECRET not in widget_state()


def test_password_flow_reads_the_secret_and_clears_the_field(recording_comm: list[str]) -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=no_credentials, region="cn-hangzhou")
    assert panel.credentials_entry.layout.display == ""
    assert "no Alibaba Cloud credentials found" in panel.credentials_label.value
    # as a browser sends them: on Enter or blur (continuous_update=False)
    panel.key_id.set_state({"value": KEY_ID})
    assert panel.key_id.value == ""
    assert "LTAI****0042" in panel.entry_note.value
    panel.secret.set_state({"value": SECRET})
    assert panel.secret.value == ""
    assert panel.credentials_entry.layout.display == "none"
    assert "LTAI****0042" in panel.credentials_label.value
    assert "typed in" in panel.credentials_label.value
    # a dry run signs with the typed key (no request leaves: nothing is posted)
    panel.dry_run_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.preview is not None
    assert "LTAI****0042:&lt;signature&gt;" in panel.requests_table.value
    # the secret is nowhere: widget state, messages to the frontend, repr, HTML
    assert SECRET not in widget_state()
    assert not [m for m in recording_comm if SECRET in m]
    assert SECRET not in repr(panel)
    assert SECRET not in panel.summary.value + panel.requests_table.value
    # typed credentials stay in memory for the session; forgetting them asks again
    panel.forget_credentials()
    assert panel.credentials_entry.layout.display == ""


def test_secret_before_the_key_id_asks_for_the_id_and_keeps_nothing() -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=no_credentials, region="cn-beijing")
    panel.secret.set_state({"value": SECRET})
    assert panel.secret.value == ""
    assert "AccessKey id first" in panel.entry_note.value
    assert SECRET not in widget_state()
    panel.send_button.click()
    assert isinstance(panel.last_error, CredentialsError)
    assert "no credentials for this endpoint" in panel.error.value


def test_the_local_emulator_never_needs_the_password_field() -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=no_credentials)
    assert panel.credentials_entry.layout.display == "none"
    assert "demo" in panel.credentials_label.value


# ----------------------------------------------------------------- data


def test_mapping_defaults_follow_the_columns() -> None:
    panel = Panel(frame(3), namespace={})
    assert panel.name_mode.value == "column"
    assert panel.name_column.value == "name"
    assert panel.content_mode.value == "whole row"
    assert panel.group_mode.value == "column"
    assert panel.group_column.value == "group_id"
    assert panel.time_column.value == ""
    assert panel.mapping() == {"name_col": "name", "group_id_col": "group_id"}
    sample = Panel(cms_magic.sample_frame(), namespace={})
    assert sample.time_column.value == "time"
    assert sample.name_mode.value == "constant"


def test_preview_shows_events_counts_and_rejections() -> None:
    data = frame(250)
    data.loc[3, "name"] = ""
    data.loc[7, "group_id"] = -1
    panel = Panel(data, namespace={})
    counts = panel.counts.value
    assert "<b>250</b> rows → <b>248</b> events in <b>3</b> requests" in counts
    assert "<b>2</b> rejected by validation" in counts
    assert "row 3: " in counts
    assert "row 7: " in counts
    assert "&quot;name&quot;:&quot;ev0&quot;" in panel.preview.value  # JSON, escaped
    panel.content_mode.value = "template"
    panel.content_template.value = "{message} from {nowhere}"
    assert "mapping: content_template refers to &#x27;nowhere&#x27;" in panel.counts.value
    panel.content_template.value = "[{group_id}] {message}"
    assert "[0] row-0" in panel.preview.value
    panel.name_mode.value = "constant"
    panel.name_value.value = "deploy"
    panel.group_mode.value = "constant"
    panel.group_value.value = "12"
    assert panel.mapping() == {
        "name": "deploy",
        "content_template": "[{group_id}] {message}",
        "group_id": 12,
    }
    assert "&quot;groupId&quot;:12" in panel.preview.value
    panel.group_value.value = "twelve"
    assert "group id must be a whole number, got &#x27;twelve&#x27;" in panel.counts.value


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
    assert "250/250 events accepted" in panel.summary.value
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
    assert "a send is already running" in panel.error.value
    panel.cancel_button.click()
    assert panel.cancel_button.description == "Cancelling…"
    gated.gate.set()
    assert panel.wait(30)
    result = panel.result
    assert result is not None
    assert result.cancelled
    accepted = result.accepted
    assert 0 < accepted < 1000
    assert "cancelled" in panel.summary.value
    assert panel.progress.bar_style == "danger"
    assert panel.results_tabs.selected_index == 2  # the failed rows
    assert f"Failed rows ({1000 - accepted:,})" in panel.results_tabs.titles
    assert not panel.retry_button.disabled
    assert panel.retry_button.description == f"Retry failed ({1000 - accepted:,})"
    panel.retry_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.ok
    assert len(panel.result) == 1000
    assert gated.events == 1000
    assert "1,000/1,000 events accepted" in panel.summary.value
    assert panel.retry_button.disabled


def test_send_without_a_frame_or_with_a_bad_mapping_shows_the_error() -> None:
    empty = Panel(namespace={})
    empty.send_button.click()
    assert "no DataFrame" in empty.error.value
    assert "traceback" not in empty.error.value  # a user error shows no traceback
    assert empty.error_box.layout.display == ""
    empty.dismiss_button.click()
    assert empty.error_box.layout.display == "none"
    assert empty.last_error is None
    panel = Panel(frame(3), namespace={})
    panel.name_mode.value = "constant"
    panel.name_value.value = "  "
    panel.send_button.click()
    assert "MappingError" in panel.error.value
    assert panel.job is None
    assert not panel.send_button.disabled


def test_retry_with_nothing_failed_says_so(local_emulator: Any) -> None:
    panel = Panel(frame(5), namespace={})
    panel.send_button.click()
    assert panel.wait(30)
    panel.retry_button.disabled = False
    panel.retry_button.click()
    assert "nothing to retry" in panel.error.value


# ----------------------------------------------------------------- errors


def test_one_wrapper_shows_unexpected_errors_with_a_traceback() -> None:
    def broken_prober() -> list[ProbeResult]:
        raise RuntimeError("probe exploded")

    panel = Panel(frame(3), namespace={}, prober=broken_prober)
    panel.probe_button.click()
    assert panel.wait(10)
    assert isinstance(panel.last_error, RuntimeError)
    assert "RuntimeError</b>: probe exploded" in panel.error.value
    assert "<details><summary>traceback</summary>" in panel.error.value
    assert "broken_prober" in panel.error.value
    assert "the probe failed" in panel.probe_status.value
    assert not panel.probe_button.disabled


# ----------------------------------------------------------------- regions


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_regions_tab_lists_the_catalog_and_probes_only_on_click(listening: int) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed = spare.getsockname()[1]
    calls: list[int] = []

    def resolver(host: str, port: int) -> Sequence[str]:
        if host == "metrichub-cn-beijing.aliyun.com":
            return ["127.0.0.1"]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    targets = [
        (PUBLIC, "https://metrichub-cms-cn-hangzhou.aliyuncs.com"),
        ("cn-hangzhou", f"http://127.0.0.1:{closed}"),
        ("cn-beijing", f"http://metrichub-cn-beijing.aliyun.com:{listening}"),
    ]

    def prober() -> list[ProbeResult]:
        calls.append(1)
        return probe(targets, timeout=1.0, resolver=resolver)

    panel = Panel(frame(3), namespace={}, prober=prober, probe_targets=targets)
    for region in cms_magic.regions():  # type: ignore[operator]
        assert f"<code>{region.id}</code>" in panel.regions_table.value
    assert len(panel.region_list.options) == 3
    assert calls == []  # nothing is contacted before the click
    panel.probe_button.click()
    assert panel.wait(10)
    assert calls == [1]
    assert "1 of 3 endpoints reachable" in panel.probe_status.value
    labels = [value for _, value in panel.region_list.options]
    assert labels == ["cn-beijing", PUBLIC, "cn-hangzhou"]  # reachable first
    shown = [label for label, _ in panel.region_list.options]
    assert " ms  █" in shown[0]
    assert "unreachable  DNS: name not found" in shown[1]
    assert "unreachable  TCP: connection refused" in shown[2]
    assert "TCP: connection refused" in panel.probe_table.value
    assert "background:#1565c0" in panel.probe_table.value  # the latency bar
    assert panel.region.value == LOCAL  # the probe itself chose nothing
    panel.region_list.value = "cn-beijing"
    assert panel.region.value == "cn-beijing"
    assert panel.internal.value is True
    assert "http://metrichub-cn-beijing.aliyun.com" in panel.url_label.value
    panel.region_list.value = PUBLIC
    assert panel.region.value == PUBLIC


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
