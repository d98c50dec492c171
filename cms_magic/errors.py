"""Every exception cms_magic raises, in one place.

The hierarchy::

    CmsError                      base of everything below; carries fields, not just prose
    ├── ConfigError               a caller's mistake in arguments or settings (also ValueError)
    │   ├── UnknownRegionError    a region id not in the catalog; lists the valid ids
    │   ├── TargetError           an endpoint that is not a usable URL, region or 'local'
    │   └── MappingError          a frame-to-events mapping that cannot work (missing column...)
    ├── CredentialsError          no usable AccessKey; says where it looked
    │   └── NoCredentialsError    no source had any (each skin words the ways to give them)
    ├── InputError                data that cannot be read at all (not a frame, not records)
    ├── SendError                 a whole send had to stop; ``.result`` holds the partial result
    │   ├── AuthError             the service refused the credentials (signature, key, permission)
    │   └── EventsNotAcceptedError  a caller asked to fail when some events were not accepted
    ├── EmulatorStoppedError      a stopped emulator server was started again (also RuntimeError)
    ├── QuickstartError           ``make demo`` / ``python -m cms_magic.quickstart`` cannot run
    └── InternalError             a bug in cms_magic: please report it

**Errors carry fields.** Each error knows the ``option`` it is about (the Python
keyword, e.g. ``"time_col"``), the ``value`` given, the ``rule`` it breaks and,
where it helps, the ``column`` and a ``hint``. ``str(error)`` words it in Python's
terms (``time_col='when': no such column; columns: name, time``); a skin words
the same error in its own terms through :meth:`CmsError.describe`, e.g. the
magic and the CLI as a flag (``--time-col 'when': ...``) and the panel as the
control's label, so no skin ever rewrites another's text.

Row-level problems (an empty name, a group id that is not an integer, an event
too large for a request) are *not* exceptions: they become rows with status
``rejected`` and a reason, so nothing is lost and one bad row never hides the
others.

And one warning: :class:`RemoteBindWarning`, when the emulator is told to listen
where other hosts can reach it.

This module imports nothing of ours, so every other module may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Final, Literal

__all__ = [
    "NO_VALUE",
    "AuthError",
    "CmsError",
    "ConfigError",
    "CredentialsError",
    "EmulatorStoppedError",
    "EventsNotAcceptedError",
    "InputError",
    "InternalError",
    "JournalError",
    "JournalMismatchError",
    "MappingError",
    "NoCredentialsError",
    "QuickstartError",
    "RemoteBindWarning",
    "SendError",
    "Subject",
    "TargetError",
    "UnknownRegionError",
    "close_matches",
    "show_value",
]


class _NoValue:
    """The marker for "no value was given" (``None`` is a value a user can give)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()

#: How a skin names the subject of an error: ``(option, value) -> words``.
#: ``value`` is :data:`NO_VALUE` when the error is about the option itself.
Subject = Callable[[str, object], str]

_SHOWN_CHARS: Final = 80


def show_value(value: object) -> str:
    """A value as an error shows it: its repr, cut to a readable length."""
    text = repr(value)
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return text


def python_subject(option: str, value: object) -> str:
    """The Python API's words: ``time_col='when'``, or ``time_col`` alone."""
    return option if value is NO_VALUE else f"{option}={show_value(value)}"


def close_matches(word: str, candidates: Sequence[object], *, cutoff: float = 0.75) -> list[str]:
    """The candidates close to ``word`` (as text), best first: the "did you mean" list."""
    import difflib

    texts = [str(c) for c in candidates]
    exact = [t for t in texts if t.lower() == word.lower() and t != word]
    return exact or difflib.get_close_matches(word, texts, n=3, cutoff=cutoff)


class CmsError(Exception):
    """Base class of every error raised by cms_magic.

    ``CmsError("text")`` is a plain message. With fields,
    ``CmsError("must be > 0", option="qps", value=-1)`` reads
    ``qps=-1: must be > 0`` in Python, and each skin can say it in its own words
    with :meth:`describe`.
    """

    def __init__(
        self,
        rule: str,
        *,
        option: str | None = None,
        value: object = NO_VALUE,
        column: Hashable | None = None,
        hint: str | None = None,
        hint_options: tuple[str, ...] = (),
    ) -> None:
        self.rule = rule
        self.option = option
        self.value = value
        self.column = column
        self.hint = hint
        #: Options the hint names, at its ``%s`` places, worded by the skin like ``option``.
        self.hint_options = hint_options
        super().__init__(self.describe())

    def describe(self, subject: Subject | None = None) -> str:
        """The message, with the option named by ``subject`` (default: the Python keyword)."""
        text = self.rule
        if self.option is not None:
            text = f"{(subject or python_subject)(self.option, self.value)}: {text}"
        if self.hint:
            text = f"{text}; {self._hint(subject)}"
        return text

    def _hint(self, subject: Subject | None) -> str:
        if not self.hint_options or not self.hint:
            return self.hint or ""
        name = subject or python_subject
        return self.hint % tuple(name(o, NO_VALUE) for o in self.hint_options)

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields survive pickling (multiprocessing, nbclient) intact.
        return (_rebuild, (type(self), self.rule, self.__dict__.copy()))


def _rebuild(cls: type[CmsError], rule: str, state: dict[str, object]) -> CmsError:
    error = cls.__new__(cls)
    Exception.__init__(error, rule)
    error.__dict__.update(state)
    error.args = (error.describe(),)
    return error


class ConfigError(CmsError, ValueError):
    """An argument or setting that cannot work; says which, the rule and the value."""


class UnknownRegionError(ConfigError):
    """A region id that is not in the catalog; lists the valid ids."""

    def __init__(self, region: str, valid: list[str], *, option: str | None = None) -> None:
        self.region = region
        self.valid = valid
        near = close_matches(region, valid, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else None
        super().__init__(
            f"unknown region {region!r}; valid region ids: {', '.join(valid)} "
            "(or give an endpoint URL, 'public' or 'local')",
            option=option,
            hint=hint,
        )

    def describe(self, subject: Subject | None = None) -> str:
        # The value is in the rule already ("unknown region 'x'"): name only the option.
        if self.option is None:
            return super().describe(subject)
        text = f"{(subject or python_subject)(self.option, NO_VALUE)}: {self.rule}"
        return f"{text}; {self._hint(subject)}" if self.hint else text


class TargetError(ConfigError):
    """An endpoint that is neither a region id, ``public``, ``local`` nor a usable URL."""


class MappingError(ConfigError):
    """A mapping from a frame's columns to event fields that cannot work."""


class CredentialsError(CmsError):
    """No usable credentials, or a credentials source that is malformed."""


class NoCredentialsError(CredentialsError):
    """No source had credentials. ``looked_in`` lists each place and what was found there;
    ``how_to`` the ways to provide them. Only the Python API takes credentials as arguments,
    so only its wording (``describe()`` without a subject) names them."""

    def __init__(self, looked_in: tuple[str, ...], how_to: tuple[str, ...]) -> None:
        self.looked_in = looked_in
        self.how_to = how_to
        super().__init__("no Alibaba Cloud credentials found")

    def describe(self, subject: Subject | None = None) -> str:
        places = list(self.looked_in)
        ways = list(self.how_to)
        if subject is None:
            places.insert(0, "arguments access_key_id / access_key_secret: not given")
            ways.insert(0, "pass access_key_id= and access_key_secret=")
        lines = "".join(f"\n  - {place}" for place in places)
        return f"{self.rule}. Looked in:{lines}\nProvide credentials in one of these ways: " + (
            "; ".join(ways) + "."
        )


class InputError(CmsError, TypeError):
    """Data that cannot be read as events at all (neither a frame nor a list of records)."""


class SendError(CmsError):
    """A send that had to stop as a whole; ``.result`` holds the partial result, if any."""

    def __init__(self, rule: str, *, result: object | None = None, **fields: object) -> None:
        self.result = result
        super().__init__(rule, **fields)  # type: ignore[arg-type]


class AuthError(SendError):
    """The service refused the credentials (signature, unknown key, missing permission).

    Retrying cannot help, so a send stops at once and the rows not yet sent are
    reported as ``not_sent``; ``SendResult.error`` holds this error and
    ``SendResult.raise_for_error()`` raises it.
    """


class EventsNotAcceptedError(SendError):
    """Some events were not accepted, and the caller asked for an error (``--raise``).

    ``.result`` holds the whole result. IPython shows it as one line, but it is a
    real error, so a papermill or nbclient run stops there.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class EmulatorStoppedError(CmsError, RuntimeError):
    """``EmulatorServer.start`` on a server that was stopped (a server runs once)."""


class RemoteBindWarning(UserWarning):
    """The emulator was told to listen where other hosts can reach it (``allow_remote``)."""


class QuickstartError(CmsError):
    """The quick start cannot run; the message says why and what to do."""


class InternalError(CmsError):
    """A bug in cms_magic (an invariant broke); the message says what, please report it."""


Differs = Literal["data", "target", "options"]


class JournalError(CmsError):
    """A journal that cannot be used: not a journal, in use by another process, unwritable."""

    def __init__(self, path: str, rule: str, *, hint: str | None = None) -> None:
        self.path = path
        super().__init__(rule, option="journal", value=path, hint=hint)


_DIFFERS: Final = {
    "data": "of other data",
    "target": "to another target",
    "options": "with other batching options",
}


class JournalMismatchError(JournalError):
    """The journal was made for another send: ``differs`` is ``"data"`` (other rows or
    events), ``"target"`` (another URL or key) or ``"options"`` (other batching options);
    ``batch`` is the first batch that differs (data only)."""

    def __init__(self, path: str, differs: Differs, rule: str, *, batch: int | None = None):
        self.differs = differs
        self.batch = batch
        super().__init__(
            path,
            f"was made for a send {_DIFFERS[differs]}: {rule}; resuming it would skip or "
            "resend the wrong rows",
            hint=f"give a new journal path, or delete {path} to start this send over",
        )
