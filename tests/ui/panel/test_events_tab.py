"""The panel's Events tab and Confirm button, against real emulators on loopback.

Read: the filters go to the emulator's read-back actions (histogram, first events,
count) from the Send tab's target and credentials; the chart, the table (escaped,
the first 20 rows and how many in all) and the outcome show in the tab. Confirm:
after a send the emulator answered ambiguously (connections dropped before and after
storing), the read-back says which rows it holds; Retry failed then resends exactly
the others, so the emulator ends with one copy of each row. Background work is
awaited with ``panel.wait()``; no sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
import pytest

from cms_magic.emulator import Faults, demo_credentials
from cms_magic.errors import ConfigError
from cms_magic.ui.panel.events import EventsTab, check_filters
from cms_magic.ui.panel.panel import PUBLIC, TABS, Panel
from tests.ui.panel._support import SECRET, GatedServer, env_credentials, frame, widget_state

# ----------------------------------------------------------------- the tab and its filters


def test_the_events_tab_is_the_third_and_reads_from_the_send_tabs_target() -> None:
    panel = Panel(frame(3), namespace={}, tab="events")
    assert TABS == ("send", "regions", "events")
    assert panel.tabs.titles == ("Send", "Regions", "Events")
    assert panel.tabs.selected_index == 2
    assert panel.tabs.children[2] is panel.events_tab.page
    source = panel.events_tab.source.value
    assert "Reads from: <b>the local emulator</b>" in source
    assert "LTAI****Demo" in source
    assert panel.events_tab.since.value == "1h"
    assert panel.events_tab.name.description == "Name"  # the options table's labels
    assert panel.events_tab.since.description == "Since"
    # a target that names no region cannot be read back: said where it reads from
    panel.region.value = PUBLIC
    assert "the CloudMonitor OpenAPI is regional" in panel.events_tab.source.value
    panel.custom_endpoint.value = "ftp://127.0.0.1/x"  # a target in error: its words
    assert "the Send tab&#x27;s target: Custom URL" in panel.events_tab.source.value
    assert panel.last_error is None


def test_relative_times_are_fixed_against_the_clock_when_read_is_pressed() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc).timestamp()
    filters = check_filters(" app ", " 7 ", "2h", "30m", "  ", clock=lambda: now)
    assert (filters.name, filters.group_id, filters.search) == ("app", 7, None)
    assert filters.since == datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    assert filters.until == datetime(2026, 12, 1, 11, 30, tzinfo=timezone.utc)
    assert filters.window() == "2026-12-01 10:00:00 to 2026-12-01 11:30:00 UTC"
    assert check_filters("", "", "", "", "").window() == "the beginning to now UTC"
    tab = EventsTab(clock=lambda: now)
    tab.since.value = "2026-11-20T00:00+08:00"
    assert tab.filters().since == datetime(2026, 11, 19, 16, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("field", "typed", "said"),
    [
        ("since", "1y", "Since '1y': must be a datetime, an ISO 8601 time, or a time before now"),
        ("until", "yesterday", "Until 'yesterday': must be a datetime"),
        ("group_id", "web", "Group id 'web': must be an integer >= 0"),
        ("since", "1m", "Since '1m': is after until='2h'"),
    ],
)
def test_a_mistyped_field_is_said_next_to_read_in_its_label(
    field: str, typed: str, said: str
) -> None:
    panel = Panel(frame(3), namespace={}, tab="events")
    tab = panel.events_tab
    if typed == "1m":
        tab.until.value = "2h"
    getattr(tab, field).value = typed
    panel.read_button.click()
    assert panel.wait(10)
    assert escape(said) in tab.status.value
    assert "✖ not read" in tab.status.value
    assert panel.events_read is None
    assert not tab.read_button.disabled  # nothing started
    assert panel.error_box.layout.display == "none"  # said in the tab, not below it


def test_read_from_public_says_the_openapi_is_regional() -> None:
    panel = Panel(frame(3), namespace={}, region=PUBLIC, credentials_resolver=env_credentials)
    panel.read_events()
    assert "the CloudMonitor OpenAPI is regional" in panel.events_tab.status.value


# ----------------------------------------------------------------- reading the local emulator


def _revealed(value: object) -> str:
    reveal = getattr(value, "reveal", None)
    return str(reveal() if reveal is not None else value)


def _incidents() -> pd.DataFrame:
    rows = 45
    return pd.DataFrame(  # type: ignore[no-any-return]  # pandas-stubs: Any here
        {
            "name": ["incident"] * rows + ["other"] * 5,
            "message": [f"<b>disk</b> & 推荐引擎 {i}" for i in range(rows)]
            + [f"other {i}" for i in range(5)],
            "group_id": [7 if i % 3 == 0 else 8 for i in range(rows)] + [7] * 5,
        }
    )


def _sent(panel: Panel) -> None:
    panel.content_mode.value = "column"
    panel.content_column.value = "message"
    panel.send()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.ok, panel.result.summary()


def test_read_shows_a_chart_the_first_20_events_escaped_and_how_many(local_emulator: Any) -> None:
    panel = Panel(_incidents(), namespace={})
    _sent(panel)
    tab = panel.events_tab
    tab.name.value = "incident"
    panel.read_button.click()
    assert panel.wait(30)
    read = panel.events_read
    assert read is not None, tab.status.value
    assert read.total == 45
    assert int(read.histogram["count"].sum()) == 45
    assert len(read.events) == 20
    assert set(read.events["name"]) == {"incident"}
    assert "✔ 45 events from" in tab.status.value
    assert "the first 20 below" in tab.status.value
    assert "(the local emulator)" in tab.status.value
    # the chart: an inline SVG, one bar per bucket
    assert tab.chart.value.count("<svg") == 1
    assert tab.chart.value.count('class="bar"') == len(read.histogram)
    # the table: the first 20 rows, escaped, and how many in all
    assert "first 20 of 45 events" in tab.table.value
    assert tab.table.value.count("</tr>") == 21  # the header and 20 rows
    assert "&lt;b&gt;disk&lt;/b&gt; &amp; 推荐引擎" in tab.table.value
    assert "<b>disk</b>" not in tab.table.value
    assert not tab.read_button.disabled


def test_group_and_search_narrow_the_read(local_emulator: Any) -> None:
    panel = Panel(_incidents(), namespace={})
    _sent(panel)
    tab = panel.events_tab
    tab.group_id.value = "7"
    tab.search.value = "推荐引擎"
    panel.read_events()
    assert panel.wait(30)
    read = panel.events_read
    assert read is not None, tab.status.value
    assert read.total == 15  # group 7 holds 15 incidents and 5 others without the word
    assert set(read.events["group_id"]) == {7}
    assert "all 15 events" in tab.table.value
    tab.name.value = "nothing-like-this"
    panel.read_events()
    assert panel.wait(30)
    assert panel.events_read is not None
    assert panel.events_read.total == 0
    assert "✔ 0 events" in tab.status.value
    assert "no events match" in tab.table.value
    assert int(panel.events_read.histogram["count"].sum()) == 0
    assert tab.chart.value.count("<svg") == 1


# ----------------------------------------------------------------- a refused read


class _Forbidding(ThreadingHTTPServer):
    """Answers every OpenAPI call as CloudMonitor does when RAM denies the action."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ForbiddingHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ForbiddingHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps(
            {
                "Code": "Forbidden.RAM",
                "Message": "User not authorized to operate on the specified resource.",
                "RequestId": "FORBID-1",
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def forbidding() -> Iterator[_Forbidding]:
    server = _Forbidding()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_denied_read_names_the_missing_ram_action_and_no_secret(
    forbidding: _Forbidding, recording_comm: list[str]
) -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=env_credentials)
    panel.custom_endpoint.value = forbidding.url
    assert "LTAI****0042" in panel.events_tab.source.value
    panel.read_button.click()
    assert panel.wait(30)
    status = panel.events_tab.status.value
    assert "✖ not read: missing RAM permission cms:DescribeCustomEventHistogram" in status
    assert "grant the RAM action cms:DescribeCustomEventHistogram" in status
    assert panel.events_read is None
    assert not panel.events_tab.read_button.disabled
    assert SECRET not in widget_state()
    assert not [m for m in recording_comm if SECRET in m]


# ----------------------------------------------------------------- Confirm


@pytest.fixture
def ambiguous(make_emulator: Callable[..., Any]) -> Any:
    """An emulator that drops about a third of the connections before storing a request and
    a third after (its events ARE stored): those rows end ``unknown``."""
    return make_emulator(faults=Faults(seed=3, reset_before=0.3, reset_after=0.3))


def test_confirm_reads_back_unknown_rows_then_retry_resends_only_the_not_stored(
    ambiguous: Any, recording_comm: list[str]
) -> None:
    rows = 60
    data = pd.DataFrame({"name": ["conf"] * rows, "message": [f"row {i}" for i in range(rows)]})
    panel = Panel(
        data,
        namespace={},
        credentials_resolver=demo_credentials,
        send_options={"max_events": 10, "concurrency": 1},
        confirm_options={"wait": 5, "poll": 0.05, "lag": 0.3},
    )
    panel.custom_endpoint.value = ambiguous.url
    panel.content_mode.value = "column"
    panel.content_column.value = "message"
    assert panel.confirm_row.layout.display == "none"  # no result: nothing to confirm
    panel.send()
    assert panel.wait(30)
    sent = panel.result
    assert sent is not None
    unknown = sent.counts()["unknown"]
    assert unknown, sent.summary()
    stored_then = len(ambiguous.events())
    assert sent.counts()["accepted"] < stored_then  # some unknown rows did arrive
    assert stored_then < rows  # and some did not
    # Confirm is offered for the unknown rows; Retry failed is not (nothing is not_sent)
    assert panel.confirm_row.layout.display == ""
    assert panel.confirm_button.description == f"Confirm ({unknown:,})"
    assert not panel.confirm_button.disabled
    assert "may or may not have arrived" in panel.confirm_note.value
    assert panel.retry_button.disabled

    ambiguous.emulator.set_faults(Faults())  # the service is healthy again
    panel.confirm_button.click()
    assert panel.wait(30)
    confirmed = panel.result
    assert confirmed is not None
    assert confirmed is not sent
    counts = confirmed.counts()
    assert counts["unknown"] == 0, confirmed.summary()
    assert counts["accepted"] == stored_then  # what the emulator holds, confirmed
    not_stored = rows - stored_then
    assert counts["not_sent"] == not_stored
    # the new counts: next to Send, in the summary and next to Confirm
    assert f"{stored_then}/{rows} events accepted" in panel.summary.value
    note = panel.confirm_note.value
    assert f"read back {unknown} rows" in note
    assert f"{not_stored} not stored: Retry failed resends them" in note
    assert panel.confirm_button.disabled  # nothing left to confirm
    assert panel.confirm_row.layout.display == ""  # the outcome stays in view
    assert panel.retry_button.description == f"Retry failed ({not_stored})"
    assert not panel.send_button.disabled

    panel.retry_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.ok, panel.result.summary()
    held = [event["content"] for event in ambiguous.events()]
    assert sorted(held) == sorted(data["message"])  # exactly one copy of each row
    assert panel.confirm_row.layout.display == "none"
    assert not [m for m in recording_comm if "panel-test-secret" in m]


def test_confirm_is_refused_without_unknown_rows(local_emulator: Any) -> None:
    panel = Panel(frame(5), namespace={})
    panel.send()
    assert panel.wait(30)
    panel.confirm_button.click()  # disabled in the page; a script may still call it
    assert "nothing to confirm" in panel.status.value


def test_read_with_refreshing_credentials_from_a_credentials_uri(
    make_emulator: Callable[..., Any], recording_comm: list[str]
) -> None:
    from cms_magic.credentials.refreshing import RefreshingCredentials
    from cms_magic.credentials.sources import credentials_uri

    server = make_emulator(sts_lifetime=900)
    source = RefreshingCredentials(credentials_uri(server.credentials_uri), source="test URI")
    panel = Panel(_incidents(), namespace={}, credentials_resolver=lambda: source)
    panel.custom_endpoint.value = server.url
    _sent(panel)
    panel.events_tab.name.value = "other"
    panel.read_events()
    assert panel.wait(30)
    read = panel.events_read
    assert read is not None, panel.events_tab.status.value
    assert read.total == 5
    assert sorted(read.events["content"]) == [f"other {i}" for i in range(5)]
    minted = server.minted
    assert minted.credentials_uri >= 1
    secrets = [_revealed(t.access_key_secret) for t in minted.credentials]
    secrets += [_revealed(t.security_token) for t in minted.credentials]
    state = widget_state()
    assert secrets
    assert not [s for s in secrets if s in state]
    assert not [m for m in recording_comm for s in secrets if s in m]


def test_a_denied_confirm_leaves_the_rows_unknown_and_names_the_ram_action(
    make_emulator: Callable[..., Any], forbidding: _Forbidding
) -> None:
    from cms_magic.confirm import readback_lookup

    server = make_emulator(faults=Faults(reset_after=1.0))  # stored, never answered
    panel = Panel(
        frame(12),
        namespace={},
        credentials_resolver=demo_credentials,
        # the read-back goes to a service that denies it (the send went to the emulator)
        confirm_options={
            "wait": 1,
            "poll": 0.05,
            "lag": 0.1,
            "lookup": readback_lookup(forbidding.url, demo_credentials()),
        },
    )
    panel.custom_endpoint.value = server.url
    panel.send()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.counts()["unknown"] == 12
    panel.confirm()
    assert panel.wait(30)
    assert panel.result.counts()["unknown"] == 12
    note = panel.confirm_note.value
    assert "0 stored (accepted)" in note
    assert "12 still unknown" in note
    assert "missing RAM permission cms:DescribeCustomEventAttribute" in note
    assert not panel.confirm_button.disabled  # it may be tried again
    assert panel.retry_button.disabled  # nothing is known not stored


def test_read_runs_off_the_kernels_thread(gated: GatedServer) -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=env_credentials)
    panel.custom_endpoint.value = gated.url  # holds every answer until the gate opens
    tab = panel.events_tab
    panel.read_button.click()
    assert gated.arrived.acquire(timeout=10)  # the first call is in flight...
    assert tab.reading  # ...and the kernel's thread is free
    assert tab.read_button.disabled
    assert "reading " in tab.status.value
    with pytest.raises(ConfigError, match=r"^a read is already running: wait for it$"):
        panel.read_events()  # a second Read while one runs (a script: the button is disabled)
    assert "reading " in tab.status.value
    gated.gate.set()  # the gated server answers as an upload endpoint: not an OpenAPI answer
    assert panel.wait(30)
    assert not panel.events_tab.reading  # (another expression: mypy narrowed tab.reading)
    assert not tab.read_button.disabled
    assert "✖ not read: DescribeCustomEventHistogram" in tab.status.value
    assert panel.events_read is None
