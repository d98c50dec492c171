"""The panel's widgets: stable CSS classes, labels from the options table, the mapping
they describe, and the live preview."""

from __future__ import annotations

import pytest

import cms_magic
from cms_magic.errors import MappingError
from cms_magic.ui.options import option
from cms_magic.ui.panel.panel import Panel
from tests.ui.panel._support import frame


def test_stable_css_classes_are_on_the_key_widgets() -> None:
    panel = Panel(frame(3), namespace={})
    expected = {
        "cms-region": panel.region,
        "cms-internal": panel.internal,
        "cms-custom-endpoint": panel.custom_endpoint,
        "cms-url": panel.url_label,
        "cms-credentials": panel.credentials_label,
        "cms-credentials-entry": panel.credentials_entry,
        "cms-key-id": panel.key_id,
        "cms-secret": panel.secret,
        "cms-frame": panel.frame_picker,
        "cms-refresh": panel.refresh_button,
        "cms-name-mode": panel.name_mode,
        "cms-name": panel.name_value,
        "cms-name-col": panel.name_column,
        "cms-content-mode": panel.content_mode,
        "cms-content-col": panel.content_column,
        "cms-content-template": panel.content_template,
        "cms-group-mode": panel.group_mode,
        "cms-group-id": panel.group_value,
        "cms-group-col": panel.group_column,
        "cms-time-col": panel.time_column,
        "cms-tz": panel.tz,
        "cms-preview": panel.preview,
        "cms-counts": panel.counts,
        "cms-dry-run": panel.dry_run_button,
        "cms-send": panel.send_button,
        "cms-cancel": panel.cancel_button,
        "cms-progress": panel.progress,
        "cms-status": panel.status,
        "cms-summary": panel.summary,
        "cms-results": panel.results_tabs,
        "cms-requests": panel.requests_table,
        "cms-events": panel.events_table,
        "cms-failed": panel.failed_table,
        "cms-retry": panel.retry_button,
        "cms-probe": panel.probe_button,
        "cms-probe-status": panel.probe_status,
        "cms-probe-results": panel.probe_table,
        "cms-region-list": panel.region_list,
        "cms-regions": panel.regions_table,
        "cms-error": panel.error,
        "cms-dismiss": panel.dismiss_button,
        "cms-tabs": panel.tabs,
        "cms-panel": panel.widget,
    }
    for css, widget in expected.items():
        assert css in widget._dom_classes, css


def test_labels_and_tooltips_come_from_the_options_table() -> None:
    panel = Panel(frame(3), namespace={})
    assert panel.region.description == option("region").label
    assert panel.custom_endpoint.description == option("endpoint").label == "Custom URL"
    assert panel.custom_endpoint.tooltip == option("endpoint").help
    assert panel.time_column.description == option("time_col").label
    assert panel.tz.description == option("tz").label
    assert panel.tz.tooltip == option("tz").help
    for widget, name in (
        (panel.name_value, "name"),
        (panel.name_column, "name_col"),
        (panel.content_column, "content_col"),
        (panel.content_template, "content_template"),
        (panel.group_value, "group_id"),
        (panel.group_column, "group_id_col"),
        (panel.time_column, "time_col"),
    ):
        assert widget.tooltip == option(name).help, name


def test_mapping_defaults_follow_the_columns() -> None:
    panel = Panel(frame(3), namespace={})
    assert panel.name_mode.value == "column"
    assert panel.name_column.value == "name"
    assert panel.content_mode.value == "column"  # a message-like column is the content
    assert panel.content_column.value == "message"
    assert panel.group_mode.value == "column"
    assert panel.group_column.value == "group_id"
    assert panel.time_column.value == ""
    assert panel.mapping() == {
        "name_col": "name",
        "content_col": "message",
        "group_id_col": "group_id",
    }
    sample = Panel(cms_magic.sample_frame(), namespace={})
    assert sample.time_column.value == "time"
    assert sample.name_mode.value == "constant"


def test_an_unfilled_control_is_named_by_its_label() -> None:
    panel = Panel(frame(3), namespace={})
    panel.name_mode.value = "constant"
    panel.name_value.value = "  "
    with pytest.raises(MappingError) as raised:
        panel.mapping()
    assert raised.value.option == "name"
    assert "Name: type an event name" in panel.counts.value
    panel.name_value.value = "deploy"
    panel.content_mode.value = "template"
    panel.content_template.value = " "
    assert "Content template: type a template such as" in panel.counts.value
    panel.content_template.value = "{message}"
    panel.group_mode.value = "constant"
    panel.group_value.value = "twelve"
    assert "Group id &#x27;twelve&#x27;: must be a whole number" in panel.counts.value
    empty = Panel(frame(0).drop(columns=["name", "message", "group_id"]), namespace={})
    empty.content_mode.value = "column"
    assert "Content column: choose a column" in empty.counts.value


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
    assert (
        "Content template &#x27;{message} from {nowhere}&#x27;: refers to &#x27;nowhere&#x27;"
        in (panel.counts.value)
    )
    assert panel.preview.value == ""
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


def test_a_large_frame_is_counted_whole_off_the_kernels_thread() -> None:
    panel = Panel(frame(50_001), namespace={})
    assert "counting events and requests" in panel.counts.value
    assert "first 3 events" in panel.preview.value
    assert panel.wait(60)
    assert "<b>50,001</b> rows → <b>50,001</b> events in <b>501</b> requests" in panel.counts.value
    assert "about 25 s at 20 requests/s" in panel.counts.value


def test_columns_that_are_not_strings_keep_their_labels(local_emulator: object) -> None:
    import io

    import pandas as pd

    data = pd.read_csv(io.StringIO("disk,full on /var,3\ncpu,hot,4\n"), header=None)
    panel = Panel(data, namespace={})
    assert [label for label, _ in panel.content_column.options] == ["0", "1", "2"]
    panel.content_mode.value = "column"
    panel.content_column.value = 1  # the real label, an int
    panel.group_mode.value = "column"
    panel.group_column.value = 2
    assert panel.mapping() == {"name": "custom_event", "content_col": 1, "group_id_col": 2}
    assert "0</b> rejected by validation" in panel.counts.value
    assert "full on /var" in panel.preview.value
    panel.send_button.click()
    assert panel.wait(30)
    assert panel.result is not None
    assert panel.result.ok, panel.status.value
    stored = local_emulator.events()  # type: ignore[attr-defined]
    assert [(e["content"], e["groupId"]) for e in stored] == [("full on /var", 3), ("hot", 4)]


def test_an_int_label_and_its_text_are_two_columns() -> None:
    import pandas as pd

    data = pd.DataFrame([["from int", "from str"]], columns=pd.Index([1, "1"], dtype=object))
    panel = Panel(data, namespace={})
    panel.content_mode.value = "column"
    panel.content_column.value = 1
    assert "from int" in panel.preview.value
    panel.content_column.value = "1"
    assert "from str" in panel.preview.value


@pytest.mark.parametrize("column", ["message", "Message", "msg", "TEXT", "description", "summary"])
def test_a_message_like_column_is_the_content(column: str) -> None:
    import pandas as pd

    data = pd.DataFrame({"name": ["a"], "host": ["h1"], column: ["disk full"]})
    panel = Panel(data, namespace={})
    assert panel.content_mode.value == "column"
    assert panel.content_column.value == column
    assert panel.mapping()["content_col"] == column
    assert "&quot;content&quot;:&quot;disk full&quot;" in panel.preview.value


def test_without_a_message_like_column_the_content_is_the_whole_row_and_a_choice_stays() -> None:
    import pandas as pd

    namespace = {"plain": pd.DataFrame({"name": ["a"], "host": ["h1"]})}
    panel = Panel(namespace=namespace)
    assert panel.content_mode.value == "whole row"
    namespace["plain"] = frame(3)  # rebound to a frame with a message column
    panel.refresh_button.click()
    assert panel.content_mode.value == "column"  # the panel's own default follows the frame
    panel.content_mode.value = "whole row"  # the user's choice...
    panel.refresh_button.click()
    assert panel.content_mode.value == "whole row"  # ...stays


def test_repeated_column_labels_are_said_in_the_controls_words() -> None:
    import pandas as pd

    data = pd.DataFrame([["disk", 2, 3]], columns=["name", "a", "a"])
    panel = Panel(data, namespace={})
    assert panel.last_error is None  # no traceback for a frame whose labels repeat
    assert (
        "Content column: not given, so the content is the whole row as JSON, whose keys must "
        "be unique; the frame&#x27;s column labels repeat &#x27;a&#x27;; rename the columns, "
        "or give Content column or Content template"
    ) in panel.counts.value
    assert "content_col" not in panel.counts.value
