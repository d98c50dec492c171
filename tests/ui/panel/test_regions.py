"""Where the panel sends: the target controls mean what ``parse_target`` says, and the
Regions tab probes only on a click (loopback targets, names resolved by an injected
resolver)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import pytest

import cms_magic
from cms_magic.errors import ConfigError, TargetError, UnknownRegionError
from cms_magic.probe import ProbeResult, probe
from cms_magic.ui.panel.panel import LOCAL, PUBLIC, Panel
from cms_magic.ui.panel.regions import chosen_target, initial_choice, probe_choice
from tests.ui.panel._support import (
    SECRET,
    env_credentials,
    frame,
    no_credentials,
    widget_state,
)

HANGZHOU_PUBLIC = "https://metrichub-cms-cn-hangzhou.aliyuncs.com"


# ----------------------------------------------------------------- what the controls mean


def test_chosen_target_reads_the_custom_url_first_and_internal_only_for_a_region_id() -> None:
    local = chosen_target(LOCAL, "", internal=True)  # a stale toggle does not apply
    assert local.target.is_local
    assert local.internal_applies is False
    region = chosen_target("cn-shanghai", "", internal=True)
    assert region.target.url == "http://metrichub-cn-shanghai.aliyun.com"
    assert region.internal_applies is True
    typed = chosen_target(LOCAL, " CN-Hangzhou ", internal=False)
    assert (typed.target.kind, typed.target.region, typed.internal_applies) == (
        "region",
        "cn-hangzhou",
        True,
    )
    url = chosen_target("cn-shanghai", "http://127.0.0.1:9", internal=True)
    assert (url.target.kind, url.target.url, url.internal_applies) == (
        "url",
        "http://127.0.0.1:9",
        False,
    )
    with pytest.raises(TargetError) as raised:
        chosen_target(LOCAL, "not a url", internal=False)
    assert raised.value.option == "endpoint"  # the custom URL field, worded by its label


def test_initial_region_goes_to_the_dropdown_or_the_custom_url() -> None:
    assert initial_choice("LOCAL") == (LOCAL, False, "")
    assert initial_choice("public") == (PUBLIC, False, "")
    assert initial_choice("cn-beijing") == ("cn-beijing", False, "")
    assert initial_choice("http://metrichub-cn-beijing.aliyun.com") == ("cn-beijing", True, "")
    assert initial_choice("http://127.0.0.1:9/") == (LOCAL, False, "http://127.0.0.1:9")
    with pytest.raises(UnknownRegionError, match="cn-nowhere"):
        Panel(frame(1), namespace={}, region="cn-nowhere")


def test_probe_rows_choose_public_or_a_regions_internal_endpoint() -> None:
    assert probe_choice(PUBLIC) == PUBLIC
    assert probe_choice("cn-beijing") == "cn-beijing"
    assert probe_choice("my-proxy") is None  # a custom probe target chooses nothing
    assert probe_choice("http://127.0.0.1:9") is None


# ----------------------------------------------------------------- the target section


def test_target_choices_resolve_the_url_and_credentials(local_emulator: Any) -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=env_credentials)
    assert len(panel.region.options) == 19  # emulator, public, 17 regions
    assert panel.region.value == LOCAL
    assert local_emulator.url in panel.url_label.value
    assert "nothing leaves this machine" in panel.url_label.value
    assert "LTAI****Demo" in panel.credentials_label.value
    assert panel.internal.disabled
    panel.region.value = "cn-shanghai"
    assert not panel.internal.disabled
    assert HANGZHOU_PUBLIC in panel.url_label.value
    assert "region cn-shanghai" in panel.url_label.value
    assert "LTAI****0042" in panel.credentials_label.value
    assert "environment" in panel.credentials_label.value
    panel.internal.value = True
    assert "http://metrichub-cn-shanghai.aliyun.com" in panel.url_label.value
    panel.region.value = PUBLIC
    assert panel.internal.disabled
    panel.custom_endpoint.value = "HTTP://127.0.0.1:8080/"
    assert "http://127.0.0.1:8080" in panel.url_label.value
    # the core's words (Target.where): a loopback URL keeps events on this machine
    assert "a loopback address: nothing leaves this machine" in panel.url_label.value
    panel.custom_endpoint.value = "http://host/path"
    assert "Custom URL &#x27;http://host/path&#x27;: endpoint URL must not have a path" in (
        panel.url_label.value
    )
    assert panel.last_error is None  # a bad URL is shown where it was typed
    assert SECRET not in widget_state()


def test_local_as_the_custom_url_sends_to_the_emulator(local_emulator: Any) -> None:
    panel = Panel(frame(40), namespace={}, credentials_resolver=no_credentials, region="cn-beijing")
    assert panel.credentials_entry.layout.display == ""  # a real region: no key found
    panel.custom_endpoint.value = "Local"
    assert "the local emulator" in panel.url_label.value
    assert local_emulator.url in panel.url_label.value
    assert panel.credentials_entry.layout.display == "none"
    assert "LTAI****Demo" in panel.credentials_label.value
    panel.send_button.click()
    assert panel.wait(30)
    assert panel.last_error is None
    assert len(local_emulator.events()) == 40
    assert "40/40 events accepted" in panel.summary.value
    assert "the local emulator" in panel.summary.value


def test_a_region_id_as_the_custom_url_is_that_region() -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=env_credentials)
    panel.custom_endpoint.value = "cn-hangzhou"
    shown = panel.url_label.value
    assert f"region cn-hangzhou (public endpoint {HANGZHOU_PUBLIC})" in shown
    assert "Alibaba Cloud: events leave this machine" in shown
    assert "custom endpoint" not in shown
    assert not panel.internal.disabled  # a region id takes the Internal toggle
    panel.internal.value = True
    assert "region cn-hangzhou (internal endpoint http://metrichub-cn-hangzhou.aliyun.com)" in (
        panel.url_label.value
    )
    assert panel.url_label_text() == "http://metrichub-cn-hangzhou.aliyun.com"


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        ("not a url", "is not a URL: an endpoint URL starts with http:// or https://"),
        ("ftp://127.0.0.1/x", "endpoint URL must start with http:// or https://"),
    ],
)
def test_a_malformed_custom_url_gets_a_message_about_urls(typed: str, rule: str) -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=env_credentials)
    panel.custom_endpoint.value = typed
    shown = panel.url_label.value
    assert f"Custom URL &#x27;{typed}&#x27;: {rule}" in shown
    assert "valid region ids" not in shown
    assert "cn-shanghai" not in shown
    assert panel.internal.disabled
    assert panel.last_error is None
    panel.send_button.click()  # the send refuses with the same words
    assert isinstance(panel.last_error, TargetError)
    assert f"not started: Custom URL &#x27;{typed}&#x27;: {rule}" in panel.status.value
    assert "valid region ids" not in panel.status.value
    assert panel.job is None


# ----------------------------------------------------------------- the Regions tab


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
        (PUBLIC, HANGZHOU_PUBLIC),
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
    assert panel.region_list.options[1][0].endswith("China (Hangzhou)")
    assert calls == []  # nothing is contacted before the click
    panel.probe_button.click()
    assert panel.wait(10)
    assert calls == [1]
    assert "1 of 3 endpoints reachable" in panel.probe_status.value
    labels = [value for _, value in panel.region_list.options]
    assert labels == ["cn-beijing", PUBLIC, "cn-hangzhou"]  # reachable first
    assert [r.label for r in panel.probe_results] == labels
    shown = [label for label, _ in panel.region_list.options]
    assert " ms  █" in shown[0]
    assert "unreachable  DNS: name not found" in shown[1]
    assert "unreachable  TCP: connection refused" in shown[2]
    assert "TCP: connection refused" in panel.probe_table.value
    assert "background:#1565c0" in panel.probe_table.value  # the latency bar
    assert panel.region.value == LOCAL  # the probe itself chose nothing
    panel.tabs.selected_index = 1
    panel.region_list.value = "cn-beijing"
    assert panel.region.value == "cn-beijing"
    # its public endpoint: the panel cannot know it runs inside that region
    assert panel.internal.value is False
    assert "https://metrichub-cms-cn-hangzhou.aliyuncs.com" in panel.url_label.value
    assert panel.tabs.selected_index == 1  # the tab the user chose stays
    assert "region cn-beijing (public endpoint" in panel.regions_tab.target_line.value
    panel.regions_tab.use_internal.value = True  # the user asks for the internal endpoint
    assert panel.internal.value is True
    assert "http://metrichub-cn-beijing.aliyun.com" in panel.url_label.value
    assert "http://metrichub-cn-beijing.aliyun.com" in panel.regions_tab.target_line.value
    assert panel.tabs.selected_index == 1
    panel.region_list.value = PUBLIC
    assert panel.region.value == PUBLIC
    assert panel.tabs.selected_index == 1


def test_the_regions_tab_lists_each_endpoint_once() -> None:
    panel = Panel(frame(3), namespace={})
    page = panel.regions_tab.page
    # one listing to choose from: the catalog's table is folded, so is the probe's
    assert len(panel.region_list.options) == 18  # public and every region
    assert panel.regions_table.value.count("<details") == 1
    assert panel.regions_table.value.index("<details") < panel.regions_table.value.index("<table")
    assert panel.probe_table.value == ""  # nothing before a probe
    assert panel.probe_table in page.children
    shown = panel.probe_table
    shown.value = html_probe_table()
    assert shown.value.startswith("<details")


def html_probe_table() -> str:
    from cms_magic.ui.panel import html

    return html.probe_table([])


def test_the_panel_opens_on_the_tab_asked_for_and_choose_target_keeps_it() -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=env_credentials, tab="regions")
    assert panel.tabs.selected_index == 1
    panel.choose_target("eu-central-1")
    assert panel.url_label_text() == "https://metrichub-cms-cn-hangzhou.aliyuncs.com"
    panel.choose_target("eu-central-1", internal=True)
    assert panel.url_label_text() == "http://metrichub-eu-central-1.aliyun.com"
    assert panel.tabs.selected_index == 1
    panel.choose_target("my-proxy")  # a custom probe target chooses nothing
    assert panel.url_label_text() == "http://metrichub-eu-central-1.aliyun.com"
    assert Panel(frame(1), namespace={}).tabs.selected_index == 0
    with pytest.raises(
        ConfigError, match=r"^tab='sned': must be one of 'send', 'regions', 'events'$"
    ):
        Panel(frame(1), namespace={}, tab="sned")  # type: ignore[arg-type]
