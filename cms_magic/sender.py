"""Send events: rows -> events -> batches -> signed requests -> a :class:`SendResult`.

:func:`send` is the one entry point the magic, the panel and the command line
call. This module holds what every sending strategy shares: turning the input
into chunks of encoded events, resolving the target, and reading the service's
answer (:func:`classify`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Literal

import httpx
import orjson

from cms_magic.batching import plan_batches
from cms_magic.credentials import Credentials, mask, resolve_credentials
from cms_magic.errors import ConfigError
from cms_magic.events import Conversion, EventMapping, events_from_records, iter_conversions
from cms_magic.limits import UPLOAD_PATH
from cms_magic.regions import endpoint as resolve_endpoint
from cms_magic.results import RequestRecord, ResultBuilder, SendResult, Status
from cms_magic.signing import CmsAuth

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Verdict", "classify", "send"]

Outcome = Literal["accepted", "rejected", "throttled", "auth", "server_error", "bad_response"]

_THROTTLE_WORDS = ("throttl", "rate limit", "too many", "flow control", "qps", "exceeded the limit")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one HTTP answer means for the events in its request."""

    outcome: Outcome
    code: str | None
    msg: str
    request_id: str | None


def classify(status: int, body: bytes) -> Verdict:
    """Read the service's answer. Accepted only for HTTP 200 *and* ``code == "200"``."""
    code: str | None = None
    msg = ""
    request_id: str | None = None
    parsed: Any = None
    try:
        parsed = orjson.loads(body) if body else None
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
    effective = status if status != 200 or code is None else int(code) if code.isdigit() else 0
    if status == 200 and code == "200":
        outcome: Outcome = "accepted"
    elif parsed is None or not isinstance(parsed, dict) or code is None:
        outcome = "server_error" if status >= 500 else "bad_response"
    elif effective == 403:
        lowered = msg.lower()
        outcome = "throttled" if any(w in lowered for w in _THROTTLE_WORDS) else "auth"
    elif effective == 429:
        outcome = "throttled"
    elif effective >= 500:
        outcome = "server_error"
    elif 400 <= effective < 500:
        outcome = "rejected"
    else:
        outcome = "bad_response"
    return Verdict(outcome, code, msg, request_id)


def auth_advice(verdict: Verdict, credentials: Credentials) -> str:
    """The error for a refused credential, with what to do about it."""
    lowered = verdict.msg.lower()
    if "ram" in lowered or "permission" in lowered or "not authorized" in lowered:
        hint = (
            "the key works but may not upload events: grant its RAM user the CloudMonitor "
            "permission (e.g. AliyunCloudMonitorFullAccess)"
        )
    elif "unknown" in lowered or "accesskeyid" in lowered.replace(" ", ""):
        hint = "check the AccessKey id, or the region/endpoint it belongs to"
    elif "date" in lowered or "time" in lowered:
        hint = "this machine's clock is off: sync it (NTP)"
    else:
        hint = "check the AccessKey secret (and the STS token if you use one)"
    return (
        f"the service refused the credentials {credentials.masked_id} from {credentials.source} "
        f"(HTTP 403, code {verdict.code}: {verdict.msg or 'no message'}); {hint}"
    )


# --------------------------------------------------------------------------- inputs


@dataclass
class Prepared:
    """The input, ready to stream: chunks of encoded events and how to index the result."""

    total: int
    index: Any
    chunks: Iterator[Conversion]
    source: Any


def prepare(data: Any, mapping: Mapping[str, Any], *, chunk_rows: int = 10_000) -> Prepared:
    """Accept a DataFrame (rows -> events) or a list of :class:`Event` / API-shaped dicts."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        try:
            event_mapping = EventMapping(**mapping)
        except TypeError as exc:
            raise ConfigError(f"unknown mapping option: {exc}") from None
        event_mapping = event_mapping.resolved(list(data.columns))
        return Prepared(
            len(data),
            data.index,
            iter_conversions(data, event_mapping, chunk_rows=chunk_rows),
            data,
        )
    if isinstance(data, Mapping):
        data = [data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        used = {k: v for k, v in mapping.items() if v is not None}
        if used:
            raise ConfigError(
                f"mapping options ({', '.join(sorted(used))}) apply to DataFrames only; "
                "events given as a list already have their fields"
            )
        items = list(data)
        return Prepared(len(items), None, iter([events_from_records(items)]), items)
    raise ConfigError(
        "data must be a pandas DataFrame, or a list of cms_magic.Event or dicts with "
        f"'name' and 'content'; got {type(data).__name__}"
    )


def resolve_target(
    endpoint: str | None,
    *,
    internal: bool = False,
    credentials: Credentials | None = None,
    profile: str | None = None,
) -> tuple[str, Credentials]:
    """The URL to post to and the credentials to sign with."""
    if not endpoint:
        raise ConfigError(
            "endpoint is required: a region id (e.g. 'cn-hangzhou'), an URL, or the URL of "
            "a local emulator (cms_magic.emulator.serve().url)"
        )
    url = resolve_endpoint(endpoint, internal=internal)
    creds = credentials if credentials is not None else resolve_credentials(profile=profile)
    return url, creds


# --------------------------------------------------------------------------- sending


def send(
    data: pd.DataFrame | Sequence[Any],
    *,
    endpoint: str | None = None,
    internal: bool = False,
    credentials: Credentials | None = None,
    profile: str | None = None,
    dry_run: bool = False,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    source_ip: str | None = None,
    name: str | None = None,
    name_col: str | None = None,
    content_col: str | None = None,
    content_template: str | None = None,
    group_id: int | None = None,
    group_id_col: str | None = None,
    time_col: str | None = None,
    tz: str | tzinfo | None = None,
) -> SendResult:
    """Report ``data`` as custom events and say what happened to every row.

    ``data`` is a DataFrame (each row an event; the mapping options say how,
    see :func:`cms_magic.events_from_frame`) or a list of :class:`Event` or
    API-shaped dicts. ``endpoint`` is a region id (with ``internal=True`` for
    the region's internal endpoint) or an explicit URL. ``credentials``
    default to :func:`cms_magic.resolve_credentials` (``profile`` picks a
    profile). ``dry_run`` does everything but the POST.
    """
    mapping = {
        "name": name,
        "name_col": name_col,
        "content_col": content_col,
        "content_template": content_template,
        "group_id": group_id,
        "group_id_col": group_id_col,
        "time_col": time_col,
        "tz": tz,
    }
    url, creds = resolve_target(
        endpoint, internal=internal, credentials=credentials, profile=profile
    )
    prepared = prepare(data, mapping)
    auth = CmsAuth.from_credentials(creds, source_ip=source_ip, clock=clock)
    builder = ResultBuilder(prepared.total, prepared.index)
    started = time.perf_counter()
    with httpx.Client(transport=transport, timeout=timeout) as client:
        _send_sequential(client, url + UPLOAD_PATH, auth, creds, prepared, builder, dry_run, clock)
    return builder.build(
        elapsed=time.perf_counter() - started, source=prepared.source, endpoint=url
    )


def _send_sequential(
    client: httpx.Client,
    url: str,
    auth: CmsAuth,
    creds: Credentials,
    prepared: Prepared,
    builder: ResultBuilder,
    dry_run: bool,
    clock: Callable[[], float],
) -> None:
    next_batch = 0
    for chunk in prepared.chunks:
        builder.reject(chunk.rejected)
        plan = plan_batches(chunk.payloads, positions=chunk.positions, first_number=next_batch)
        builder.reject(plan.rejected)
        next_batch += len(plan.batches)
        for batch in plan.batches:
            if builder.error is not None:
                return
            if dry_run:
                builder.settle(
                    batch.positions,
                    "dry_run",
                    None,
                    batch=batch.number,
                    attempts=0,
                    request_id=None,
                )
                continue
            sent_at = clock()
            began = time.perf_counter()
            request = client.build_request(
                "POST", url, content=batch.body, headers={"Content-Type": "application/json"}
            )
            status: Status
            reason: str | None
            try:
                response = client.send(request, auth=auth)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                verdict = Verdict("bad_response", None, f"{type(exc).__name__}: {exc}", None)
                http_status = None
                status, reason = "not_sent", f"not sent: could not connect ({verdict.msg})"
            except httpx.TransportError as exc:
                verdict = Verdict("bad_response", None, f"{type(exc).__name__}: {exc}", None)
                http_status = None
                status, reason = (
                    "unknown",
                    (
                        f"unknown: the request was sent but no answer came ({verdict.msg}); "
                        "it may or may not have been delivered"
                    ),
                )
            else:
                http_status = response.status_code
                verdict = classify(response.status_code, response.content)
                status, reason = _row_status(verdict, response.status_code)
                if verdict.outcome == "auth":
                    builder.error = auth_advice(verdict, creds)
            latency = (time.perf_counter() - began) * 1000
            builder.settle(
                batch.positions,
                status,
                reason,
                batch=batch.number,
                attempts=1,
                request_id=verdict.request_id,
            )
            builder.add_request(
                RequestRecord(
                    batch=batch.number,
                    events=len(batch),
                    bytes=len(batch.body),
                    status=http_status,
                    code=verdict.code,
                    msg=verdict.msg,
                    request_id=verdict.request_id,
                    attempts=1,
                    latency_ms=latency,
                    sent_at=sent_at,
                    outcome=status,
                )
            )


def _row_status(verdict: Verdict, http_status: int) -> tuple[Status, str | None]:
    what = f"HTTP {http_status}, code {verdict.code}: {verdict.msg or 'no message'}"
    if verdict.outcome == "accepted":
        return "accepted", None
    if verdict.outcome == "rejected":
        return "rejected", f"rejected by the service ({what})"
    if verdict.outcome == "throttled":
        return "not_sent", f"not sent: throttled by the service ({what})"
    if verdict.outcome == "auth":
        return "not_sent", f"not sent: credentials refused ({what})"
    if verdict.outcome == "server_error":
        return "not_sent", f"not sent: server error ({what})"
    return "unknown", f"unknown: unexpected answer ({what}); the events may have been delivered"


def masked_authorization(value: str) -> str:
    """``LTAI****abcd:<signature>`` with the key id masked (for previews)."""
    key_id, _, _ = value.partition(":")
    return f"{mask(key_id)}:<signature>"
