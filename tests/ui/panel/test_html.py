"""What the panel shows, as pure functions of data: escaped, and in the core's words."""

from __future__ import annotations

import pandas as pd

from cms_magic.credentials.static import Credentials
from cms_magic.errors import MappingError
from cms_magic.targets import parse_target
from cms_magic.ui.panel import html


def test_a_table_is_escaped_and_says_how_many_rows_it_shows() -> None:
    rows = pd.DataFrame({"message": ["<script>alert(1)</script>"] * 3})
    shown = html.table(rows, "events", limit=2)
    assert "<script>" not in shown
    assert "&lt;script&gt;" in shown
    assert "first 2 of 3 events" in shown
    assert html.table(rows.iloc[:0], "failed rows") == '<div class="cms-muted">no failed rows</div>'


def test_an_error_names_the_controls_label_and_shows_a_traceback_only_for_a_bug() -> None:
    mistake = MappingError("no such column", option="time_col", value="when", hint="columns: t")
    shown = html.error(mistake)
    assert ">Time column &#x27;when&#x27;: no such column; columns: t</div>" in shown
    assert "time_col" not in shown  # never the Python keyword...
    assert "MappingError" not in shown  # ...nor a class name
    assert "traceback" not in shown
    assert "<details" not in shown  # one line says it all
    try:
        raise RuntimeError("<boom>")
    except RuntimeError as exc:
        bug = html.error(exc)
    assert "<b>RuntimeError</b>: &lt;boom&gt;" in bug
    assert "<summary>traceback</summary>" in bug


def test_the_target_line_names_the_target_and_where_events_go() -> None:
    region = parse_target("cn-hangzhou")
    line = html.target_line(region, str(region.url))
    assert line.count("https://metrichub-cms-cn-hangzhou.aliyuncs.com") == 1  # in the label
    assert "Alibaba Cloud: events leave this machine" in line
    url = parse_target("http://127.0.0.1:9")
    assert "<b>http://127.0.0.1:9</b>" in html.target_line(url, "http://127.0.0.1:9")


def test_credentials_show_masked_and_never_the_secret() -> None:
    credentials = Credentials("LTAIhtmlTestKey0042", "the-secret", "tok", source="<env>")
    line = html.credentials_line(credentials, "a note")
    assert "LTAI****0042" in line
    assert ", STS token" in line
    assert "from &lt;env&gt;" in line
    assert "the-secret" not in line
    assert "tok" not in line.replace("STS token", "")
