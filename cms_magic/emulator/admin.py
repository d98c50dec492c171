"""The emulator's admin endpoints as a plain function, no I/O: who may use them and what they do.

::

    GET  /_emulator/health     {"ok": true}           (open to anyone: says nothing)
    GET  /_emulator/events     the accepted events
    GET  /_emulator/requests   the request log
    POST /_emulator/reset      forget both, refill the quota
    GET  /_emulator/faults     the faults in force
    POST /_emulator/faults     set them (a JSON object, see Faults)

Every endpoint but health reads or changes what the emulator stored, so it answers
only a caller that shows one of:

- the server's admin token, made at random when it starts (printed in the command
  line's banner, :attr:`EmulatorServer.admin_token`), in header
  :data:`ADMIN_TOKEN_HEADER`;
- a request signed like an upload with a key the emulator accepts (Authorization,
  Date, Content-MD5 and the x-cms headers, checked as an upload's are).

Anyone else gets 401 (nothing shown) or 403 (a wrong token or signature). In-process
callers use :class:`~cms_magic.emulator.service.Emulator`'s methods, which need neither.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

from cms_magic.emulator.faults import Faults
from cms_magic.emulator.service import Emulator, EmulatorResponse, json_response
from cms_magic.emulator.validation import (
    Refusal,
    check_body_digest,
    check_date,
    check_headers,
    check_key,
    check_signature,
    header_fields,
    hidden_fields,
    hide,
    security_tokens,
)
from cms_magic.errors import ConfigError

__all__ = ["ADMIN_PREFIX", "ADMIN_TOKEN_HEADER", "admin_answer", "new_admin_token"]

#: Paths under this prefix are the server's admin endpoints, not part of the service.
ADMIN_PREFIX: Final = "/_emulator/"
#: The header that carries the admin token.
ADMIN_TOKEN_HEADER: Final = "x-emulator-admin-token"  # noqa: S105 - a header name
_OPEN_PATHS: Final = frozenset({"/_emulator/health"})
_HOW: Final = (
    f"send the emulator's admin token in header {ADMIN_TOKEN_HEADER} (printed when it "
    "starts; EmulatorServer.admin_token in Python), or sign the request as an upload "
    "with an AccessKey the emulator accepts"
)


def new_admin_token() -> str:
    """A fresh random admin token (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def admin_answer(
    emulator: Emulator,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    admin_token: str,
) -> EmulatorResponse:
    """Answer one admin request (``target`` under :data:`ADMIN_PREFIX`) for ``emulator``."""
    now = emulator.clock()
    path = urlsplit(target).path
    if path not in _OPEN_PATHS:
        try:
            _authorize(emulator, method, target, headers, body, admin_token)
        except Refusal as refusal:
            tokens = security_tokens(header_fields(headers), emulator.credentials)
            payload = {"code": str(refusal.status), "msg": hide(refusal.msg, tokens)}
            return json_response(refusal.status, payload, now)
    if path == "/_emulator/faults" and method == "POST":
        try:
            faults = Faults.from_dict(json.loads(body or b"{}"))
        except (ValueError, ConfigError) as exc:  # not JSON, or faults that cannot work
            return json_response(400, {"code": "400", "msg": str(exc)}, now)
        emulator.set_faults(faults)
        return json_response(200, faults.to_dict(), now)
    routes: dict[str, tuple[str, Callable[[], object]]] = {
        "/_emulator/health": ("GET", lambda: {"ok": True}),
        "/_emulator/events": ("GET", emulator.events),
        "/_emulator/requests": ("GET", emulator.requests),
        "/_emulator/reset": ("POST", lambda: _reset(emulator)),
        "/_emulator/faults": ("GET", emulator.faults.to_dict),
    }
    route = routes.get(path)
    if route is None:
        known = ", ".join(f"{m} {p}" for p, (m, _) in routes.items())
        msg = f"no admin endpoint {path!r}; the admin endpoints are: {known}"
        return json_response(404, {"code": "404", "msg": msg}, now)
    wanted, action = route
    if method != wanted and not (method == "HEAD" and wanted == "GET"):
        answer = json_response(
            405, {"code": "405", "msg": f"use {wanted} {path}, not {method}"}, now
        )
        answer.headers["Allow"] = wanted
        return answer
    return json_response(200, action(), now)


def _authorize(
    emulator: Emulator,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    admin_token: str,
) -> None:
    """Return if the caller showed the admin token or a valid signature; else a Refusal."""
    fields = header_fields(headers)
    sent = fields.get(ADMIN_TOKEN_HEADER)
    if sent is not None:
        if hmac.compare_digest(sent.encode("utf-8"), admin_token.encode("utf-8")):
            return
        raise Refusal(
            403,
            f"header {ADMIN_TOKEN_HEADER} does not match this emulator's admin token "
            "(a new one is made each time it starts)",
        )
    if "authorization" not in fields:
        raise Refusal(401, f"the admin endpoints answer only the emulator's owner: {_HOW}")
    shown = hidden_fields(fields, security_tokens(fields, emulator.credentials))
    key_id, sent_signature = check_headers(shown, body)
    check_body_digest(shown, body)
    check_date(shown["date"], now=emulator.clock(), max_skew_seconds=emulator.max_skew_seconds)
    credentials = check_key(key_id, fields, emulator.credentials)
    parts = urlsplit(target)
    check_signature(credentials, method, parts.path, parts.query, headers, sent_signature)


def _reset(emulator: Emulator) -> dict[str, bool]:
    emulator.reset()
    return {"ok": True}
