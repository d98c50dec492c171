"""The panel's typed-in AccessKey: wrapped in a Secret at once, a bad one refused in a note.

A secret typed into the panel's password field reaches the kernel as a traitlets
change; it is wrapped the moment it is read, and a value the Credentials refuse
(control characters) is refused in the entry's note, not raised: a raised error
would carry the frames that hold the change (and the typed text) into
``panel.last_error.__traceback__``.
"""

from __future__ import annotations

import json

import ipywidgets as w

from cms_magic.credentials import Secret
from cms_magic.ui.panel.credentials import CredentialsEntry

SECRET = "typed-in-secret-qj5vTyped777"
KEY_ID = "LTAItypedInKey0042"


def test_the_typed_secret_is_held_as_a_secret_and_nowhere_plain() -> None:
    entry = CredentialsEntry()
    entry.take_key_id({"new": KEY_ID})
    assert entry.take_secret({"new": SECRET}) is True
    assert entry.typed is not None
    assert isinstance(entry.typed.access_key_secret, Secret)
    assert entry.typed.access_key_secret.reveal() == SECRET
    held = repr(vars(entry)) + repr(entry.typed) + repr(vars(entry.typed))
    assert SECRET not in held
    state = json.dumps(w.Widget.get_manager_state(drop_defaults=False), default=str)
    assert SECRET not in state


def test_a_secret_the_credentials_refuse_is_refused_in_the_note_not_raised() -> None:
    entry = CredentialsEntry()
    entry.take_key_id({"new": KEY_ID})
    assert entry.take_secret({"new": SECRET + "\x07"}) is False  # must not raise
    assert entry.typed is None
    assert "control characters" in entry.note.value
    assert "again" in entry.note.value
    assert SECRET not in entry.note.value
    assert entry.secret.value == ""
    # the pair starts over: the id is asked for again
    assert entry.take_secret({"new": SECRET}) is False
    assert "AccessKey id first" in entry.note.value


def test_an_id_the_credentials_refuse_is_refused_in_the_note_not_raised() -> None:
    entry = CredentialsEntry()
    entry.take_key_id({"new": "LTAI with space"})
    assert entry.take_secret({"new": SECRET}) is False
    assert entry.typed is None
    assert "whitespace" in entry.note.value
    assert SECRET not in entry.note.value
