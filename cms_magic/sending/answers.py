"""What an answer means: pure functions from an HTTP answer (or a transport failure) to
the fate of the events in its request.

- :func:`classify` reads status, body and headers into a :class:`Verdict`
  (accepted only for HTTP 200 *and* ``code == "200"``);
- :func:`decide` turns a verdict into a :class:`Decision`: the rows' status, the
  reason shown for them, whether the attempt may be retried;
- :func:`decide_failure` does the same for an exception of the transport: not
  sent (safe to resend) when the request did not go out, ``unknown`` when it did
  and no answer came (a timeout after sending);
- :func:`after_ambiguous` settles rows whose earlier attempt was ambiguous;
- :func:`scrub_answer` takes echoed secrets out of the server's text;
- :func:`auth_error` words refused credentials with what to do about them;
- :func:`parse_retry_after` and :func:`clock_skew_warning` read two headers.

**Which answers prove nothing was stored** (retried freely, within the retry
budget; their rows are ``not_sent`` if they never get through):

- a transport failure before the request went out completely (connect, pool,
  write): the service never had the whole request;
- 429 and throttling (a 403 whose ``code`` starts with ``Throttling``, e.g.
  ``Throttling.User``, or whose message says so): the rate limiter refuses a
  request before it is processed;
- 503 Service Unavailable: HTTP defines it as the server being unable to
  handle the request (overload, maintenance); it is a refusal, like 429;
- 400 (the request is wrong: bisected to find the bad events, never retried
  as is), 401 and a credential 403 (the send stops), 413 (the body is too
  large: split by bytes): the service refused the request as a whole.

**Which answers are ambiguous**: 500, 502 and 504, an answer that cannot be
read, and a timeout or dropped connection after the request was sent. None of
them proves the events were refused: a 504 is the gateway giving up while the
service may still store them, a 500 or 502 may come after storing. They follow
one rule, the client's ``retry_ambiguous`` choice:

- ``retry_ambiguous=False`` (the default): the rows are left ``unknown``, for
  the user to check and resend (``result.retry(include_unknown=True)``). The
  upload API has no idempotency key and CloudMonitor keeps duplicates without
  a word, so resending on its own would silently store events twice.
- ``retry_ambiguous=True``: retried; a row that is then accepted is
  ``accepted`` with ``possible_duplicate`` set (a column of ``result.events``,
  a count in the summary); a row never accepted stays ``unknown``, never
  ``not_sent`` (:func:`after_ambiguous`).

Nothing here does I/O or keeps state; the run (:mod:`cms_magic.sending.run`)
only orders these decisions.
"""

from __future__ import annotations

import dataclasses
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
from cms_magic.redact import scrub
from cms_magic.results import Status

__all__ = [
    "CLOCK_SKEW_WARNING_SECONDS",
    "Decision",
    "Outcome",
    "Verdict",
    "after_ambiguous",
    "answer_secrets",
    "auth_advice",
    "auth_error",
    "classify",
    "clock_skew_warning",
    "decide",
    "decide_failure",
    "describe",
    "parse_retry_after",
    "scrub_answer",
]

#: ``server_error``: 500, 502 or 504 (ambiguous); ``unavailable``: 503 (nothing stored);
#: ``too_large``: 413 (split by bytes); ``bad_response``: unreadable (ambiguous).
Outcome = Literal[
    "accepted",
    "rejected",
    "too_large",
    "throttled",
    "auth",
    "unavailable",
    "server_error",
    "bad_response",
]

#: A server Date further than this from our clock gets one warning per endpoint.
CLOCK_SKEW_WARNING_SECONDS: Final = 300.0

_THROTTLE_WORDS = ("throttl", "rate limit", "too many", "flow control", "qps", "exceeded the limit")
#: Server errors that do not prove the events were refused: they may come after storing.
_AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
#: 503: the server could not handle the request (a refusal: safe to retry).
_UNAVAILABLE = 503

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
    An ``unknown`` status means the attempt was ambiguous: it may have stored the
    events although it did not succeed. ``possible_duplicate``: accepted after
    such an attempt.
    """

    status: Status
    reason: str | None
    retryable: bool = False
    error: bool = False
    possible_duplicate: bool = False


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
    return Verdict(_outcome(status, effective, code, msg), code, msg, request_id, retry_after)


def _outcome(status: int, effective: int, code: str | None, msg: str) -> Outcome:
    """The outcome of an answer: HTTP ``status``, the status it stands for (``effective``:
    a 200 whose ``code`` is another status stands for that one), the body's code and msg."""
    if status == 200 and code == "200":
        return "accepted"
    if code is not None and code.lower().startswith("throttling"):
        return "throttled"  # Throttling, Throttling.User, Throttling.Api...: whatever the msg
    if effective == 429:
        return "throttled"  # whatever the body, plain text or none
    if effective in _AMBIGUOUS_STATUSES:
        return "server_error"
    if effective == _UNAVAILABLE:
        return "unavailable"
    if effective == 401:
        return "auth"
    if effective == 413:
        return "too_large"
    if effective == 403:
        lowered = msg.lower()
        return "throttled" if any(w in lowered for w in _THROTTLE_WORDS) else "auth"
    if code is None:
        return "bad_response"
    if 400 <= effective < 500:
        return "rejected"
    return "bad_response"


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


def describe(verdict: Verdict, http_status: int | None) -> str:
    """An attempt's answer in a few words: ``HTTP 500, code 500: oops``, or the transport
    failure when no answer came."""
    if http_status is None:
        return verdict.msg
    return f"HTTP {http_status}, code {verdict.code}: {verdict.msg or 'no message'}"


def decide(verdict: Verdict, http_status: int, *, retry_ambiguous: bool = False) -> Decision:
    """The fate of the rows of an answered attempt.

    Ambiguous answers (500, 502, 504, an unreadable answer) leave the rows
    ``unknown``; they are retried only with ``retry_ambiguous``.
    """
    if verdict.outcome == "accepted":
        return _ACCEPTED
    what = describe(verdict, http_status)
    if verdict.outcome == "rejected":
        return Decision("rejected", f"rejected by the service ({what})")
    if verdict.outcome == "too_large":
        return Decision("rejected", f"rejected by the service as too large ({what})")
    if verdict.outcome == "auth":
        return Decision("not_sent", f"not sent: credentials refused ({what})")
    if verdict.outcome == "throttled":
        return Decision("not_sent", f"not sent: throttled ({what})", retryable=True, error=True)
    if verdict.outcome == "unavailable":
        reason = f"not sent: service unavailable ({what})"
        return Decision("not_sent", reason, retryable=True, error=True)
    if verdict.outcome == "server_error":
        reason = (
            f"unknown: server error ({what}); the service may have stored the events "
            "before failing; resend with result.retry(include_unknown=True)"
        )
    else:
        reason = (
            f"unknown: unexpected answer ({what}); the service may have stored the "
            "events; resend with result.retry(include_unknown=True)"
        )
    return Decision("unknown", reason, retryable=retry_ambiguous, error=True)


def after_ambiguous(decision: Decision, earlier: str) -> Decision:
    """The fate of rows whose earlier attempt (``earlier``: :func:`describe`'s words) was
    ambiguous, given their last attempt's ``decision``.

    Accepted: ``possible_duplicate`` (the earlier attempt may have stored them
    too). Not sent (throttled, unavailable, refused credentials, a connect
    failure): ``unknown``, since the earlier attempt may have stored them.
    Rejected or unknown: as decided.
    """
    if decision.status == "accepted":
        return Decision(
            "accepted",
            f"accepted, possible duplicate: an earlier attempt ({earlier}) may have stored "
            "these events too",
            possible_duplicate=True,
        )
    if decision.status == "not_sent":
        reason = (
            f"unknown: an earlier attempt ({earlier}) may have stored these events; the "
            f"last one was {decision.reason}; resend with result.retry(include_unknown=True)"
        )
        return Decision("unknown", reason, error=decision.error)
    return decision


def answer_secrets(credentials: Credentials, authorization: str | None) -> tuple[str, ...]:
    """The values a server must not get to show us back: the AccessKey secret, the STS
    token and the request's Authorization value (and its signature alone)."""
    values = [_plain(credentials.access_key_secret), _plain(credentials.security_token)]
    if authorization:
        values += [authorization, authorization.partition(":")[2]]
    return tuple(v for v in values if v)


def _plain(value: object) -> str | None:
    """The text of a secret held as a string or in a masking wrapper (``.reveal()``)."""
    if value is None or isinstance(value, str):
        return value
    reveal = getattr(value, "reveal", None)
    text = reveal() if callable(reveal) else None
    return text if isinstance(text, str) else None


def scrub_answer(
    verdict: Verdict, decision: Decision, secrets: tuple[str, ...]
) -> tuple[Verdict, Decision]:
    """``verdict`` and ``decision`` with the server's text (msg, code, request id, and the
    reason built from them) scrubbed of ``secrets`` and secret-looking echoes, by
    :func:`cms_magic.redact.scrub`. Done once, where the answer is read: every
    record, reason, error, summary and log line is made from what this returns."""
    msg = scrub(verdict.msg, secrets)
    code = verdict.code
    if code is not None and not code.isdigit():
        code = scrub(code, secrets)
    rid = None if verdict.request_id is None else scrub(verdict.request_id, secrets)
    if (msg, code, rid) != (verdict.msg, verdict.code, verdict.request_id):
        verdict = dataclasses.replace(verdict, msg=msg, code=code, request_id=rid)
    if decision.reason is not None:
        reason = scrub(decision.reason, secrets)
        if reason != decision.reason:
            decision = dataclasses.replace(decision, reason=reason)
    return verdict, decision


def decide_failure(
    exc: httpx.TransportError, *, retry_ambiguous: bool = False
) -> tuple[Verdict, Decision]:
    """The fate of the rows of an attempt that got no answer.

    Before the request went out (connect, pool, write): not sent, retryable.
    After (a read timeout, the attempt's total deadline, a dropped connection):
    ``unknown``, since the events may have arrived; retried only with
    ``retry_ambiguous``. An answer the transport would not read (too large, or
    content-encoded: a ``MalformedAnswer``) is ``unknown`` like any unexpected answer.
    """
    from cms_magic.sending._transport import MalformedAnswer  # (only on a failure)

    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    verdict = Verdict("bad_response", None, what, None)
    if isinstance(exc, _NOT_SENT_FAILURES):
        return verdict, Decision("not_sent", f"not sent: {what}", retryable=True, error=True)
    if isinstance(exc, MalformedAnswer):
        reason = (
            f"unknown: malformed answer ({exc}); the request was sent, the events may or "
            "may not have been delivered; resend with result.retry(include_unknown=True)"
        )
        return verdict, Decision("unknown", reason, error=True)
    reason = (
        f"unknown: the request was sent but no answer came ({what}); the events may "
        "or may not have been delivered; resend with result.retry(include_unknown=True)"
    )
    return verdict, Decision("unknown", reason, retryable=retry_ambiguous, error=True)


def auth_advice(verdict: Verdict, credentials: Credentials) -> str:
    """The words for refused credentials, with what to do about it."""
    return str(auth_error(verdict, credentials))


def auth_error(verdict: Verdict, credentials: Credentials, http_status: int = 403) -> AuthError:
    """The :class:`~cms_magic.errors.AuthError` for refused credentials; its hint says what
    to do (the key id is masked, the secret never shown)."""
    lowered = f"{verdict.msg} {verdict.code or ''}".lower()
    if "ram" in lowered or "permission" in lowered or "not authorized" in lowered:
        hint = (
            "the key is valid but may not upload events: grant its RAM user CloudMonitor "
            "permission (e.g. the AliyunCloudMonitorFullAccess policy)"
        )
    elif "signature" in lowered:
        hint = "check the AccessKey secret (and the STS token if you use one)"
    elif "token" in lowered and "expired" in lowered:
        hint = (
            "the STS token expired: get fresh temporary credentials (a role, OIDC or "
            "credentials-URI source refreshes them by itself)"
        )
    elif "security-token" in lowered or "securitytoken" in lowered.replace(" ", ""):
        hint = "the STS token is missing, wrong or expired: get a fresh one"
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
        f"(HTTP {http_status}, code {verdict.code}: {verdict.msg or 'no message'})",
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
