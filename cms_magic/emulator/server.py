"""A local, signature-verifying stand-in for CloudMonitor's ``POST /event/custom/upload``.

The emulator is a handler before it is a server:

* :class:`Emulator` is a plain request -> response function with state, no sockets:
  ``handle(method, target, headers, body)`` returns an :class:`EmulatorResponse`.
  ``handle_request`` adapts it to ``httpx.MockTransport`` for fast in-process tests.
* :class:`EmulatorServer` serves the same handler over HTTP/1.1 (keep-alive) on
  127.0.0.1 in a thread, for socket-level tests, notebooks and demos; :func:`serve`
  starts one, and ``python -m cms_magic.emulator`` runs one until Ctrl-C.

A request is checked the way the service checks it, in this order, and refused
with the first problem found; the ``msg`` says what is wrong and how to fix it:

1. the path is ``/event/custom/upload`` (else 404) and the method ``POST`` (else 405);
2. the body is at most ``max_body_bytes`` (400);
3. the required headers are there and well formed (400);
4. Content-Length and Content-MD5 match the body (400);
5. Date is an RFC 1123 date (400) within ``max_skew_seconds`` of the clock (403);
6. the AccessKeyId is known, and an STS key's token is sent (403);
7. the signature, recomputed from the request as received, matches (403; the
   message shows the server's string to sign, as Alibaba's services do);
8. the per-AccessKeyId quota of ``qps`` requests per second (403 Throttling,
   ``Retry-After: 1``);
9. the body is a JSON array of 1 to 100 valid events (400).

Only a request that passes everything has its events stored. Every request,
accepted or not, is logged (see :meth:`Emulator.requests`).

The demo credentials (:data:`DEMO_ACCESS_KEY_ID`, :data:`DEMO_ACCESS_KEY_SECRET`)
are public on purpose: they open nothing but this emulator.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import hmac
import http
import ipaddress
import json
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from cms_magic.credentials.static import Credentials, mask
from cms_magic.errors import ConfigError, CredentialsError
from cms_magic.protocol import (
    DEFAULT_QPS,
    MAX_BODY_BYTES,
    MAX_CLOCK_SKEW_SECONDS,
    MAX_EVENTS_PER_REQUEST,
    UPLOAD_PATH,
)
from cms_magic.sending.quota import TokenBucket
from cms_magic.signing import (
    API_VERSION,
    CONTENT_TYPE,
    SIGNATURE_METHOD,
    content_md5,
    format_date,
    request_string_to_sign,
    signature,
)

__all__ = [
    "ADMIN_PREFIX",
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "Emulator",
    "EmulatorResponse",
    "EmulatorServer",
    "demo_credentials",
    "main",
    "serve",
]

#: The demo AccessKey pair the emulator accepts by default. Public on purpose.
DEMO_ACCESS_KEY_ID: Final = "LTAIcmsEmulatorDemo"
DEMO_ACCESS_KEY_SECRET: Final = "cms-emulator-demo-secret"  # noqa: S105 - a public demo secret

#: Paths under this prefix are the server's admin endpoints, not part of the service.
ADMIN_PREFIX: Final = "/_emulator/"

#: Event fields the service knows; any other key is refused.
_EVENT_FIELDS: Final = ("content", "groupId", "name", "time")
_GROUP_ID_MAX: Final = 2**63 - 1  # the document's type is Long
_TIME_PATTERN: Final = re.compile(r"^\d{8}T\d{6}\.\d{3}[+-]\d{4}$", re.ASCII)
_TIME_FORMAT: Final = "%Y%m%dT%H%M%S.%f%z"
_SHOWN_VALUE_CHARS: Final = 80


def demo_credentials() -> Credentials:
    """The emulator's demo AccessKey pair, which opens nothing but the emulator."""
    return Credentials(
        DEMO_ACCESS_KEY_ID,
        DEMO_ACCESS_KEY_SECRET,
        source="cms_magic emulator demo credentials",
    )


@dataclass(frozen=True)
class Faults:
    """Faults injected into upload requests, each at a rate from 0 to 1, reproducibly.

    Before a request is processed (nothing stored): ``reset_before`` drops the
    connection without an answer, ``error_500`` and ``error_503`` answer with
    that status. After a request was accepted (its events ARE stored):
    ``reset_after`` drops the connection without an answer, ``delay`` holds the
    answer back ``delay_seconds`` (past a client's timeout), ``malformed``
    answers 200 with a body that is not the service's JSON. Events whose
    content contains ``poison_marker`` make their request a 400. Decisions come
    from ``random.Random(seed)``, one draw before and one after each request.
    Throttling beyond the quota is the emulator's ``qps``.
    """

    seed: int = 0
    reset_before: float = 0.0
    error_500: float = 0.0
    error_503: float = 0.0
    reset_after: float = 0.0
    delay: float = 0.0
    delay_seconds: float = 5.0
    malformed: float = 0.0
    poison_marker: str | None = None

    def __post_init__(self) -> None:
        rates = {
            "reset_before": self.reset_before,
            "error_500": self.error_500,
            "error_503": self.error_503,
            "reset_after": self.reset_after,
            "delay": self.delay,
            "malformed": self.malformed,
        }
        for name, rate in rates.items():
            if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ConfigError(f"fault {name!r} must be a rate from 0 to 1, got {_show(rate)}")
        if self.reset_before + self.error_500 + self.error_503 > 1:
            raise ConfigError("reset_before + error_500 + error_503 must not exceed 1")
        if self.reset_after + self.delay + self.malformed > 1:
            raise ConfigError("reset_after + delay + malformed must not exceed 1")
        if not 0 <= self.delay_seconds <= 600:
            raise ConfigError(f"delay_seconds must be 0..600, got {_show(self.delay_seconds)}")
        if self.poison_marker == "":
            raise ConfigError("poison_marker must be a non-empty string or None")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Faults from a JSON object (the body of ``POST /_emulator/faults``)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


_MALFORMED_BODIES: Final = (
    b'{"code":"200","msg":',
    b"<html><body>502 Bad Gateway</body></html>",
    b"",
    b'{"status":"ok"}',
)


@dataclass(frozen=True)
class EmulatorResponse:
    """What the handler answers: an HTTP status, headers and a JSON body.

    The body is ``{"code": "<status>", "msg": "...", "requestId": "..."}``; ``msg``
    is empty on success. ``fault`` names an injected transport fault the server
    acts out (``reset_before``, ``reset_after``, ``delay``), else None.
    """

    status: int
    headers: dict[str, str]
    body: bytes
    fault: str | None = None

    def json(self) -> Any:
        """The parsed body."""
        return json.loads(self.body)


class _Refusal(Exception):
    """Raised by a check to end handling with an error response."""

    def __init__(
        self,
        status: int,
        msg: str,
        *,
        headers: Mapping[str, str] | None = None,
        events: int | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.headers = dict(headers or {})
        self.events = events


# --------------------------------------------------------------------------- the handler


class Emulator:
    """The service's checks and state, as a plain thread-safe request -> response handler.

    ``credentials`` are the keys accepted (default: :func:`demo_credentials`); a key
    with a ``security_token`` is an STS key and requires that token. ``qps`` is the
    quota per AccessKeyId (0 turns it off). ``clock`` (epoch seconds) is used for
    Date checks and logged times, ``monotonic`` for the quota; tests inject both.
    ``poison_marker``, when set, makes any event whose content contains it refuse
    its whole request (400), to exercise client-side bisecting.
    """

    def __init__(
        self,
        credentials: Credentials | Iterable[Credentials] | None = None,
        *,
        qps: float = DEFAULT_QPS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_skew_seconds: float = MAX_CLOCK_SKEW_SECONDS,
        poison_marker: str | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.credentials: tuple[Credentials, ...] = _credentials_tuple(credentials)
        self._keys = {c.access_key_id: c for c in self.credentials}
        if max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes must be >= 1, got {max_body_bytes!r}")
        if max_skew_seconds < 0:
            raise ConfigError(f"max_skew_seconds must be >= 0, got {max_skew_seconds!r}")
        if poison_marker == "":
            raise ConfigError("poison_marker must be a non-empty string or None")
        self.max_body_bytes = max_body_bytes
        self.max_skew_seconds = max_skew_seconds
        self.poison_marker = poison_marker
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._qps = _check_qps(qps)
        self._buckets: dict[str, TokenBucket] = {}
        self._events: list[dict[str, Any]] = []
        self._log: list[dict[str, Any]] = []
        self._faults = Faults()
        self._rng = random.Random(0)  # noqa: S311 - reproducible fault draws, not security
        self.set_faults(faults or Faults())

    def __repr__(self) -> str:
        ids = ", ".join(mask(c.access_key_id) for c in self.credentials)
        return f"Emulator(keys=[{ids}], qps={self._qps:g})"

    # ----------------------------------------------------------------- state

    @property
    def qps(self) -> float:
        """Requests per second allowed per AccessKeyId; 0 means no quota."""
        return self._qps

    def set_qps(self, qps: float) -> None:
        """Change the quota (0 turns it off); every key starts again with a full bucket."""
        checked = _check_qps(qps)
        with self._lock:
            self._qps = checked
            self._buckets.clear()

    @property
    def faults(self) -> Faults:
        """The faults being injected (none by default)."""
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Inject these faults from now on; the random sequence restarts from their seed."""
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)  # noqa: S311 - reproducible fault draws

    def _draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def events(self) -> list[dict[str, Any]]:
        """The accepted events, in the order received, as parsed from the bodies."""
        with self._lock:
            return [dict(event) for event in self._events]

    def requests(self) -> list[dict[str, Any]]:
        """One record per request handled, accepted or not, in order.

        Keys: ``status`` (HTTP), ``code``, ``msg``, ``events`` (how many the body
        held, when it could be read as an array), ``bytes`` (of body), ``key_id``
        (from Authorization, or ``None``), ``time`` (ISO 8601, UTC) and ``request_id``.
        """
        with self._lock:
            return [dict(record) for record in self._log]

    def reset(self) -> None:
        """Forget accepted events and logged requests, and refill every quota bucket."""
        with self._lock:
            self._events.clear()
            self._log.clear()
            self._buckets.clear()

    # ----------------------------------------------------------------- handling

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> EmulatorResponse:
        """Check one request as the service would and answer it.

        ``target`` is the request target as sent (path and optional query),
        ``headers`` the (name, value) pairs as received, in any case.
        """
        pairs = _header_pairs(headers)
        fields = _header_fields(pairs)
        faults = self._faults
        if urlsplit(target).path == UPLOAD_PATH:
            before = self._draw()
            key = _authorization_key_id(fields)
            if before < faults.reset_before:
                return self._answer(
                    0,
                    "injected fault: connection reset before the request was read",
                    key_id=key,
                    nbytes=len(body),
                    events=0,
                    fault="reset_before",
                )
            if before < faults.reset_before + faults.error_500:
                return self._answer(
                    500,
                    "injected fault: internal server error",
                    key_id=key,
                    nbytes=len(body),
                    events=_count_events(body),
                )
            if before < faults.reset_before + faults.error_500 + faults.error_503:
                return self._answer(
                    503,
                    "injected fault: service unavailable",
                    key_id=key,
                    nbytes=len(body),
                    events=_count_events(body),
                )
        try:
            path, query = self._check_route(method, target)
            self._check_size(len(body))
            key_id, sent_signature = self._check_headers(fields, body)
            self._check_body_digest(fields, body)
            self._check_date(fields["date"])
            credentials = self._check_key(key_id, fields)
            self._check_signature(credentials, method, path, query, pairs, sent_signature)
            self._check_quota(key_id)
            events = _parse_events(body, faults.poison_marker or self.poison_marker)
        except _Refusal as refusal:
            if refusal.events is not None:
                count = refusal.events
            elif len(body) <= self.max_body_bytes:
                count = _count_events(body)
            else:
                count = 0
            return self._answer(
                refusal.status,
                refusal.msg,
                key_id=_authorization_key_id(fields),
                nbytes=len(body),
                events=count,
                extra_headers=refusal.headers,
            )
        after = self._draw()
        fault: str | None = None
        if after < faults.reset_after:
            fault = "reset_after"
        elif after < faults.reset_after + faults.delay:
            fault = "delay"
        answer = self._answer(
            200,
            "",
            key_id=key_id,
            nbytes=len(body),
            events=len(events),
            accepted=events,
            fault=fault,
        )
        if fault is None and after < faults.reset_after + faults.delay + faults.malformed:
            malformed = _MALFORMED_BODIES[int(after * 1e6) % len(_MALFORMED_BODIES)]
            return EmulatorResponse(200, answer.headers, malformed, "malformed")
        return answer

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """:meth:`handle` for ``httpx.MockTransport(emulator.handle_request)``.

        Injected transport faults become the exceptions httpx raises for them:
        a reset is a ``RemoteProtocolError``, a delay a ``ReadTimeout``.
        """
        body = request.read()
        target = request.url.raw_path.decode("ascii")
        answer = self.handle(request.method, target, request.headers.multi_items(), body)
        if answer.fault in ("reset_before", "reset_after"):
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if answer.fault == "delay":
            raise httpx.ReadTimeout("injected delay past the client's timeout", request=request)
        return httpx.Response(
            answer.status, headers=answer.headers, content=answer.body, request=request
        )

    def reject(
        self,
        status: int,
        msg: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        nbytes: int = 0,
    ) -> EmulatorResponse:
        """Log and answer a request refused before its body was read.

        For servers built on this handler: a body too large to read, or framing
        the server cannot read, is refused here so the log still holds it.
        """
        fields = _header_fields(_header_pairs(headers))
        return self._answer(
            status, msg, key_id=_authorization_key_id(fields), nbytes=nbytes, events=0
        )

    # ----------------------------------------------------------------- the checks, in order

    def _check_route(self, method: str, target: str) -> tuple[str, str]:
        parts = urlsplit(target)
        path, query = parts.path, parts.query
        if path != UPLOAD_PATH:
            raise _Refusal(
                404,
                f"no such resource {_show(path)}: events are uploaded with POST {UPLOAD_PATH}",
            )
        if method != "POST":
            raise _Refusal(
                405,
                f"method {_show(method)} is not allowed on {UPLOAD_PATH}: use POST",
                headers={"Allow": "POST"},
            )
        return path, query

    def _check_size(self, nbytes: int) -> None:
        if nbytes > self.max_body_bytes:
            raise _Refusal(400, _too_large(nbytes, self.max_body_bytes))

    def _check_headers(self, fields: Mapping[str, str], body: bytes) -> tuple[str, str]:
        """The required headers; returns the AccessKeyId and signature from Authorization."""
        required = ["authorization", "content-md5", "content-type", "date"]
        required += ["x-cms-signature", "x-cms-api-version", "x-cms-ip"]
        if body:
            required.append("content-length")
        for name in required:
            if not fields.get(name):
                raise _Refusal(
                    400, f"missing required header {_HEADER_NAMES[name]} ({_HEADER_HINTS[name]})"
                )
        key_id, _, sent_signature = fields["authorization"].partition(":")
        if not key_id or not sent_signature or any(ch.isspace() for ch in key_id):
            raise _Refusal(
                400,
                "header Authorization must be '<AccessKeyId>:<Signature>', "
                f"got {_show(fields['authorization'])}",
            )
        media_type = fields["content-type"].split(";", 1)[0].strip().lower()
        if media_type != CONTENT_TYPE:
            raise _Refusal(
                400,
                f"header Content-Type must be {CONTENT_TYPE!r}, "
                f"got {_show(fields['content-type'])}",
            )
        for name, wanted in (
            ("x-cms-signature", SIGNATURE_METHOD),
            ("x-cms-api-version", API_VERSION),
        ):
            if fields[name] != wanted:
                raise _Refusal(400, f"header {name} must be {wanted!r}, got {_show(fields[name])}")
        return key_id, sent_signature

    def _check_body_digest(self, fields: Mapping[str, str], body: bytes) -> None:
        declared = fields.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                raise _Refusal(
                    400, f"header Content-Length must be a byte count, got {_show(declared)}"
                )
            if int(declared) != len(body):
                raise _Refusal(
                    400,
                    f"header Content-Length is {declared} but the body has {len(body)} bytes "
                    "(count UTF-8 bytes, not characters)",
                )
        sent, actual = fields["content-md5"], content_md5(body)
        if sent != actual:
            hint = ""
            if sent.upper() == actual:
                hint = "; send it in upper case"
            elif len(sent) == 24 and sent.endswith("=="):
                hint = "; it looks like base64, but CloudMonitor wants upper-case hex"
            raise _Refusal(
                400,
                f"header Content-MD5 is {_show(sent)} but the MD5 of the {len(body)}-byte "
                f"body is {actual!r} (upper-case hex of the body bytes){hint}",
            )

    def _check_date(self, text: str) -> None:
        try:
            sent = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise _Refusal(
                400,
                f"header Date {_show(text)} is not an RFC 1123 date "
                "like 'Mon, 23 Oct 2017 06:51:11 GMT'",
            ) from None
        if sent.tzinfo is None:  # "-0000": UTC, source unknown
            sent = sent.replace(tzinfo=timezone.utc)
        now = self.clock()
        offset = sent.timestamp() - now
        if abs(offset) > self.max_skew_seconds:
            direction = "behind" if offset < 0 else "ahead of"
            raise _Refusal(
                403,
                f"Date {_show(text)} is {abs(offset):.0f} s off the server clock "
                f"({direction} the server time {format_date(now)!r}; at most "
                f"{self.max_skew_seconds:g} s either way is accepted): sign each request "
                "with the current time and check the client's clock",
            )

    def _check_key(self, key_id: str, fields: Mapping[str, str]) -> Credentials:
        credentials = self._keys.get(key_id)
        if credentials is None:
            known = ", ".join(mask(c.access_key_id) for c in self.credentials)
            raise _Refusal(
                403, f"unknown AccessKeyId {_show(key_id)} (this emulator accepts {known})"
            )
        token = credentials.security_token
        if token is None:
            return credentials
        sent = fields.get("x-cms-security-token")
        if not sent:
            raise _Refusal(
                403,
                f"AccessKeyId {_show(key_id)} is a temporary (STS) key: send its security "
                "token in x-cms-security-token, with x-cms-caller-type: token",
            )
        if not hmac.compare_digest(sent.encode("utf-8"), token.encode("utf-8")):
            raise _Refusal(
                403,
                f"x-cms-security-token does not match the token of AccessKeyId {_show(key_id)} "
                "(expired, or from another AssumeRole call?)",
            )
        caller_type = fields.get("x-cms-caller-type")
        if caller_type != "token":
            raise _Refusal(
                403,
                "header x-cms-caller-type must be 'token' when a security token is sent, "
                f"got {_show(caller_type)}",
            )
        return credentials

    def _check_signature(
        self,
        credentials: Credentials,
        method: str,
        path: str,
        query: str,
        pairs: list[tuple[str, str]],
        sent_signature: str,
    ) -> None:
        sign_string = request_string_to_sign(method, path, query, pairs)
        expected = signature(credentials.access_key_secret, sign_string)
        if not hmac.compare_digest(sent_signature.encode("utf-8"), expected.encode("ascii")):
            raise _Refusal(
                403,
                "the request signature does not match the one the server computed: "
                f"the server's string to sign is '{_escape(sign_string)}'; sign exactly "
                "this string with HMAC-SHA1 keyed by the AccessKeySecret, and send "
                "'<AccessKeyId>:<upper-case hex signature>' in Authorization",
            )

    def _check_quota(self, key_id: str) -> None:
        with self._lock:
            qps = self._qps
            if qps == 0:
                return
            bucket = self._buckets.get(key_id)
            if bucket is None:
                # TokenBucket needs room for one request; a sub-1 qps still allows one.
                bucket = TokenBucket(qps, max(qps, 1.0), clock=self.monotonic)
                self._buckets[key_id] = bucket
        if not bucket.try_acquire():
            raise _Refusal(
                403,
                f"Throttling: rate limit exceeded, at most {qps:g} requests per second "
                f"per account (AccessKeyId {_show(key_id)}); slow down and retry after 1 s",
                headers={"Retry-After": "1"},
            )

    # ----------------------------------------------------------------- the answer

    def _answer(
        self,
        status: int,
        msg: str,
        *,
        key_id: str | None,
        nbytes: int,
        events: int,
        accepted: list[dict[str, Any]] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        fault: str | None = None,
    ) -> EmulatorResponse:
        """Store accepted events, log the request and build the response."""
        now = self.clock()
        code = str(status)
        request_id = str(uuid.uuid4()).upper()
        record = {
            "status": status,
            "code": code,
            "msg": msg,
            "events": events,
            "bytes": nbytes,
            "key_id": key_id,
            "time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
            "request_id": request_id,
            "fault": fault,
        }
        with self._lock:
            if accepted:
                self._events.extend(accepted)
            self._log.append(record)
        headers = {"Content-Type": CONTENT_TYPE, "Date": format_date(now)}
        headers.update(extra_headers or {})
        body = {"code": code, "msg": msg, "requestId": request_id}
        return EmulatorResponse(status, headers, _json_bytes(body), fault)


# --------------------------------------------------------------------------- helpers


_HEADER_NAMES: Final = {
    "authorization": "Authorization",
    "content-md5": "Content-MD5",
    "content-type": "Content-Type",
    "content-length": "Content-Length",
    "date": "Date",
    "x-cms-signature": "x-cms-signature",
    "x-cms-api-version": "x-cms-api-version",
    "x-cms-ip": "x-cms-ip",
}

_HEADER_HINTS: Final = {
    "authorization": "'<AccessKeyId>:<Signature>'",
    "content-md5": "the MD5 of the body bytes as upper-case hex",
    "content-type": f"{CONTENT_TYPE!r}",
    "content-length": "the body's length in bytes",
    "date": "the time of the request as an RFC 1123 date, e.g. 'Mon, 23 Oct 2017 06:51:11 GMT'",
    "x-cms-signature": f"{SIGNATURE_METHOD!r}",
    "x-cms-api-version": f"{API_VERSION!r}",
    "x-cms-ip": "the IP address of the reporting host",
}


def _credentials_tuple(
    credentials: Credentials | Iterable[Credentials] | None,
) -> tuple[Credentials, ...]:
    if credentials is None:
        return (demo_credentials(),)
    items = (credentials,) if isinstance(credentials, Credentials) else tuple(credentials)
    if not items:
        raise ConfigError("credentials must hold at least one Credentials")
    seen: dict[str, Credentials] = {}
    for item in items:
        if not isinstance(item, Credentials):
            raise ConfigError(f"credentials must be Credentials, got {type(item).__name__}")
        if item.access_key_id in seen and seen[item.access_key_id] != item:
            raise ConfigError(
                f"AccessKeyId {item.masked_id!r} is given twice with different secrets or tokens"
            )
        seen[item.access_key_id] = item
    return items


def _check_qps(qps: float) -> float:
    if isinstance(qps, bool) or not isinstance(qps, int | float) or not qps >= 0:
        raise ConfigError(f"qps must be a number >= 0 (0 turns the quota off), got {qps!r}")
    return float(qps)


def _header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]


def _header_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names to trimmed values; the last of repeated headers wins, as in signing."""
    return {name.strip().lower(): value.strip() for name, value in pairs}


def _authorization_key_id(fields: Mapping[str, str]) -> str | None:
    key_id, colon, _ = fields.get("authorization", "").partition(":")
    return key_id if colon and key_id else None


def _show(value: object) -> str:
    """A value for a message: strings quoted, others as JSON, cut to 80 characters."""
    text = repr(value) if isinstance(value, str) or value is None else _json_text(value)
    if len(text) > _SHOWN_VALUE_CHARS:
        text = f"{text[:_SHOWN_VALUE_CHARS]}... ({len(text)} characters)"
    return text


def _json_text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def _escape(text: str) -> str:
    """Backslash-escape line breaks and tabs, so a multi-line string reads on one line."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _too_large(nbytes: int, limit: int, *, declared: bool = False) -> str:
    what = "Content-Length declares a body of" if declared else "the body has"
    return (
        f"{what} {nbytes} bytes, over the limit of {limit} bytes per request: "
        "split the events into smaller requests"
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _count_events(body: bytes) -> int:
    """How many events a body holds, if it reads as a JSON array; else 0."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return 0
    return len(parsed) if isinstance(parsed, list) else 0


def _parse_events(body: bytes, poison_marker: str | None) -> list[dict[str, Any]]:
    """The body as a list of valid events, or a 400 refusal naming the first problem."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refusal(400, f"body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        parsed: Any = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _Refusal(
            400,
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except ValueError as exc:
        raise _Refusal(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _Refusal(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(parsed, list):
        raise _Refusal(
            400,
            f"body must be a JSON array of events, got {_json_type(parsed)}",
        )
    if not parsed:
        raise _Refusal(400, "body must hold at least 1 event, got an empty array", events=0)
    if len(parsed) > MAX_EVENTS_PER_REQUEST:
        raise _Refusal(
            400,
            f"body holds {len(parsed)} events, over the limit of {MAX_EVENTS_PER_REQUEST} "
            "per request: split them into smaller requests",
            events=len(parsed),
        )
    for index, event in enumerate(parsed):
        problem = _event_problem(event)
        if problem is None and poison_marker is not None and poison_marker in event["content"]:
            problem = "content contains the poison marker"
        if problem is not None:
            raise _Refusal(400, f"event {index}: {problem}", events=len(parsed))
    return parsed


def _event_problem(event: object) -> str | None:
    """What is wrong with one event (field, rule and value), or ``None``."""
    if not isinstance(event, dict):
        return f"must be a JSON object, got {_json_type(event)} {_show(event)}"
    for name in ("name", "content"):
        if name not in event:
            return f"{name!r} is required"
        value = event[name]
        if not isinstance(value, str):
            return f"{name!r} must be a string, got {_show(value)}"
        if not value:
            return f"{name!r} must not be empty"
    if "groupId" in event:
        group_id = event["groupId"]
        if (
            isinstance(group_id, bool)
            or not isinstance(group_id, int)
            or not 0 <= group_id <= _GROUP_ID_MAX
        ):
            return f"'groupId' must be an integer >= 0 (a Long), got {_show(group_id)}"
    if "time" in event and not _valid_time(event["time"]):
        return (
            "'time' must be 'yyyyMMddTHHmmss.SSS+zzzz' (e.g. '20171023T144439.948+0800') "
            f"or epoch milliseconds, got {_show(event['time'])}"
        )
    unknown = sorted(set(event) - set(_EVENT_FIELDS))
    if unknown:
        return f"unknown field {unknown[0]!r} (allowed: {', '.join(_EVENT_FIELDS)})"
    return None


def _valid_time(value: object) -> bool:
    """A real ``yyyyMMddTHHmmss.SSS±zzzz`` date/time, or epoch milliseconds (digits or int)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    if not isinstance(value, str):
        return False
    if value.isascii() and value.isdigit():
        return True
    if not _TIME_PATTERN.match(value):
        return False
    try:
        datetime.strptime(value, _TIME_FORMAT)
    except ValueError:
        return False
    return True


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


# --------------------------------------------------------------------------- the server

#: After refusing a body unread, read and discard at most this much for this long, so
#: the client sees the 400 instead of a connection reset.
_LINGER_SECONDS: Final = 2.0
_LINGER_MAX_BYTES: Final = 16 * 1024 * 1024
_ADMIN_MAX_BODY: Final = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive front of :class:`Emulator`; each response is one ``sendall``."""

    protocol_version = "HTTP/1.1"
    server_version = "cms_magic-emulator"
    timeout = 30  # seconds; slow or half-open clients are dropped
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the emulator's own log is :meth:`Emulator.requests`."""

    def handle_expect_100(self) -> bool:
        """Say ``100 Continue`` only for a body the emulator will read."""
        length = _declared_length(self.headers.get("Content-Length"))
        if length is not None and length <= self.server.emulator.max_body_bytes:
            self.connection.sendall(f"{self.protocol_version} 100 Continue\r\n\r\n".encode())
        return True

    def _dispatch(self) -> None:
        if urlsplit(self.path).path.startswith(ADMIN_PREFIX):
            self._admin()
        else:
            self._upload()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    # ----------------------------------------------------------------- upload

    def _upload(self) -> None:
        emulator = self.server.emulator
        headers = self.headers.items()
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            msg = (
                f"Transfer-Encoding {encoding.strip()!r} is not supported: "
                "send the body with a Content-Length header"
            )
            self._refuse_unread(emulator.reject(400, msg, headers=headers))
            return
        raw_length = self.headers.get("Content-Length")
        length = 0 if raw_length is None else _declared_length(raw_length)
        if length is None:
            msg = f"header Content-Length must be a byte count, got {_show(raw_length)}"
            self._refuse_unread(emulator.reject(400, msg, headers=headers))
            return
        if length > emulator.max_body_bytes:
            msg = _too_large(length, emulator.max_body_bytes, declared=True)
            self._refuse_unread(emulator.reject(400, msg, headers=headers, nbytes=length))
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return
        answer = emulator.handle(self.command, self.path, headers, body)
        if answer.fault in ("reset_before", "reset_after"):
            self._reset_connection()
            return
        if answer.fault == "delay":
            self.server.stopping.wait(emulator.faults.delay_seconds)
        self._send(answer)

    def _reset_connection(self) -> None:
        """Drop the connection with a TCP reset, sending no answer (an injected fault)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    # ----------------------------------------------------------------- admin

    def _admin(self) -> None:
        emulator = self.server.emulator
        now = emulator.clock()
        raw_length = self.headers.get("Content-Length")
        length = 0 if raw_length is None else _declared_length(raw_length)
        if (
            length is None
            or length > _ADMIN_MAX_BODY
            or self.headers.get("Transfer-Encoding") is not None
        ):
            msg = "admin endpoints take no body (or a small one with a Content-Length)"
            self._refuse_unread(_admin_response(400, {"code": "400", "msg": msg}, now))
            return
        payload = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path == "/_emulator/faults" and self.command == "POST":
            try:
                faults = Faults.from_dict(json.loads(payload or b"{}"))
            except (ValueError, TypeError, ConfigError) as exc:
                self._send(_admin_response(400, {"code": "400", "msg": str(exc)}, now))
                return
            emulator.set_faults(faults)
            self._send(_admin_response(200, faults.to_dict(), now))
            return
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
            self._send(_admin_response(404, {"code": "404", "msg": msg}, now))
            return
        method, action = route
        if self.command != method and not (self.command == "HEAD" and method == "GET"):
            msg = f"use {method} {path}, not {self.command}"
            answer = _admin_response(405, {"code": "405", "msg": msg}, now)
            answer.headers["Allow"] = method
            self._send(answer)
            return
        self._send(_admin_response(200, action(), now))

    # ----------------------------------------------------------------- writing

    def _send(self, answer: EmulatorResponse, *, close: bool = False) -> None:
        """Write the complete response (status line, headers, body) in one ``sendall``."""
        if close:
            self.close_connection = True
        lines = [f"{self.protocol_version} {answer.status} {http.HTTPStatus(answer.status).phrase}"]
        lines.append(f"Server: {self.server_version}")
        lines.extend(f"{name}: {value}" for name, value in answer.headers.items())
        lines.append(f"Content-Length: {len(answer.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.connection.sendall(head if self.command == "HEAD" else head + answer.body)

    def _refuse_unread(self, answer: EmulatorResponse) -> None:
        """Answer without reading the body, then close after a short lingering drain.

        Closing a socket with unread input makes the kernel send a reset, which can
        reach the client before it reads the answer; draining (and discarding) what
        the client still sends, for a bounded time, lets it see the 400.
        """
        self._send(answer, close=True)
        connection = self.connection
        deadline = time.monotonic() + _LINGER_SECONDS
        drained = 0
        try:
            connection.shutdown(socket.SHUT_WR)
            while drained < _LINGER_MAX_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                connection.settimeout(remaining)
                chunk = connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass


def _declared_length(raw: str | None) -> int | None:
    """A Content-Length value as an int, ``None`` if absent or not a byte count."""
    if raw is None:
        return None
    text = raw.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _admin_response(status: int, payload: object, now: float) -> EmulatorResponse:
    headers = {"Content-Type": CONTENT_TYPE, "Date": format_date(now)}
    return EmulatorResponse(status, headers, _json_bytes(payload))


def _reset(emulator: Emulator) -> dict[str, bool]:
    emulator.reset()
    return {"ok": True}


class EmulatorServer(ThreadingHTTPServer):
    """An :class:`Emulator` served over HTTP/1.1 on ``host:port`` (port 0: any free one).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    Besides the upload path it answers admin endpoints: ``GET /_emulator/events``,
    ``GET /_emulator/requests``, ``POST /_emulator/reset``, ``GET /_emulator/health`` and
    ``GET|POST /_emulator/faults``.
    ``request_timeout`` drops a connection that stays silent that long.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        emulator: Emulator | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self.emulator = emulator if emulator is not None else Emulator()
        self.request_timeout = request_timeout
        self._state_lock = threading.Lock()
        self._open_connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        self._connections_accepted = 0
        self._thread: threading.Thread | None = None
        self._stopped = False
        #: Set by :meth:`stop`; injected delays end early when it is set.
        self.stopping = threading.Event()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._thread else "not started"
        return f"EmulatorServer({self.url!r}, {state})"

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self.server_address[:2]
        host = host.decode("ascii") if isinstance(host, bytes) else str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def credentials(self) -> Credentials:
        """The first AccessKey pair the emulator accepts."""
        return self.emulator.credentials[0]

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the server has accepted so far."""
        with self._state_lock:
            return self._connections_accepted

    def events(self) -> list[dict[str, Any]]:
        """The accepted events; see :meth:`Emulator.events`."""
        return self.emulator.events()

    def requests(self) -> list[dict[str, Any]]:
        """The request log; see :meth:`Emulator.requests`."""
        return self.emulator.requests()

    def reset(self) -> None:
        """Forget events and requests, refill quotas; see :meth:`Emulator.reset`."""
        self.emulator.reset()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> EmulatorServer:
        """Serve in a daemon thread; returns ``self``. Starting twice is harmless."""
        with self._state_lock:
            if self._stopped:
                raise RuntimeError("this EmulatorServer was stopped; start a new one")
            if self._thread is not None:
                return self
            self._thread = threading.Thread(
                target=self.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"cms_magic emulator {self.url}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and open connections, join the threads. Idempotent."""
        with self._state_lock:
            if self._stopped:
                return
            self._stopped = True
            self.stopping.set()
            thread = self._thread
        if thread is not None:
            self.shutdown()
            thread.join()
        self.server_close()
        with self._state_lock:
            connections = list(self._open_connections)
            handlers = list(self._handler_threads)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        for handler in handlers:
            handler.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- socketserver hooks

    def server_bind(self) -> None:
        """Bind without :func:`socket.getfqdn`, which can stall on a DNS lookup."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host.decode("ascii") if isinstance(host, bytes) else str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection with TCP_NODELAY (else each response waits ~40 ms for an ACK)."""
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._state_lock:
            self._connections_accepted += 1
            self._open_connections.add(connection)
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Handle the connection in a daemon thread that :meth:`stop` can join."""
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="cms_magic emulator connection",
            daemon=True,
        )
        with self._state_lock:
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()]
            self._handler_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._state_lock:
            self._open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else as the stdlib does."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    credentials: Credentials | Iterable[Credentials] | None = None,
    qps: float = DEFAULT_QPS,
    request_timeout: float = 30.0,
    **emulator_kwargs: Any,
) -> EmulatorServer:
    """Start an emulator on ``host:port`` in a daemon thread and return its server.

    ``with serve() as emu:`` stops it on exit. Other keyword arguments go to
    :class:`Emulator` (``clock``, ``monotonic``, ``max_body_bytes``, ...).
    """
    emulator = Emulator(credentials, qps=qps, **emulator_kwargs)
    server = EmulatorServer(host, port, emulator=emulator, request_timeout=request_timeout)
    return server.start()


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python -m cms_magic.emulator``: serve until Ctrl-C or SIGTERM, then return 0."""
    parser = argparse.ArgumentParser(
        prog="python -m cms_magic.emulator",
        description=(
            "Run a local, signature-verifying CloudMonitor custom-event endpoint "
            f"(POST {UPLOAD_PATH}) for demos and tests."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: 0, any free port)")
    parser.add_argument(
        "--access-key-id", help="AccessKeyId to accept (default: the public demo pair)"
    )
    parser.add_argument(
        "--access-key-secret",
        help="its AccessKeySecret (visible to local users in the process list: test keys only)",
    )
    parser.add_argument(
        "--qps",
        type=float,
        default=DEFAULT_QPS,
        help="requests per second per AccessKeyId, 0 for no quota (default: %(default)g)",
    )
    args = parser.parse_args(argv)
    if (args.access_key_id is None) != (args.access_key_secret is None):
        parser.error("give both --access-key-id and --access-key-secret, or neither (demo pair)")
    if not args.qps >= 0:
        parser.error(f"--qps must be >= 0, got {args.qps:g}")
    if args.access_key_id is None:
        credentials = demo_credentials()
        shown_id, shown_secret = DEMO_ACCESS_KEY_ID, f"{DEMO_ACCESS_KEY_SECRET} (public demo pair)"
    else:
        try:
            credentials = Credentials(
                args.access_key_id, args.access_key_secret, source="command line"
            )
        except CredentialsError as exc:
            parser.error(str(exc))
        shown_id = credentials.access_key_id
        # masked entirely: even a few characters of a real secret are too many
        shown_secret = f"******** ({len(credentials.access_key_secret)} characters, as given)"
    if not _is_loopback(args.host):
        print(
            f"warning: binding {args.host}, not loopback: other hosts can reach this emulator",
            file=sys.stderr,
        )
    try:
        server = serve(args.host, args.port, credentials=credentials, qps=args.qps)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    restore = _stop_on_signals(stop)
    try:
        quota = f"{args.qps:g} requests/s per AccessKeyId" if args.qps else "off"
        print(f"cms_magic emulator listening on {server.url}", flush=True)
        print(f"  upload:            POST {server.url}{UPLOAD_PATH}")
        print(f"  AccessKeyId:       {shown_id}")
        print(f"  AccessKeySecret:   {shown_secret}")
        print(f"  quota:             {quota}")
        print(f"  admin:             GET {ADMIN_PREFIX}events, {ADMIN_PREFIX}requests, ", end="")
        print(f"{ADMIN_PREFIX}health, {ADMIN_PREFIX}faults; ", end="")
        print(f"POST {ADMIN_PREFIX}reset, {ADMIN_PREFIX}faults")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        server.stop()
    print("cms_magic emulator stopped", file=sys.stderr, flush=True)
    return 0


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Make SIGINT and SIGTERM set ``stop``; return a function that restores the handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda _signum, _frame: stop.set())

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


# --------------------------------------------------------------------------- the embedded instance

_embedded_lock = threading.Lock()
_embedded: list[EmulatorServer] = []  # at most one, process-wide


def embedded() -> EmulatorServer:
    """The process-wide emulator for demos and notebooks, started on first use.

    It listens on 127.0.0.1 (a free port), accepts the demo credentials and
    enforces the default quota. The magic's ``--endpoint local`` and the
    panel's "local emulator" target use it; it is never chosen silently for
    a real endpoint.
    """
    with _embedded_lock:
        if _embedded:
            return _embedded[0]
        server = serve()
        _embedded.append(server)
        return server


def embedded_running() -> EmulatorServer | None:
    """The embedded emulator if it is running, else None (never starts it)."""
    with _embedded_lock:
        return _embedded[0] if _embedded else None


def stop_embedded() -> bool:
    """Stop the embedded emulator; False if it was not running."""
    with _embedded_lock:
        if not _embedded:
            return False
        server = _embedded.pop()
    server.stop()
    return True


if __name__ == "__main__":
    raise SystemExit(main())
