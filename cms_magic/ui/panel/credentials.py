"""Which credentials the panel sends with, and typing an AccessKey without the secret
ever staying in a widget.

The local emulator takes its demo key, a real endpoint what the target (or the
panel's injected resolver) finds. When nothing resolves, fields for a key
appear: what is typed is read into memory and the field is cleared at once, so
the secret is never in the widget state a notebook saves; the secret field also
never echoes its value back to the frontends. The typed secret is held as a
:class:`~cms_magic.credentials.Secret` from the moment it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import Unicode

from cms_magic.credentials import (
    ENV_ACCESS_KEY_ID,
    ENV_ACCESS_KEY_SECRET,
    Credentials,
    Secret,
    mask,
)
from cms_magic.errors import CredentialsError
from cms_magic.ui.panel import html

if TYPE_CHECKING:
    from cms_magic.targets import Target

__all__ = ["CredentialsEntry", "SecretField"]

_WIDE = {"description_width": "110px"}


class SecretField(w.Password):  # type: ignore[misc]  # ipywidgets is untyped
    """A Password field whose value the kernel never echoes back to the frontends."""

    value = Unicode(help="The typed secret; the panel clears it at once").tag(
        sync=True, echo_update=False
    )


class CredentialsEntry:
    """The credentials line (``label``), and an AccessKey id field, a secret field and a
    note in ``box`` (hidden until nothing resolves).

    ``typed`` holds the credentials once both were typed. The panel observes the
    fields and calls :meth:`take_key_id` / :meth:`take_secret` (through its error
    wrapper); :meth:`take_secret` says when the credentials are complete.
    """

    def __init__(self) -> None:
        self.label = w.HTML()
        self.label.add_class("cms-credentials")
        self.key_id = w.Text(
            description="AccessKey id",
            placeholder="LTAI...",
            continuous_update=False,
            style=_WIDE,
        )
        self.key_id.add_class("cms-key-id")
        self.secret = SecretField(
            description="Secret",
            placeholder="AccessKey secret (kept in memory only)",
            continuous_update=False,
            style=_WIDE,
        )
        self.secret.add_class("cms-secret")
        self.note = w.HTML()
        self.box = w.VBox([self.key_id, self.secret, self.note])
        self.box.add_class("cms-credentials-entry")
        self.box.layout.display = "none"
        #: The credentials typed in, once complete; memory only.
        self.typed: Credentials | None = None
        self._key_id: str | None = None

    def resolve(
        self, target: Target, resolver: Callable[[], Credentials] | None
    ) -> Credentials | None:
        """The credentials for ``target``, shown masked: the emulator's demo key for the
        local emulator; else ``resolver``'s (default: the target's), else those typed in;
        None (and the entry fields shown) when there are none."""
        try:
            found = target.credentials() if target.is_local or resolver is None else resolver()
        except CredentialsError as exc:
            self.box.layout.display = "" if self.typed is None else "none"
            if self.typed is None:
                self.label.value = html.credentials_missing(exc)
            else:
                self.label.value = html.credentials_line(self.typed, "kept in memory, never saved")
            return self.typed
        self.box.layout.display = "none"
        note = "the emulator accepts only its demo key" if target.is_local else ""
        self.label.value = html.credentials_line(found, note)
        return found

    def required(self, target: Target, resolver: Callable[[], Credentials] | None) -> Credentials:
        """:meth:`resolve`, or a CredentialsError that says how to give a key."""
        found = self.resolve(target, resolver)
        if found is None:
            raise CredentialsError(
                "no credentials for this endpoint: type an AccessKey id and secret above, or "
                f"set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} and choose the target again"
            )
        return found

    def take_key_id(self, change: Mapping[str, Any]) -> None:
        value = str(change["new"] or "").strip()
        if not value:
            return
        self.key_id.value = ""  # read into memory, cleared from the widget at once
        self._key_id = value
        self.note.value = f"AccessKey id <code>{html.esc(mask(value))}</code> kept; now the secret."

    def take_secret(self, change: Mapping[str, Any]) -> bool:
        """Read the secret into memory and clear the field; True once the pair is complete.

        The text is wrapped in a :class:`Secret` as it is read. A pair the Credentials
        refuse is refused in the note (and the pair starts over), never raised: a raised
        error would keep the frames holding the typed text on its traceback.
        """
        secret = Secret(str(change["new"] or ""))
        if not secret:
            return False
        self.secret.value = ""  # read into memory, cleared from the widget at once
        if self._key_id is None:
            self.note.value = html.bad("type the AccessKey id first, then the secret again")
            return False
        try:
            typed = Credentials(self._key_id, secret, source="the panel (typed in)")
        except CredentialsError as exc:
            problem = html.message(exc)
        else:
            self.typed = typed
            self.note.value = ""
            return True
        self._key_id = None
        self.note.value = html.bad(f"{problem}; type the AccessKey id and the secret again")
        return False

    def forget(self) -> None:
        """Drop what was typed."""
        self._key_id = None
        self.typed = None
