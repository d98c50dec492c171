"""Send events: rows -> events -> batches -> signed requests -> a :class:`SendResult`.

:func:`send` (and :class:`Client`, which keeps settings between sends) is the
one entry point the magic, the panel and the command line call.

How a send runs:

- It runs on one library-owned event loop in a daemon thread (see
  :mod:`cms_magic.sending._loop`), so it works the same in a script, in a notebook
  whose loop is already running, and from ``async`` code
  (``await client.asend(...)``).
- Input is converted and batched a chunk of rows at a time (``chunk_rows``) in
  a worker thread, through a bounded queue, so memory stays flat whatever the
  size of the frame.
- A few workers post batches concurrently over one keep-alive ``httpx``
  connection pool, each request first taking a slot from the process-wide
  quota of its AccessKey (:func:`shared_quota`): every send in the process with
  the same key shares the account's 20 requests per second.
- Each attempt is signed again (fresh Date). Retried, with exponential backoff
  and full jitter, bounded in attempts and time, honouring ``Retry-After``:
  connection failures before the request went out, HTTP 500/502/503/504, and
  throttling. Not retried: a 403 for the credentials (the whole send stops, the
  rows not yet sent stay ``not_sent``), and a 400 (the batch is bisected to find
  the offending events). A timeout after the request was sent leaves its rows
  ``unknown`` unless ``retry_ambiguous=True``, since a retry may duplicate them.
- Cancel (``SendJob.cancel()``, or Ctrl-C in a foreground send) stops at the next
  batch boundary and keeps a partial result that ``retry()`` can finish
  (``cms_magic.last_result()`` holds it after an interrupt).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import logging
import random as _random
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Literal

import httpx
import numpy as np
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

from cms_magic.batching import Batch, plan_batches
from cms_magic.credentials.static import Credentials, mask, resolve_credentials
from cms_magic.errors import ConfigError
from cms_magic.events.convert import Conversion, EventMapping, events_from_records, iter_conversions
from cms_magic.protocol import DEFAULT_QPS, MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST, UPLOAD_PATH
from cms_magic.regions import endpoint as resolve_endpoint
from cms_magic.results import (
    RequestRecord,
    ResultBuilder,
    SendResult,
    Status,
)
from cms_magic.sending import _loop
from cms_magic.sending._transport import http_transport, post
from cms_magic.sending.quota import TokenBucket
from cms_magic.signing import CmsAuth

_JSON_HEADERS = {"Content-Type": "application/json"}

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Client",
    "Progress",
    "RetryPolicy",
    "SendJob",
    "Verdict",
    "classify",
    "last_result",
    "send",
    "shared_quota",
]

log = logging.getLogger("cms_magic")

Outcome = Literal["accepted", "rejected", "throttled", "auth", "server_error", "bad_response"]
Sleep = Callable[[float], Awaitable[None]]

#: A server Date further than this from our clock gets one warning per endpoint.
CLOCK_SKEW_WARNING_SECONDS = 300.0
_skew_warned: set[str] = set()

_THROTTLE_WORDS = ("throttl", "rate limit", "too many", "flow control", "qps", "exceeded the limit")
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


# --------------------------------------------------------------------------- reading answers


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one HTTP answer means for the events in its request."""

    outcome: Outcome
    code: str | None
    msg: str
    request_id: str | None
    retry_after: float | None = None


def classify(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Verdict:
    """Read the service's answer. Accepted only for HTTP 200 *and* ``code == "200"``."""
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
    retry_after = None if status == 200 else _retry_after(headers)
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


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def auth_advice(verdict: Verdict, credentials: Credentials) -> str:
    """The error for refused credentials, with what to do about it."""
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
    return (
        f"the service refused the credentials {credentials.masked_id} from {credentials.source} "
        f"(HTTP 403, code {verdict.code}: {verdict.msg or 'no message'}); {hint}"
    )


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried: exponential backoff with full jitter, bounded.

    Attempt ``k`` (from 1) waits ``random() * min(max_wait, base_wait * 2**(k-1))``
    seconds, or the server's ``Retry-After`` when it gives one (capped at
    ``max_wait``). At most ``max_attempts`` attempts and ``max_time`` seconds per request.
    """

    max_attempts: int = 5
    max_time: float = 60.0
    base_wait: float = 0.25
    max_wait: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.max_time <= 0 or self.base_wait < 0 or self.max_wait < 0:
            raise ConfigError("max_time must be > 0; base_wait and max_wait >= 0")


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a running send, given to progress callbacks and ``SendJob.progress``."""

    total: int
    done: int
    accepted: int
    rejected: int
    not_sent: int
    unknown: int
    requests: int
    errors: int
    elapsed: float
    finished: bool = False

    @property
    def rate(self) -> float:
        """Rows settled per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        """A one-line status for text renderers."""
        parts = [f"{self.done:,}/{self.total:,} events", f"{self.requests:,} requests"]
        if self.rejected or self.unknown or self.errors:
            parts.append(
                f"{self.rejected:,} rejected, {self.unknown:,} unknown, {self.errors:,} errors"
            )
        parts.append(f"{self.rate:,.0f} events/s")
        return ", ".join(parts)


ProgressCallback = Callable[[Progress], None]


# --------------------------------------------------------------------------- the shared quota

_quotas: dict[str, TokenBucket] = {}
_quotas_lock = threading.Lock()


def shared_quota(access_key_id: str, qps: float = DEFAULT_QPS) -> TokenBucket:
    """The process-wide token bucket of one AccessKey (one account's quota).

    Every send in this process with that key takes its request slots here, so
    two sends at once (a magic and the panel, say) share the rate. Requests
    are spaced ``1/qps`` apart (capacity 1: no bursts), which never exceeds
    the service's per-second limit. Asking again with another ``qps`` changes
    the rate for everyone using the key.
    """
    with _quotas_lock:
        bucket = _quotas.get(access_key_id)
        if bucket is None or bucket.rate != qps:
            bucket = TokenBucket(rate=qps, capacity=1)
            _quotas[access_key_id] = bucket
        return bucket


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
        event_mapping = EventMapping(**mapping).resolved(list(data.columns))
        chunks = iter_conversions(data, event_mapping, chunk_rows=chunk_rows)
        return Prepared(len(data), data.index, chunks, data)
    if isinstance(data, Mapping):
        data = [data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        used = sorted(k for k, v in mapping.items() if v is not None)
        if used:
            raise ConfigError(
                f"mapping options ({', '.join(used)}) apply to DataFrames only; "
                "events given as a list already have their fields"
            )
        items = list(data)
        return Prepared(len(items), None, iter([events_from_records(items)]), items)
    raise ConfigError(
        "data must be a pandas DataFrame, or a list of cms_magic.Event or of dicts with "
        f"'name' and 'content'; got {type(data).__name__}"
    )


# --------------------------------------------------------------------------- jobs


class _Control:
    """Shared between a running send and whoever started it: cancel and progress."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.progress: Progress | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.aborted = False

    def abort(self) -> None:
        """Hard stop: cancel in-flight requests too (their rows become ``unknown``)."""
        self.aborted = True
        self.cancelled.set()
        loop = self.loop
        if loop is not None:
            for task in list(self.tasks):
                loop.call_soon_threadsafe(task.cancel)


class SendJob:
    """A send running in the background: ``.status``, ``.progress``, ``.wait()``,
    ``.result()``, ``.cancel()``."""

    def __init__(self, future: concurrent.futures.Future[SendResult], control: _Control) -> None:
        self._future = future
        self._control = control

    @property
    def status(self) -> Literal["running", "done", "cancelled", "failed"]:
        if not self._future.done():
            return "running"
        if self._future.cancelled():
            return "cancelled"
        if self._future.exception() is not None:
            return "failed"
        return "cancelled" if self._future.result().cancelled else "done"

    @property
    def progress(self) -> Progress | None:
        """The latest progress snapshot (None before the first request)."""
        return self._control.progress

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the send ends or ``timeout`` passes; True if it ended."""
        try:
            self._future.exception(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def result(self, timeout: float | None = None) -> SendResult:
        """The result, waiting for it if needed."""
        return self._future.result(timeout=timeout)

    def cancel(self) -> None:
        """Stop at the next batch boundary; requests in flight finish. The result keeps
        what was done; the rest is ``not_sent`` (``result().retry()`` resumes)."""
        self._control.cancelled.set()

    def done(self) -> bool:
        """True when the send has ended (done, cancelled or failed)."""
        return self._future.done()

    def add_done_callback(self, callback: Callable[[SendJob], None]) -> None:
        """Call ``callback(job)`` when the send ends (at once if it already has).

        It runs in the thread that finishes the send: update widgets through
        traits, not by printing.
        """
        self._future.add_done_callback(lambda _: callback(self))

    def __repr__(self) -> str:
        progress = self.progress
        detail = progress.line() if progress else "starting"
        if self._future.done() and self._future.exception() is None:
            detail = self._future.result().summary()
        return f"<SendJob {self.status}: {detail}>"


_latest: list[SendResult] = []  # at most one: the latest result of this process


def last_result() -> SendResult | None:
    """The result of the latest send in this process, also after a Ctrl-C."""
    return _latest[-1] if _latest else None


def _remember(result: SendResult) -> SendResult:
    _latest[:] = [result]
    return result


# --------------------------------------------------------------------------- the client


class Client:
    """Settings for sending to one endpoint with one credential; reusable and thread-safe.

    ``endpoint`` is a region id (``internal=True`` for the region's internal
    endpoint) or an explicit URL (for the local emulator, its ``url``). The
    quota ``qps`` is shared by every send of the process with the same key
    (0 turns the client-side limit off). ``concurrency`` requests are in flight
    at most. ``clock``, ``monotonic``, ``sleep`` and ``random`` are injectable
    for tests.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        internal: bool = False,
        credentials: Credentials | None = None,
        profile: str | None = None,
        qps: float = DEFAULT_QPS,
        concurrency: int = 4,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        retry_ambiguous: bool = False,
        max_bisect_requests: int = 32,
        chunk_rows: int = 10_000,
        max_events: int = MAX_EVENTS_PER_REQUEST,
        max_bytes: int = MAX_BODY_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        quota: TokenBucket | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
        random: Callable[[], float] = _random.random,
        source_ip: str | None = None,
    ) -> None:
        if not endpoint:
            raise ConfigError(
                "endpoint is required: a region id (e.g. 'cn-hangzhou'), an URL, or a local "
                "emulator's url (cms_magic.emulator.serve().url)"
            )
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        if qps < 0:
            raise ConfigError(f"qps must be >= 0 (0 = no client-side limit), got {qps}")
        if timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
        self.url = resolve_endpoint(endpoint, internal=internal)
        self.credentials = (
            credentials if credentials is not None else resolve_credentials(profile=profile)
        )
        self.qps = qps
        self.concurrency = concurrency
        self.timeout = timeout
        self.retry_policy = retry or RetryPolicy()
        self.retry_ambiguous = retry_ambiguous
        self.max_bisect_requests = max_bisect_requests
        self.chunk_rows = chunk_rows
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.transport = transport
        self.quota = quota
        self.clock = clock
        self.monotonic = monotonic
        self.sleep: Sleep = sleep or asyncio.sleep
        self.random = random
        self.auth = CmsAuth.from_credentials(self.credentials, source_ip=source_ip, clock=clock)

    def __repr__(self) -> str:
        return f"Client(url={self.url!r}, credentials={self.credentials!r}, qps={self.qps})"

    def _quota(self) -> TokenBucket | None:
        if self.quota is not None:
            return self.quota
        if self.qps == 0:
            return None
        return shared_quota(self.credentials.access_key_id, self.qps)

    # ------------------------------------------------------------------ public API

    def send(
        self,
        data: pd.DataFrame | Sequence[Any],
        *,
        dry_run: bool = False,
        background: bool = False,
        progress: bool | ProgressCallback | None = None,
        **mapping: Any,
    ) -> Any:
        """Send ``data``; returns a :class:`SendResult`, or a :class:`SendJob` when
        ``background=True``. Mapping options as in :func:`cms_magic.events_from_frame`."""
        run = _Run(self, data, _mapping(mapping), dry_run)
        run.add_progress(_progress_callback(progress, background))
        if background:
            return run.start_background()
        return run.run_foreground()

    async def asend(
        self,
        data: pd.DataFrame | Sequence[Any],
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        **mapping: Any,
    ) -> SendResult:
        """``await`` a send from async code (any event loop); same result as :meth:`send`."""
        run = _Run(self, data, _mapping(mapping), dry_run)
        run.add_progress(progress)
        future = _loop.run_in_background(run.execute())
        try:
            return _remember(await asyncio.wrap_future(future))
        except asyncio.CancelledError:
            run.control.cancelled.set()
            raise


def _mapping(options: Mapping[str, Any]) -> dict[str, Any]:
    known = set(EventMapping.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)}; mapping options are {', '.join(sorted(known))}"
        )
    return dict(options)


def _progress_callback(
    progress: bool | ProgressCallback | None, background: bool
) -> ProgressCallback | None:
    if callable(progress):
        return progress
    if progress is None:
        progress = (not background) and sys.stderr.isatty()
    return _TqdmProgress() if progress else None


class _TqdmProgress:
    """Renders progress with tqdm on stderr (outside notebooks)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def __call__(self, progress: Progress) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=progress.total, unit="ev", unit_scale=True, desc="cms_magic")
        self._bar.update(progress.done - self._done)
        self._done = progress.done
        self._bar.set_postfix_str(
            f"{progress.requests} req, {progress.rejected} rejected, {progress.unknown} unknown",
            refresh=False,
        )
        if progress.finished:
            self._bar.close()


# --------------------------------------------------------------------------- one run


@dataclass
class _Final:
    """How one request ended, after its retries."""

    status: Status
    reason: str | None
    verdict: Verdict
    http_status: int | None
    attempts: int
    latency_ms: float
    sent_at: float
    retryable: bool = False


class _Retryable(Exception):
    def __init__(self, final: _Final) -> None:
        super().__init__(final.reason)
        self.final = final


class _AuthStop(Exception):
    pass


class _StopAfterTime(stop_base):
    """Stop retrying once ``limit`` seconds have passed on the injected monotonic clock."""

    def __init__(self, monotonic: Callable[[], float], began: float, limit: float) -> None:
        self.monotonic = monotonic
        self.began = began
        self.limit = limit

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.monotonic() - self.began >= self.limit


@dataclass
class _Run:
    """One send: its input, its result builder, its workers."""

    client: Client
    data: Any
    mapping: dict[str, Any]
    dry_run: bool
    control: _Control = field(default_factory=_Control)
    callbacks: list[ProgressCallback] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prepared = prepare(self.data, self.mapping, chunk_rows=self.client.chunk_rows)
        self.builder = ResultBuilder(self.prepared.total, self.prepared.index)
        self.requests = 0
        self.errors = 0
        self.started = 0.0
        self.preview: dict[str, Any] | None = None
        self.warnings: list[str] = []
        self.upload_url = httpx.URL(self.client.url + UPLOAD_PATH)  # parsed once per send
        self.timeouts = httpx.Timeout(self.client.timeout).as_dict()
        self.skew_checked = False  # the server's Date is compared with ours once per send

    def add_progress(self, callback: ProgressCallback | None) -> None:
        if callback is not None:
            self.callbacks.append(callback)

    # ------------------------------------------------------------------ entry points

    def run_foreground(self) -> SendResult:
        if _loop.in_library_loop():
            raise RuntimeError("a synchronous send cannot run inside cms_magic's own loop")
        future = _loop.run_in_background(self.execute())
        try:
            return _remember(_wait_interruptibly(future))
        except KeyboardInterrupt:
            self.control.cancelled.set()
            try:  # requests in flight may finish; a second Ctrl-C aborts them
                result = _wait_interruptibly(future, within=self.client.timeout + 5)
            except (KeyboardInterrupt, concurrent.futures.TimeoutError):
                self.control.abort()
                result = future.result()
            _remember(result)
            log.warning("send interrupted: %s (cms_magic.last_result())", result.summary())
            raise

    def start_background(self) -> SendJob:
        future = _loop.run_in_background(self.execute())
        future.add_done_callback(
            lambda f: _remember(f.result()) if not f.cancelled() and not f.exception() else None
        )
        return SendJob(future, self.control)

    # ------------------------------------------------------------------ the run

    async def execute(self) -> SendResult:
        self.started = time.perf_counter()
        self.control.loop = asyncio.get_running_loop()
        limits = httpx.Limits(
            max_connections=self.client.concurrency,
            max_keepalive_connections=self.client.concurrency,
        )
        # The transport is used directly (see cms_magic.sending._transport.post).
        transport = self.client.transport or http_transport(limits)
        async with transport:
            self.transport = transport
            queue: asyncio.Queue[Batch | None] = asyncio.Queue(
                maxsize=max(8, 4 * self.client.concurrency)
            )
            workers = [
                asyncio.create_task(self._worker(queue)) for _ in range(self.client.concurrency)
            ]
            producer = asyncio.create_task(self._produce(queue, len(workers)))
            self.control.tasks = [producer, *workers]
            # Never raises for a task: an abort cancels them all, and the rows they held
            # were settled on the way out.
            await asyncio.gather(producer, *workers, return_exceptions=True)
            failure = None if producer.cancelled() else producer.exception()
            if failure is not None:
                log.error("reading the input failed", exc_info=failure)
                self.builder.error = (
                    f"reading the input failed ({type(failure).__name__}: {failure}); "
                    "the rows not reached are not_sent"
                )
        result = self.builder.build(
            elapsed=time.perf_counter() - self.started,
            source=self.prepared.source,
            resend=self._resend,
            endpoint=self.client.url,
            cancelled=self.control.cancelled.is_set() and self.builder.error is None,
        )
        result.preview = self.preview
        result.warnings = list(self.warnings)
        self._report(finished=True)
        return result

    async def _produce(self, queue: asyncio.Queue[Batch | None], workers: int) -> None:
        loop = asyncio.get_running_loop()
        chunks = self.prepared.chunks
        next_number = 0
        try:
            while not self._stopping():
                planned = await loop.run_in_executor(None, self._plan_next, chunks, next_number)
                if planned is None:
                    break
                for batch in planned:
                    if self._stopping():
                        break
                    await queue.put(batch)
                next_number += len(planned)
        finally:
            if not self.control.aborted:  # the workers are alive: tell each to finish
                if not self._stopping() and sys.exc_info()[0] is not None:
                    self.control.cancelled.set()  # the input failed: stop the send
                for _ in range(workers):
                    await queue.put(None)

    def _plan_next(self, chunks: Iterator[Conversion], first_number: int) -> list[Batch] | None:
        chunk = next(chunks, None)
        if chunk is None:
            return None
        self.builder.reject(chunk.rejected)
        plan = plan_batches(
            chunk.payloads,
            self.client.max_events,
            self.client.max_bytes,
            positions=chunk.positions,
            first_number=first_number,
        )
        self.builder.reject(plan.rejected)
        return plan.batches

    def _stopping(self) -> bool:
        return self.control.cancelled.is_set() or self.builder.error is not None

    async def _worker(self, queue: asyncio.Queue[Batch | None]) -> None:
        while True:
            batch = await queue.get()
            if batch is None:
                return
            if self._stopping():
                continue  # drain: these rows stay not_sent
            if self.dry_run:
                self._dry_run(batch)
                continue
            try:
                await self._deliver(batch.number, list(batch.positions), list(batch.payloads))
            except _AuthStop:
                continue
            except Exception as exc:  # a bug of ours must not lose rows or hang the send
                log.exception("batch %d failed inside cms_magic", batch.number)
                self.builder.settle(
                    list(batch.positions),
                    "unknown",
                    f"unknown: internal error in cms_magic ({type(exc).__name__}: {exc}); "
                    "the request may or may not have been sent",
                    batch=batch.number,
                    attempts=1,
                )

    def _dry_run(self, batch: Batch) -> None:
        if self.preview is None:
            request = self._signed_request(batch.body)
            headers = dict(request.headers)
            headers["authorization"] = masked_authorization(headers["authorization"])
            if "x-cms-security-token" in headers:
                headers["x-cms-security-token"] = "<hidden>"
            text = batch.body.decode("utf-8")
            self.preview = {
                "method": "POST",
                "url": str(self.upload_url),
                "headers": headers,
                "body_preview": text if len(text) <= 2000 else text[:2000] + "...",
                "body_bytes": len(batch.body),
            }
        self.builder.settle(batch.positions, "dry_run", None, batch=batch.number, attempts=0)
        self._report()

    # ------------------------------------------------------------------ delivery

    async def _deliver(
        self,
        number: int,
        positions: list[int],
        payloads: list[bytes],
        budget: list[int] | None = None,
    ) -> None:
        """Post one batch (with retries); bisect a 400 to find the offending events."""
        body = b"[" + b",".join(payloads) + b"]"
        try:
            final = await self._post(number, body, len(positions))
        except asyncio.CancelledError:
            self.builder.settle(
                positions,
                "unknown",
                "unknown: the send was aborted while this request was in flight; the events "
                "may or may not have been delivered",
                batch=number,
                attempts=1,
            )
            raise
        if final.status == "rejected" and len(positions) > 1:
            budget = budget if budget is not None else [self.client.max_bisect_requests]
            if budget[0] >= 2 and not self._stopping():
                budget[0] -= 2
                middle = len(positions) // 2
                await self._deliver(number, positions[:middle], payloads[:middle], budget)
                await self._deliver(number, positions[middle:], payloads[middle:], budget)
                return
            final.reason = (final.reason or "") + (
                f" (the batch could not be narrowed further within max_bisect_requests="
                f"{self.client.max_bisect_requests}: good events may be among these; resend "
                "them with result.retry(include_rejected=True) to narrow again)"
            )
        self.builder.settle(
            positions,
            final.status,
            final.reason,
            batch=number,
            attempts=final.attempts,
            request_id=final.verdict.request_id,
        )
        self._report()
        if final.verdict.outcome == "auth":
            raise _AuthStop

    async def _post(self, number: int, body: bytes, events: int) -> _Final:
        """Post one body: a first attempt, then (if it may be retried) tenacity's loop."""
        began = self.client.monotonic()
        final = await self._attempt(number, body, 1)
        if final.retryable and self.client.retry_policy.max_attempts > 1:
            final = await self._retry(number, body, final, began)
        self.builder.add_request(
            RequestRecord(
                batch=number,
                events=events,
                bytes=len(body),
                status=final.http_status,
                code=final.verdict.code,
                msg=final.verdict.msg,
                request_id=final.verdict.request_id,
                attempts=final.attempts,
                latency_ms=final.latency_ms,
                sent_at=final.sent_at,
                outcome=final.status,
            )
        )
        self.requests += 1
        return final

    def _backoff(self, attempt: int, after: _Final) -> float:
        """Seconds to wait after attempt ``attempt``: Retry-After, else full jitter."""
        policy = self.client.retry_policy
        hinted = after.verdict.retry_after
        if hinted is not None:
            return min(hinted, policy.max_wait)
        ceiling = min(policy.max_wait, policy.base_wait * 2 ** (attempt - 1))
        return float(self.client.random() * ceiling)

    async def _retry(self, number: int, body: bytes, first: _Final, began: float) -> _Final:
        """Attempts 2..max_attempts, each signed again, bounded in attempts and time."""
        policy = self.client.retry_policy
        if self.client.monotonic() - began >= policy.max_time:
            return first
        await self.client.sleep(self._backoff(1, first))

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            assert isinstance(exc, _Retryable)
            return self._backoff(state.attempt_number + 1, exc.final)

        retrying = AsyncRetrying(
            stop=stop_any(
                stop_after_attempt(policy.max_attempts - 1),
                _StopAfterTime(self.client.monotonic, began, policy.max_time),
            ),
            wait=wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self.client.sleep,
            reraise=True,
        )
        final = first
        try:
            async for attempt in retrying:
                with attempt:
                    final = await self._attempt(
                        number, body, attempt.retry_state.attempt_number + 1
                    )
                    if final.retryable:
                        raise _Retryable(final)
        except _Retryable as exc:
            final = exc.final
        return final

    def _signed_request(self, body: bytes) -> httpx.Request:
        """The upload request for ``body``, signed now (each attempt: a fresh Date)."""
        request = httpx.Request(
            "POST",
            self.upload_url,
            content=body,
            headers=_JSON_HEADERS,
            extensions={"timeout": self.timeouts},
        )
        self.client.auth.sign(request)
        return request

    async def _attempt(self, number: int, body: bytes, attempt: int) -> _Final:
        """One signed POST. A ``not_sent`` result is retryable; others are final."""
        await self._take_quota_slot()
        sent_at = self.client.clock()
        began = time.perf_counter()
        request = self._signed_request(body)

        def final(
            status: Status,
            reason: str | None,
            verdict: Verdict,
            http: int | None,
            *,
            retryable: bool = False,
        ) -> _Final:
            latency = (time.perf_counter() - began) * 1000
            return _Final(status, reason, verdict, http, attempt, latency, sent_at, retryable)

        try:
            response = await post(self.transport, request)
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.WriteError,
            httpx.WriteTimeout,
        ) as exc:
            # The request did not (completely) go out: safe to send again.
            self.errors += 1
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            verdict = Verdict("bad_response", None, what, None)
            log.debug("batch %d attempt %d: not delivered (%s)", number, attempt, what)
            return final("not_sent", f"not sent: {what}", verdict, None, retryable=True)
        except httpx.TransportError as exc:
            # Sent, but no answer: it may or may not have been delivered.
            self.errors += 1
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            verdict = Verdict("bad_response", None, what, None)
            log.debug("batch %d attempt %d: no answer (%s)", number, attempt, what)
            reason = (
                f"unknown: the request was sent but no answer came ({what}); the events may "
                "or may not have been delivered; resend with result.retry(include_unknown=True)"
            )
            return final("unknown", reason, verdict, None, retryable=self.client.retry_ambiguous)
        if not self.skew_checked:
            self.skew_checked = True
            self._check_clock_skew(response.headers.get("date"))
        verdict = classify(response.status_code, response.content, response.headers)
        http_status = response.status_code
        what = f"HTTP {http_status}, code {verdict.code}: {verdict.msg or 'no message'}"
        log.debug("batch %d attempt %d: %s (%s)", number, attempt, verdict.outcome, what)
        if verdict.outcome == "accepted":
            return final("accepted", None, verdict, http_status)
        if verdict.outcome == "rejected":
            return final("rejected", f"rejected by the service ({what})", verdict, http_status)
        if verdict.outcome == "auth":
            if self.builder.error is None:
                self.builder.error = auth_advice(verdict, self.client.credentials)
            return final(
                "not_sent", f"not sent: credentials refused ({what})", verdict, http_status
            )
        self.errors += 1
        if verdict.outcome == "throttled":
            reason = f"not sent: throttled ({what})"
            return final("not_sent", reason, verdict, http_status, retryable=True)
        if verdict.outcome == "server_error":
            reason = f"not sent: server error ({what})"
            return final("not_sent", reason, verdict, http_status, retryable=True)
        reason = f"unknown: unexpected answer ({what}); the events may have been delivered"
        return final("unknown", reason, verdict, http_status)

    def _check_clock_skew(self, server_date: str | None) -> None:
        """Warn once per endpoint when the server's clock and ours differ by over 5 minutes."""
        if server_date is None or self.client.url in _skew_warned:
            return
        try:
            server_time = email.utils.parsedate_to_datetime(server_date).timestamp()
        except (TypeError, ValueError):
            return
        skew = self.client.clock() - server_time
        if abs(skew) <= CLOCK_SKEW_WARNING_SECONDS:
            return
        _skew_warned.add(self.client.url)
        direction = "ahead of" if skew > 0 else "behind"
        message = (
            f"this machine's clock is {abs(skew):,.0f} s {direction} the server at "
            f"{self.client.url}; the service refuses requests whose Date is more than 15 "
            "minutes off: synchronise the clock (NTP, e.g. `timedatectl set-ntp true`)"
        )
        self.warnings.append(message)
        log.warning("%s", message)

    async def _take_quota_slot(self) -> None:
        quota = self.client._quota()
        if quota is None:
            return
        delay = quota.reserve()
        if delay > 0:
            await self.client.sleep(delay)

    # ------------------------------------------------------------------ progress and retry

    def _report(self, finished: bool = False) -> None:
        counts = self.builder.counts()
        progress = Progress(
            total=self.builder.total,
            done=self.builder.total - counts["not_sent"],
            accepted=counts["accepted"],
            rejected=counts["rejected"],
            not_sent=counts["not_sent"],
            unknown=counts["unknown"],
            requests=self.requests,
            errors=self.errors,
            elapsed=time.perf_counter() - self.started,
            finished=finished,
        )
        self.control.progress = progress
        for callback in self.callbacks:
            try:
                callback(progress)
            except Exception:  # a broken renderer must not break the send
                log.exception("progress callback failed")

    def _resend(
        self,
        previous: SendResult,
        positions: np.ndarray[Any, Any],
        background: bool,
        progress: ProgressCallback | None,
    ) -> Any:
        """Send the rows at ``positions`` again; the result is merged into ``previous``."""
        source = self.prepared.source
        if hasattr(source, "iloc"):
            subset: Any = source.iloc[positions]
        else:
            subset = [source[i] for i in positions.tolist()]
        options = {"dry_run": self.dry_run, "progress": progress, **self.mapping}
        if not background:
            again: SendResult = self.client.send(subset, **options)
            return _remember(previous.merged(again, positions))
        job: SendJob = self.client.send(subset, background=True, **options)
        merged: concurrent.futures.Future[SendResult] = concurrent.futures.Future()

        def finish(done: SendJob) -> None:
            try:
                merged.set_result(_remember(previous.merged(done.result(), positions)))
            except BaseException as exc:  # handed to whoever waits on the job
                merged.set_exception(exc)

        job.add_done_callback(finish)
        return SendJob(merged, job._control)


def _wait_interruptibly(
    future: concurrent.futures.Future[SendResult], within: float | None = None
) -> SendResult:
    """Wait for ``future`` in short timed waits, so Ctrl-C (SIGINT) is handled promptly.

    Raises ``TimeoutError`` if ``within`` seconds pass first.
    """
    deadline = None if within is None else time.monotonic() + within
    while True:
        try:
            return future.result(timeout=0.1)
        except concurrent.futures.TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                raise


def masked_authorization(value: str) -> str:
    """``LTAI****abcd:<signature>``: the key id masked, the signature left out (previews)."""
    key_id, _, _ = value.partition(":")
    return f"{mask(key_id)}:<signature>"


# --------------------------------------------------------------------------- module-level send


def send(
    data: pd.DataFrame | Sequence[Any],
    *,
    endpoint: str | None = None,
    internal: bool = False,
    credentials: Credentials | None = None,
    profile: str | None = None,
    dry_run: bool = False,
    background: bool = False,
    progress: bool | ProgressCallback | None = None,
    name: str | None = None,
    name_col: str | None = None,
    content_col: str | None = None,
    content_template: str | None = None,
    group_id: int | None = None,
    group_id_col: str | None = None,
    time_col: str | None = None,
    tz: str | tzinfo | None = None,
    **client_options: Any,
) -> Any:
    """Report ``data`` as custom events and say what happened to every row.

    ``data`` is a DataFrame (each row an event; see
    :func:`cms_magic.events_from_frame` for the mapping options) or a list of
    :class:`Event` or API-shaped dicts. ``endpoint`` is a region id (with
    ``internal=True`` for the region's internal endpoint) or an URL; for the
    local emulator, its ``url`` with its ``credentials``. ``credentials``
    default to :func:`cms_magic.resolve_credentials` (``profile`` picks one).
    ``dry_run`` does everything but the POST. ``background=True`` returns a
    :class:`SendJob` at once. Other options (``qps``, ``concurrency``,
    ``timeout``, ``retry``, ``retry_ambiguous``...) are :class:`Client`'s.

    Returns a :class:`~cms_magic.results.SendResult` (or a :class:`SendJob`).
    """
    client = Client(
        endpoint,
        internal=internal,
        credentials=credentials,
        profile=profile,
        **client_options,
    )
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
    return client.send(
        data,
        dry_run=dry_run,
        background=background,
        progress=progress,
        **{k: v for k, v in mapping.items() if v is not None},
    )
