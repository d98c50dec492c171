"""A secret text that no repr, str, format, log record or frame dump can show.

Tools that render frames' locals (``%xmode Verbose``, ``traceback`` with
``capture_locals=True``, pytest ``--showlocals``, error trackers) call ``repr`` on
every local; a :class:`Secret` answers ``Secret('****')``. The text comes out
only through :meth:`Secret.reveal`, which the signer calls at the HMAC and the
header it must send.
"""

from __future__ import annotations

import hmac
from typing import Final

__all__ = ["MASK", "Secret"]

#: How a secret reads wherever it is shown.
MASK: Final = "****"


class Secret:
    """A secret string, masked in every rendering; :meth:`reveal` gives the text.

    Not a ``str`` (so no concatenation, ``join`` or JSON encoding sees the text by
    accident). Equal to another :class:`Secret` or a ``str`` with the same text
    (compared in constant time), hashable, and its ``len`` is the text's. Wrapping a
    Secret gives the same text; anything but a ``str`` is refused, naming only its type.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: object) -> None:
        # ``value: object``: a str or a Secret; anything else is refused at run time.
        if isinstance(value, Secret):
            text = value._value
        elif isinstance(value, str):
            text = value
        else:
            kind = type(value).__name__
            del value  # not left in this frame for the traceback below
            raise TypeError(f"a Secret holds a str, got a {kind}")
        object.__setattr__(self, "_value", text)

    def reveal(self) -> str:
        """The secret text. Call it only where the text itself is needed (signing)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Secret is immutable (cannot set {name!r})")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other_text = other._value
        elif isinstance(other, str):
            other_text = other
        else:
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other_text.encode("utf-8"))

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))
