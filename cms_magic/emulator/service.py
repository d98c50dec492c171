"""The upload handler: CloudMonitor's ``POST /event/custom/upload`` as a plain function, no I/O.

:class:`Emulator` is a request -> response handler with state and no sockets:
``handle(method, target, headers, body)`` returns an :class:`EmulatorResponse`,
and ``handle_request`` adapts it to ``httpx.MockTransport`` for fast in-process
tests. :mod:`cms_magic.emulator.server` serves the same handler over HTTP.

A request is checked the way the service checks it, in this order, and refused
with the first problem found (the checks are :mod:`cms_magic.emulator.validation`);
the ``msg`` says what is wrong and how to fix it:

1. the path is ``/event/custom/upload`` (else 404) and the method ``POST`` (else 405);
2. the body is at most ``max_body_bytes`` (400);
3. the required headers are there and well formed (400);
4. Content-Length and Content-MD5 match the body (400);
5. Date is an RFC 1123 date (400) within ``max_skew_seconds`` of the clock (403);
6. the AccessKeyId is known (one of ``credentials``, or minted by the emulator's STS,
   credentials URI or metadata: :class:`~cms_magic.emulator.minted.MintedRegistry`), and an
   STS key's token is sent and is its own (403); a minted key's token must not have
   expired: HTTP 403 with ``code`` ``InvalidSecurityToken.Expired`` and ``msg``
   ``Specified SecurityToken is expired: ...``, the one refusal whose ``code`` is not the
   status (:func:`~cms_magic.emulator.minted.check_minted_key`);
7. the signature, recomputed from the request as received, matches (403; the
   message shows the server's string to sign, as Alibaba's services do, with the
   security token's value replaced by a marker: no answer or log record shows a token);
8. the per-AccessKeyId quota of ``qps`` requests per second (403 Throttling,
   ``Retry-After: 1``);
9. the body is a JSON array of 1 to 100 valid events (400).

Only a request that passes everything has its events stored (in a
:class:`~cms_magic.emulator.store.Store`). Every request, accepted or not, is
logged (see :meth:`Emulator.requests`). Injected faults
(:mod:`cms_magic.emulator.faults`) come before the checks or after acceptance.

The demo credentials (:data:`DEMO_ACCESS_KEY_ID`, :data:`DEMO_ACCESS_KEY_SECRET`)
are public on purpose: they open nothing but this emulator.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from cms_magic.credentials.static import Credentials, mask
from cms_magic.emulator.faults import FaultPicker, Faults, malformed_body
from cms_magic.emulator.minted import MintedRegistry, check_minted_key
from cms_magic.emulator.store import Event, MemoryStore, RequestRecord, Store
from cms_magic.emulator.validation import (
    Refusal,
    authorization_key_id,
    check_body_digest,
    check_date,
    check_headers,
    check_key,
    check_route,
    check_signature,
    check_size,
    count_events,
    header_fields,
    header_pairs,
    hidden_fields,
    hide,
    parse_events,
    security_tokens,
    throttled,
)
from cms_magic.errors import ConfigError
from cms_magic.protocol import DEFAULT_QPS, MAX_BODY_BYTES, MAX_CLOCK_SKEW_SECONDS, UPLOAD_PATH
from cms_magic.sending.quota import TokenBucket
from cms_magic.signing import CONTENT_TYPE, format_date

__all__ = [
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "Emulator",
    "EmulatorResponse",
    "demo_credentials",
    "json_response",
]

#: The demo AccessKey pair the emulator accepts by default. Public on purpose.
DEMO_ACCESS_KEY_ID: Final = "LTAIcmsEmulatorDemo"
DEMO_ACCESS_KEY_SECRET: Final = "cms-emulator-demo-secret"  # noqa: S105 - a public demo secret

_BEFORE_ANSWERS: Final = {
    "reset_before": (0, "injected fault: connection reset before the request was read"),
    "error_500": (500, "injected fault: internal server error"),
    "error_503": (503, "injected fault: service unavailable"),
}


def demo_credentials() -> Credentials:
    """The emulator's demo AccessKey pair, which opens nothing but the emulator."""
    return Credentials(
        DEMO_ACCESS_KEY_ID,
        DEMO_ACCESS_KEY_SECRET,
        source="cms_magic emulator demo credentials",
    )


@dataclass(frozen=True)
class EmulatorResponse:
    """What the handler answers: an HTTP status, headers and a JSON body.

    The body is ``{"code": "<status>", "msg": "...", "requestId": "..."}``; ``msg``
    is empty on success. ``fault`` names the injected fault: one the server acts
    out (``reset_before``, ``reset_after``, ``delay``) or one that made the answer
    (``error_500``, ``error_503``, ``malformed``), else None.
    """

    status: int
    headers: dict[str, str]
    body: bytes
    fault: str | None = None

    def json(self) -> Any:
        """The parsed body."""
        return json.loads(self.body)


def json_response(status: int, payload: object, now: float) -> EmulatorResponse:
    """An answer with ``payload`` as compact JSON, dated ``now`` (epoch seconds)."""
    headers = {"Content-Type": CONTENT_TYPE, "Date": format_date(now)}
    body = json.dumps(payload, separators=(",", ":")).encode("ascii")
    return EmulatorResponse(status, headers, body)


class _Quota:
    """The per-AccessKeyId quota: one token bucket per key, ``qps`` 0 turns it off."""

    __slots__ = ("_buckets", "_lock", "_qps", "monotonic")

    def __init__(self, qps: float, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._qps = qps
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def qps(self) -> float:
        return self._qps

    def set(self, qps: float) -> None:
        with self._lock:
            self._qps = qps
            self._buckets.clear()

    def refill(self) -> None:
        with self._lock:
            self._buckets.clear()

    def check(self, key_id: str) -> None:
        """Take one request from ``key_id``'s bucket, or refuse it (403 Throttling)."""
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
            raise throttled(qps, key_id)


class Emulator:
    """The service's checks and state, as a plain thread-safe request -> response handler.

    ``credentials`` are the keys accepted (default: :func:`demo_credentials`); a key
    with a ``security_token`` is an STS key and requires that token. ``qps`` is the
    quota per AccessKeyId (0 turns it off). ``clock`` (epoch seconds) is used for
    Date checks and logged times, ``monotonic`` for the quota; tests inject both.
    ``poison_marker``, when set, makes any event whose content contains it refuse
    its whole request (400), to exercise client-side bisecting. ``store`` keeps the
    accepted events and the request log (default: a new
    :class:`~cms_magic.emulator.store.MemoryStore`). ``registry`` holds the temporary keys
    the emulator minted (default: its own); uploads signed with one of them and its token
    are accepted until it expires. The STS, credentials-URI and metadata handlers of a
    server share it (:mod:`cms_magic.emulator.routes`).
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
        store: Store | None = None,
        registry: MintedRegistry | None = None,
    ) -> None:
        self.credentials: tuple[Credentials, ...] = _credentials_tuple(credentials)
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise ConfigError(
                "must be a whole number >= 1", option="max_body_bytes", value=max_body_bytes
            )
        if max_body_bytes < 1:
            raise ConfigError("must be >= 1", option="max_body_bytes", value=max_body_bytes)
        if not max_skew_seconds >= 0:
            raise ConfigError(
                "must be a number of seconds >= 0",
                option="max_skew_seconds",
                value=max_skew_seconds,
            )
        if poison_marker is not None and (not isinstance(poison_marker, str) or not poison_marker):
            raise ConfigError(
                "must be a non-empty string or None", option="poison_marker", value=poison_marker
            )
        self.max_body_bytes = max_body_bytes
        self.max_skew_seconds = max_skew_seconds
        self.poison_marker = poison_marker
        self.clock = clock
        self._quota = _Quota(_check_qps(qps), monotonic)
        self._faults = FaultPicker(faults)
        self._store: Store = MemoryStore(clock=clock) if store is None else store
        self.registry = MintedRegistry() if registry is None else registry

    def __repr__(self) -> str:
        ids = ", ".join(mask(c.access_key_id) for c in self.credentials)
        return f"Emulator(keys=[{ids}], qps={self.qps:g})"

    # ----------------------------------------------------------------- settings

    @property
    def monotonic(self) -> Callable[[], float]:
        """The clock of the quota (seconds, any origin)."""
        return self._quota.monotonic

    @property
    def qps(self) -> float:
        """Requests per second allowed per AccessKeyId; 0 means no quota."""
        return self._quota.qps

    def set_qps(self, qps: float) -> None:
        """Change the quota (0 turns it off); every key starts again with a full bucket."""
        self._quota.set(_check_qps(qps))

    @property
    def faults(self) -> Faults:
        """The faults being injected (none by default)."""
        return self._faults.faults

    def set_faults(self, faults: Faults) -> None:
        """Inject these faults from now on; the random sequence restarts from their seed."""
        self._faults.set(faults)

    # ----------------------------------------------------------------- what it was sent

    @property
    def store(self) -> Store:
        """Where the accepted events and the request log are kept."""
        return self._store

    def events(self) -> list[Event]:
        """The accepted events, in the order received, as parsed from the bodies."""
        return self._store.events()

    def requests(self) -> list[RequestRecord]:
        """One record per request handled, accepted or not, in order.

        Keys: ``status`` (HTTP), ``code``, ``msg``, ``events`` (how many the body
        held, when it could be read as an array), ``bytes`` (of body), ``key_id``
        (from Authorization, or ``None``), ``time`` (ISO 8601, UTC), ``request_id``
        and ``fault`` (the injected fault the request met, or ``None``).
        """
        return self._store.requests()

    def reset(self) -> None:
        """Forget accepted events and logged requests, and refill every quota bucket."""
        self._store.clear()
        self._quota.refill()

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
        pairs = header_pairs(headers)
        fields = header_fields(pairs)
        tokens = security_tokens(fields, self.credentials)
        faults = self._faults.faults
        if urlsplit(target).path == UPLOAD_PATH:
            before = faults.before(self._faults.draw())
            if before is not None:
                status, msg = _BEFORE_ANSWERS[before]
                return self._answer(
                    status,
                    msg,
                    key_id=authorization_key_id(fields),
                    nbytes=len(body),
                    events=0 if before == "reset_before" else count_events(body),
                    fault=before,
                    tokens=tokens,
                )
        try:
            events = self._check(method, target, pairs, fields, tokens, body, faults)
        except Refusal as refusal:
            if refusal.events is not None:
                count = refusal.events
            elif len(body) <= self.max_body_bytes:
                count = count_events(body)
            else:
                count = 0
            return self._answer(
                refusal.status,
                refusal.msg,
                key_id=authorization_key_id(fields),
                nbytes=len(body),
                events=count,
                extra_headers=refusal.headers,
                tokens=tokens,
                code=refusal.code,
            )
        draw = self._faults.draw()
        after = faults.after(draw)
        answer = self._answer(
            200,
            "",
            key_id=authorization_key_id(fields),
            nbytes=len(body),
            events=len(events),
            accepted=events,
            fault=after,
            tokens=tokens,
        )
        if after == "malformed":
            return EmulatorResponse(200, answer.headers, malformed_body(draw), after)
        return answer

    def _check(
        self,
        method: str,
        target: str,
        pairs: list[tuple[str, str]],
        fields: Mapping[str, str],
        tokens: tuple[str, ...],
        body: bytes,
        faults: Faults,
    ) -> list[Event]:
        """Every check, in the documented order; the valid events, or a :class:`Refusal`.

        The checks whose messages echo header values see them with the security
        tokens hidden; only the token and signature checks see the real values.
        """
        path, query = check_route(method, target)
        check_size(len(body), self.max_body_bytes)
        shown = hidden_fields(fields, tokens)
        key_id, sent_signature = check_headers(shown, body)
        check_body_digest(shown, body)
        check_date(shown["date"], now=self.clock(), max_skew_seconds=self.max_skew_seconds)
        credentials = self._key(key_id, fields)
        check_signature(credentials, method, path, query, pairs, sent_signature)
        self._quota.check(key_id)
        return parse_events(body, faults.poison_marker or self.poison_marker)

    def _key(self, key_id: str, fields: Mapping[str, str]) -> Credentials:
        """The accepted key ``key_id``: a static one, else one minted here (a Refusal)."""
        if any(c.access_key_id == key_id for c in self.credentials):
            return check_key(key_id, fields, self.credentials)
        if self.registry.lookup(key_id) is None:
            return check_key(key_id, fields, self.credentials)  # refused: unknown
        return check_minted_key(self.registry, key_id, fields, self.clock())

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
        fields = header_fields(header_pairs(headers))
        return self._answer(
            status,
            msg,
            key_id=authorization_key_id(fields),
            nbytes=nbytes,
            events=0,
            tokens=security_tokens(fields, self.credentials),
        )

    def _answer(
        self,
        status: int,
        msg: str,
        *,
        key_id: str | None,
        nbytes: int,
        events: int,
        accepted: list[Event] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        fault: str | None = None,
        tokens: tuple[str, ...] = (),
        code: str | None = None,
    ) -> EmulatorResponse:
        """Store accepted events, log the request and build the response.

        ``tokens`` are hidden from the message wherever it came from (see
        :func:`~cms_magic.emulator.validation.security_tokens`). ``code`` is the body's
        ``code`` (default: the status).
        """
        msg = hide(msg, tokens)
        if key_id is not None:
            key_id = hide(key_id, tokens)
        now = self.clock()
        code = str(status) if code is None else code
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
        self._store.add(accepted or (), request=record)
        answer = json_response(status, {"code": code, "msg": msg, "requestId": request_id}, now)
        answer.headers.update(extra_headers or {})
        return EmulatorResponse(status, answer.headers, answer.body, fault)


def _credentials_tuple(
    credentials: Credentials | Iterable[Credentials] | None,
) -> tuple[Credentials, ...]:
    if credentials is None:
        return (demo_credentials(),)
    items = (credentials,) if isinstance(credentials, Credentials) else tuple(credentials)
    if not items:
        raise ConfigError("must hold at least one Credentials", option="credentials", value=items)
    seen: dict[str, Credentials] = {}
    for item in items:
        if not isinstance(item, Credentials):
            raise ConfigError(
                f"must be Credentials, got {type(item).__name__}", option="credentials", value=item
            )
        if item.access_key_id in seen and seen[item.access_key_id] != item:
            raise ConfigError(
                f"AccessKeyId {item.masked_id!r} is given twice with different secrets or tokens",
                option="credentials",
            )
        seen[item.access_key_id] = item
    return items


def _check_qps(qps: float) -> float:
    if isinstance(qps, bool) or not isinstance(qps, int | float) or not qps >= 0:
        raise ConfigError("must be a number >= 0 (0 turns the quota off)", option="qps", value=qps)
    return float(qps)
