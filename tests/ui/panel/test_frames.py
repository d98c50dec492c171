"""Which DataFrames the panel offers: the namespace's, and the one passed in."""

from __future__ import annotations

from typing import Any

from cms_magic.ui.panel.frames import ARGUMENT, FramePicker
from cms_magic.ui.panel.panel import Panel
from tests.ui.panel._support import frame


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
    assert [v for _, v in panel.frame_picker.options] == [ARGUMENT]


def test_a_rebound_name_is_read_again() -> None:
    namespace: dict[str, Any] = {"data": frame(2)}
    picker = FramePicker(None, namespace)
    assert [key for _, key in picker.discover()] == ["data"]
    assert picker.default(None) == "data"
    newer = frame(9)
    namespace["data"] = newer
    assert picker.get("data") is newer
    del namespace["data"]
    assert picker.get("data") is not None  # the frame last seen under that name
    assert picker.get(None) is None
