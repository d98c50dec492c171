"""What an answer means: pure functions from an HTTP answer (or a transport failure) to
the fate of the events in its request.

- :func:`classify` reads status, body and headers into a :class:`Verdict`
  (accepted only for HTTP 200 *and* ``code == "200"``);
- :func:`decide` turns a verdict into a :class:`Decision`: the rows' status, the
  reason shown for them, whether the attempt may be retried;
- :func:`decide_failure` does the same for an exception of the transport: not
  sent (safe to resend) when the request did not go out, ``unknown`` when it did
  and no answer came (a timeout after sending);
- :func:`auth_error` words refused credentials with what to do about them;
- :func:`parse_retry_after` and :func:`clock_skew_warning` read two headers.

Nothing here does I/O or keeps state; the run (:mod:`cms_magic.sending.run`)
only orders these decisions.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
import orjson

from cms_magic.credentials.static import Credentials
from cms_magic.errors import AuthError
from cms_magic.results import Status

__all__ = [
    "CLOCK_SKEW_WARNING_SECONDS",
    "Decision",
    "Outcome",
    "Verdict",
    "auth_advice",
    "auth_error",
    "classify",
    "clock_skew_warning",
    "decide",
    "decide_failure",
    "parse_retry_after",
]

Outcome = Literal["accepted", "rejected", "throttled", "auth", "server_error", "bad_response"]

#: A server Date further than this from our clock gets one warning per endpoint.
CLOCK_SKEW_WARNING_SECONDS: Final = 300.0

_THROTTLE_WORDS = ("throttl", "rate limit", "too many", "flow control", "qps", "exceeded the limit")
_RETRY_STATUSES = frozenset({500, 502, 503, 504})

#: Transport failures before the request (completely) went out: safe to send again.
_NOT_SENT_FAILURES: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one HTTP answer means for the events in its request."""

    outcome: Outcome
    code: str | None
    msg: str
    request_id: str | None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The fate of one attempt's rows: their status and reason, and what follows.

    ``retryable``: another attempt may change it. ``error``: it counts in the
    progress's ``errors`` (throttling, server errors, transport failures).
    """

    status: Status
    reason: str | None
    retryable: bool = False
    error: bool = False


_ACCEPTED: Final = Decision("accepted", None)


def classify(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    now: float | None = None,
) -> Verdict:
    """Read the service's answer. Accepted only for HTTP 200 *and* ``code == "200"``.

    ``now`` (epoch seconds) is used for a ``Retry-After`` given as a date.
    """
    code: str | None = None
    msg = ""
    request_id: str | None = None
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        raw_code = parsed.get("code")
        code = None if raw_code is None else str(raw_code)
        msg = str(parsed.get("msg") or parsed.get("message") or "")
        rid = parsed.get("requestId") or parsed.get("RequestId")
        request_id = None if rid is None else str(rid)
    else:
        text = body[:200].decode("utf-8", "replace").strip()
        msg = f"unreadable response body: {text!r}" if text else "empty response body"
    retry_after = None
    if status != 200 and headers:
        retry_after = parse_retry_after(headers.get("retry-after"), now=now)
    effective = status
    if status == 200 and code is not None and code != "200":
        effective = int(code) if code.isdigit() else 0
    if status == 200 and code == "200":
        outcome: Outcome = "accepted"
    elif status in _RETRY_STATUSES or (status == 200 and effective in _RETRY_STATUSES):
        outcome = "server_error"
    elif code is None:
        outcome = "bad_response"
    elif effective == 403:
        lowered = msg.lower()
        outcome = "throttled" if any(w in lowered for w in _THROTTLE_WORDS) else "auth"
    elif effective == 429:
        outcome = "throttled"
    elif 400 <= effective < 500:
        outcome = "rejected"
    else:
        outcome = "bad_response"
    return Verdict(outcome, code, msg, request_id, retry_after)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number, or an HTTP date (minus ``now``).

    Nonsense is no hint (None, so the backoff decides): a negative, infinite or
    NaN number, or a date already past. Honouring ``Retry-After: -5`` as "now"
    would let a broken server drive the retries into a tight loop.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if now is None:
        now = time.time()
    left = when.timestamp() - now
    return left if left >= 0 else None


def decide(verdict: Verdict, http_status: int) -> Decision:
    """The fate of the rows of an answered attempt."""
    if verdict.outcome == "accepted":
        return _ACCEPTED
    what = f"HTTP {http_status}, code {verdict.code}: {verdict.msg or 'no message'}"
    if verdict.outcome == "rejected":
        return Decision("rejected", f"rejected by the service ({what})")
    if verdict.outcome == "auth":
        return Decision("not_sent", f"not sent: credentials refused ({what})")
    if verdict.outcome == "throttled":
        return Decision("not_sent", f"not sent: throttled ({what})", retryable=True, error=True)
    if verdict.outcome == "server_error":
        return Decision("not_sent", f"not sent: server error ({what})", retryable=True, error=True)
    reason = f"unknown: unexpected answer ({what}); the events may have been delivered"
    return Decision("unknown", reason, error=True)


def decide_failure(
    exc: httpx.TransportError, *, retry_ambiguous: bool = False
) -> tuple[Verdict, Decision]:
    """The fate of the rows of an attempt that got no answer.

    Before the request went out (connect, pool, write): not sent, retryable.
    After (a read timeout, a dropped connection): ``unknown``, since the events
    may have arrived; retried only with ``retry_ambiguous``.
    """
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    verdict = Verdict("bad_response", None, what, None)
    if isinstance(exc, _NOT_SENT_FAILURES):
        return verdict, Decision("not_sent", f"not sent: {what}", retryable=True, error=True)
    reason = (
        f"unknown: the request was sent but no answer came ({what}); the events may "
        "or may not have been delivered; resend with result.retry(include_unknown=True)"
    )
    return verdict, Decision("unknown", reason, retryable=retry_ambiguous, error=True)


def auth_advice(verdict: Verdict, credentials: Credentials) -> str:
    """The words for refused credentials, with what to do about it."""
    return str(auth_error(verdict, credentials))


def auth_error(verdict: Verdict, credentials: Credentials) -> AuthError:
    """The :class:`~cms_magic.errors.AuthError` for refused credentials; its hint says what
    to do (the key id is masked, the secret never shown)."""
    lowered = verdict.msg.lower()
    if "ram" in lowered or "permission" in lowered or "not authorized" in lowered:
        hint = (
            "the key is valid but may not upload events: grant its RAM user CloudMonitor "
            "permission (e.g. the AliyunCloudMonitorFullAccess policy)"
        )
    elif "signature" in lowered:
        hint = "check the AccessKey secret (and the STS token if you use one)"
    elif "unknown" in lowered or "accesskeyid" in lowered.replace(" ", ""):
        hint = "check the AccessKey id, and that it belongs to this account"
    elif "date" in lowered or "clock" in lowered or "skew" in lowered:
        hint = "this machine's clock is off: synchronise it (NTP)"
    elif "token" in lowered:
        hint = "the STS token is missing, wrong or expired: get a fresh one"
    else:
        hint = "check the AccessKey secret (and the STS token if you use one)"
    return AuthError(
        f"the service refused the credentials {credentials.masked_id} from {credentials.source} "
        f"(HTTP 403, code {verdict.code}: {verdict.msg or 'no message'})",
        hint=hint,
    )


def clock_skew_warning(url: str, server_date: str | None, now: float) -> str | None:
    """The warning when the server's ``Date`` and ``now`` differ by over 5 minutes, else None."""
    if server_date is None:
        return None
    try:
        server_time = email.utils.parsedate_to_datetime(server_date).timestamp()
    except (TypeError, ValueError):
        return None
    skew = now - server_time
    if abs(skew) <= CLOCK_SKEW_WARNING_SECONDS:
        return None
    direction = "ahead of" if skew > 0 else "behind"
    return (
        f"this machine's clock is {abs(skew):,.0f} s {direction} the server at "
        f"{url}; the service refuses requests whose Date is more than 15 "
        "minutes off: synchronise the clock (NTP, e.g. `timedatectl set-ntp true`)"
    )
