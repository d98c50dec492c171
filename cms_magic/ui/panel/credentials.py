"""Which credentials the panel sends with, and typing an AccessKey without the secret
ever staying in a widget.

The local emulator takes its demo key, a real endpoint what the target (or the
panel's injected resolver) finds. When nothing resolves, fields for a key
appear: what is typed is read into memory and the field is cleared at once, so
the secret is never in the widget state a notebook saves; the secret field also
never echoes its value back to the frontends. The typed secret is held as a
:class:`~cms_magic.credentials.Secret` from the moment it is read.

Typed credentials belong to the endpoint they were typed for: Alibaba Cloud as a
whole (any catalog endpoint: a key works in every region), or that one custom
URL. Moving to another of those drops them, and the credentials line says so,
so a key typed for a test server is never sent on to the public cloud.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

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
from cms_magic.identity import AnyCredentials
from cms_magic.ui.panel import html

if TYPE_CHECKING:
    from cms_magic.targets import Target

__all__ = ["ALIBABA_CLOUD", "CredentialsEntry", "SecretField", "realm"]

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
        #: Where :attr:`typed` belongs (see :func:`realm`).
        self.typed_for: str | None = None
        self._key_id: str | None = None
        self._realm: str | None = None  # of the target shown last
        self._dropped: str | None = None  # the note when typed credentials were dropped

    def resolve(
        self, target: Target, resolver: Callable[[], AnyCredentials] | None
    ) -> AnyCredentials | None:
        """The credentials for ``target``, shown masked: the emulator's demo key for the
        local emulator; else ``resolver``'s (default: the target's), else those typed in;
        None (and the entry fields shown) when there are none.

        Credentials typed for another endpoint (see :func:`realm`) are dropped first.
        """
        if not target.is_local:
            self._follow(target)
        try:
            found = target.credentials() if target.is_local or resolver is None else resolver()
        except CredentialsError as exc:
            self.box.layout.display = ""  # also to type another pair over the one typed
            if self.typed is None:
                self.label.value = html.credentials_missing(exc, dropped=self._dropped or "")
            else:
                self.label.value = html.credentials_line(
                    self.typed, "kept in memory, never saved; type another pair below to replace it"
                )
            return self.typed
        self.box.layout.display = "none"
        note = "the emulator accepts only its demo key" if target.is_local else ""
        if self._dropped and not target.is_local:
            note = f"{note}; {self._dropped}" if note else self._dropped
        self.label.value = html.credentials_line(found, note)
        return found

    def _follow(self, target: Target) -> None:
        """Drop typed credentials that belong to another endpoint than ``target``'s."""
        where = realm(target)
        if where != self._realm:
            self._dropped = None
        self._realm = where
        if self.typed is not None and self.typed_for != where:
            self._dropped = (
                f"the key {self.typed.masked_id} typed for {self.typed_for} was cleared: "
                "typed credentials stay with the endpoint they were typed for"
            )
            self.forget()

    def required(
        self, target: Target, resolver: Callable[[], AnyCredentials] | None
    ) -> AnyCredentials:
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
            self.typed_for = self._realm
            self._dropped = None
            self.note.value = ""
            return True
        self._key_id = None
        self.note.value = html.bad(f"{problem}; type the AccessKey id and the secret again")
        return False

    def forget(self) -> None:
        """Drop what was typed."""
        self._key_id = None
        self.typed = None
        self.typed_for = None


ALIBABA_CLOUD: Final = "Alibaba Cloud"


def realm(target: Target) -> str:
    """Where typed credentials for ``target`` belong: :data:`ALIBABA_CLOUD` for a catalog
    endpoint (the public one or a region's: one AccessKey serves them all), else the
    target's URL."""
    if target.kind in ("public", "region") and target.leaves_machine:
        return ALIBABA_CLOUD
    return str(target.url)
