"""Typing an AccessKey into the panel: read into memory, cleared from the widget at once.

Frontend edits arrive through ``Widget.set_state``, as they do from a browser.
"""

from __future__ import annotations

from cms_magic.errors import CredentialsError
from cms_magic.ui.panel.credentials import ALIBABA_CLOUD, CredentialsEntry
from cms_magic.ui.panel.panel import LOCAL, PUBLIC, Panel
from tests.ui.panel._support import KEY_ID, SECRET, frame, no_credentials, widget_state


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
    assert panel.credentials_entry.layout.display == ""  # to type another pair over it
    assert "LTAI****0042" in panel.credentials_label.value
    assert "type another pair below to replace it" in panel.credentials_label.value
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
    assert "not started: no credentials for this endpoint" in panel.status.value


def test_the_local_emulator_never_needs_the_password_field() -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=no_credentials)
    assert panel.credentials_entry.layout.display == "none"
    assert "demo" in panel.credentials_label.value


def test_the_entry_alone_keeps_the_pair_only_once_complete() -> None:
    entry = CredentialsEntry()
    assert entry.box.layout.display == "none"
    assert entry.take_secret({"new": SECRET}) is False  # no id yet: nothing kept
    assert entry.typed is None
    entry.take_key_id({"new": f"  {KEY_ID} "})
    assert entry.take_secret({"new": ""}) is False  # the field cleared itself: ignored
    assert entry.take_secret({"new": SECRET}) is True
    assert entry.typed is not None
    assert (entry.typed.access_key_id, entry.typed.source) == (KEY_ID, "the panel (typed in)")
    assert SECRET not in repr(entry.typed)
    entry.forget()
    assert entry.typed is None


def type_key(panel: Panel, key_id: str = KEY_ID, secret: str = SECRET) -> None:
    panel.key_id.set_state({"value": key_id})
    panel.secret.set_state({"value": secret})


def test_typed_credentials_stay_with_the_endpoint_they_were_typed_for() -> None:
    custom = "http://127.0.0.1:9"
    panel = Panel(frame(3), namespace={}, credentials_resolver=no_credentials, region=custom)
    type_key(panel)
    assert "LTAI****0042" in panel.credentials_label.value
    assert panel.entry.typed_for == custom
    # to the public cloud: the key typed for the test server is cleared, and the line says so
    panel.custom_endpoint.value = ""
    panel.region.value = PUBLIC
    assert "Alibaba Cloud: events leave this machine" in panel.url_label.value
    shown = panel.credentials_label.value
    assert "no Alibaba Cloud credentials found" in shown
    assert f"the key LTAI****0042 typed for {custom} was cleared" in shown
    assert panel.entry.typed is None
    assert panel.credentials_entry.layout.display == ""
    panel.send_button.click()  # nothing to send with
    assert "not started: no credentials for this endpoint" in panel.status.value
    assert panel.job is None
    # a key typed for Alibaba Cloud serves every region (one AccessKey, every region)...
    type_key(panel)
    assert panel.entry.typed_for == ALIBABA_CLOUD
    panel.region.value = "cn-beijing"
    assert "LTAI****0042" in panel.credentials_label.value
    assert "cleared" not in panel.credentials_label.value
    panel.region.value = LOCAL  # the emulator takes its demo key, and keeps the typed one
    assert "LTAI****Demo" in panel.credentials_label.value
    panel.region.value = "cn-shanghai"
    assert "LTAI****0042" in panel.credentials_label.value
    # ...and is never sent on to a custom endpoint
    panel.custom_endpoint.value = custom
    assert f"the key LTAI****0042 typed for {ALIBABA_CLOUD} was cleared" in (
        panel.credentials_label.value
    )
    assert panel.entry.typed is None
    assert SECRET not in widget_state()


def test_the_entry_words_a_refused_key_id_by_its_field() -> None:
    panel = Panel(frame(3), namespace={}, credentials_resolver=no_credentials, region="cn-beijing")
    type_key(panel, key_id="LTAI with space", secret=SECRET)
    note = panel.entry_note.value
    assert "AccessKey id: must not contain whitespace" in note
    assert "access_key_id" not in note  # never the Python keyword
    assert panel.entry.typed is None
