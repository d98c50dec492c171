"""The emulator's OpenAPI front: ``GET`` or ``POST /`` with an action, answered by the
handler registered for it.

An OpenAPI request names its action in the query (``Action=``, RPC style, also in an
``application/x-www-form-urlencoded`` body) or in header ``x-acs-action`` (ACS3).
:class:`ActionTable` maps action names to handlers (anything with
``handle(method, target, headers, body) -> EmulatorResponse``, as every emulator handler
has); registering one more is one line::

    table.register(sts, "AssumeRole", "AssumeRoleWithOIDC")
    table.register(cms, "DescribeCustomEventCount")

An action that only needs the verified parameters registers a plain function through the
server, which checks the signature first (RPC v2 or ACS3, the emulator's keys and the keys
it minted with their token, the time stamp, a nonce never used before:
:class:`~cms_magic.emulator.verify.SignedAction`)::

    server.routes.register_signed(
        lambda params, now, key_id: answer(params, now), "DescribeCustomEventCount"
    )

An action nobody registered is answered as the services answer it: HTTP 404,
``{"Code": "InvalidAction.NotFound", "Message": "Specified api is not found, please check
your url and method.", "RequestId": ...}`` (the message goes on to list the actions served
here). The table counts the requests it passed on, per action (:attr:`ActionTable.calls`).

The helpers below build the OpenAPI answers' shape (``{"Code", "Message", "RequestId"}``,
:func:`error_response`) and read a request's parameters (:func:`request_params`) for the
handlers.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol
from urllib.parse import parse_qsl, urlsplit

from cms_magic.emulator.service import EmulatorResponse, json_response
from cms_magic.emulator.validation import header_fields, header_pairs, show
from cms_magic.openapi import signing

__all__ = [
    "INVALID_ACTION_CODE",
    "ActionRefusal",
    "ActionTable",
    "Handler",
    "action_of",
    "error_response",
    "missing",
    "names_action",
    "request_fields",
    "request_id",
    "request_params",
    "text_response",
]

INVALID_ACTION_CODE: Final = "InvalidAction.NotFound"
_INVALID_ACTION_MESSAGE: Final = "Specified api is not found, please check your url and method."
_FORM: Final = "application/x-www-form-urlencoded"

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class Handler(Protocol):
    """What every emulator handler is: a request -> response function with state."""

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> EmulatorResponse:
        """Answer one request (``target``: path and query as sent)."""
        ...


class ActionRefusal(Exception):
    """Ends an OpenAPI request with ``{"Code": code, "Message": message}`` and ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self, now: float) -> EmulatorResponse:
        """The answer for this error, dated ``now``."""
        return error_response(self.status, self.code, self.message, now)


def missing(name: str) -> ActionRefusal:
    """The services' refusal of a request without parameter ``name`` (400)."""
    return ActionRefusal(400, "MissingParameter", f"the input parameter {name!r} is missing")


def request_id() -> str:
    """A new request id, as the services write them (an upper-case UUID)."""
    return str(uuid.uuid4()).upper()


def error_response(status: int, code: str, message: str, now: float) -> EmulatorResponse:
    """An OpenAPI error answer: ``{"Code", "Message", "RequestId"}``."""
    return json_response(status, {"Code": code, "Message": message, "RequestId": request_id()}, now)


def text_response(status: int, text: str, now: float) -> EmulatorResponse:
    """A plain-text answer (what the instance metadata answers)."""
    headers = {"Content-Type": "text/plain; charset=utf-8", "Date": signing.format_date(now)}
    return EmulatorResponse(status, headers, text.encode("utf-8"))


def request_fields(headers: Headers) -> dict[str, str]:
    """The headers as lower-cased fields, read as the upload handler reads them."""
    return header_fields(header_pairs(headers))


def request_params(
    target: str, fields: Mapping[str, str], body: bytes
) -> tuple[str, list[tuple[str, str]], dict[str, str]]:
    """The path, the parameters as sent (query, then a form body's) and as a dict."""
    split = urlsplit(target)
    pairs = parse_qsl(split.query, keep_blank_values=True)
    if body and _FORM in fields.get("content-type", ""):
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return split.path or "/", pairs, dict(pairs)


def action_of(target: str, fields: Mapping[str, str], body: bytes = b"") -> str:
    """The action a request names: ``Action`` (query or form body), else ``x-acs-action``;
    ``""`` when it names none."""
    _, _, params = request_params(target, fields, body)
    return params.get("Action") or fields.get("x-acs-action", "")


def names_action(method: str, target: str, headers: Headers) -> bool:
    """Whether a request's head makes it an OpenAPI call: ``GET``/``POST`` on ``/`` with
    ``Action=`` in the query, header ``x-acs-action``, or (``POST``) a form body."""
    if method.upper() not in ("GET", "POST"):
        return False
    split = urlsplit(target)
    if split.path not in ("", "/"):
        return False
    fields = request_fields(headers)
    if fields.get("x-acs-action") or any(
        name == "Action" for name, _ in parse_qsl(split.query, keep_blank_values=True)
    ):
        return True
    return method.upper() == "POST" and _FORM in fields.get("content-type", "")


class ActionTable:
    """Action name -> handler; :meth:`handle` passes a request to its action's handler.

    ``clock`` (epoch seconds) dates the table's own refusals. Thread-safe.
    """

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        #: Requests passed on to a handler, per action (whatever the handler answered).
        self.calls: Counter[str] = Counter()
        #: Requests refused for naming no action or an unknown one.
        self.refused = 0

    def __repr__(self) -> str:
        return f"ActionTable({', '.join(self.actions)})"

    def register(self, handler: Handler, *actions: str) -> None:
        """Answer ``actions`` with ``handler`` from now on (replacing an earlier one)."""
        if not actions:
            raise ValueError("register(handler, 'Action', ...) wants at least one action name")
        with self._lock:
            for action in actions:
                if not isinstance(action, str) or not action:
                    raise ValueError(f"an action name must be a non-empty string, got {action!r}")
                self._handlers[action] = handler

    @property
    def actions(self) -> tuple[str, ...]:
        """The actions served, sorted."""
        with self._lock:
            return tuple(sorted(self._handlers))

    def handler(self, action: str) -> Handler | None:
        """The handler registered for ``action``, else None."""
        with self._lock:
            return self._handlers.get(action)

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> EmulatorResponse:
        """Answer one OpenAPI request by its action's handler, or refuse it."""
        pairs = header_pairs(headers)
        action = action_of(target, header_fields(pairs), body)
        handler = self.handler(action) if action else None
        if handler is None:
            with self._lock:
                self.refused += 1
            if not action:
                return missing("Action").response(self.clock())
            served = ", ".join(self.actions) or "none"
            return error_response(
                404,
                INVALID_ACTION_CODE,
                f"{_INVALID_ACTION_MESSAGE} Action {show(action)} is not served by this "
                f"emulator (it serves: {served})",
                self.clock(),
            )
        with self._lock:
            self.calls[action] += 1
        return handler.handle(method, target, pairs, body)
